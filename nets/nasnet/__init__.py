"""TF-Slim's `nets/nasnet` package (`from nets.nasnet import nasnet, nasnet_utils, pnasnet`).

`from nets import nasnet` keeps giving the zoo's NASNet-A functions (nasnet_mobile, nasnet_arg_scope, ...),
re-exported here from nets/nasnet/nasnet.py, which registers nasnet_mobile and nasnet_large.
"""

from nets.nasnet.nasnet import (  # noqa: F401 (re-exported)
    LARGE_CONFIG,
    MOBILE_CONFIG,
    NORMAL_CELL,
    REDUCTION_CELL,
    build_nasnet_large,
    build_nasnet_mobile,
    large_imagenet_config,
    mobile_imagenet_config,
    nasnet_arg_scope,
    nasnet_large,
    nasnet_large_arg_scope,
    nasnet_layout,
    nasnet_mobile,
    nasnet_mobile_arg_scope,
)
