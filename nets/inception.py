"""TF-Slim's `nets/inception.py`: Inception v1-v4 and Inception-ResNet-v2 under one namespace."""

from nets.inception_resnet_v2 import (  # noqa: F401 (re-exported)
    inception_resnet_v2,
    inception_resnet_v2_arg_scope,
    inception_resnet_v2_base,
)
from nets.inception_utils import inception_arg_scope  # noqa: F401
from nets.inception_v1 import inception_v1, inception_v1_arg_scope, inception_v1_base  # noqa: F401
from nets.inception_v2 import inception_v2, inception_v2_arg_scope, inception_v2_base  # noqa: F401
from nets.inception_v3 import inception_v3, inception_v3_arg_scope, inception_v3_base  # noqa: F401
from nets.inception_v4 import inception_v4, inception_v4_arg_scope, inception_v4_base  # noqa: F401
