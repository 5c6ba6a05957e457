"""ResNet V2 50/101/152/200 (pre-activation): tf_slim.nets' bodies with TF-Slim's research-version head.

Published checkpoints: resnet_v2_{50,101,152}_2017_04_14, 1001 classes (0 is background), trained
and evaluated at 299 px (TF-Slim's README; the network function's own default_image_size says 224)
with INCEPTION preprocessing (inputs in [-1, 1]); TF-Slim's own factory wires them to vgg
preprocessing, which silently costs accuracy. TF-Slim published no resnet_v2_200 checkpoint; it is
registered like its family.
"""

from __future__ import annotations

from tf_slim.nets import resnet_utils
from tf_slim.nets import resnet_v2 as slim_resnet_v2

from nets._slim_heads import resnet_with_head
from nets.spec import NetSpec, register

resnet_arg_scope = resnet_utils.resnet_arg_scope

resnet_v2_50 = resnet_with_head(slim_resnet_v2.resnet_v2_50)
resnet_v2_101 = resnet_with_head(slim_resnet_v2.resnet_v2_101)
resnet_v2_152 = resnet_with_head(slim_resnet_v2.resnet_v2_152)
resnet_v2_200 = resnet_with_head(slim_resnet_v2.resnet_v2_200)

for _network_fn in (resnet_v2_50, resnet_v2_101, resnet_v2_152, resnet_v2_200):
    _name = _network_fn.__name__
    register(
        NetSpec(
            name=_name,
            network_fn=_network_fn,
            arg_scope_fn=resnet_arg_scope,
            image_size=299,  # the checkpoints' size, not tf_slim's default_image_size
            num_classes=1001,
            preprocessing="inception",
            scope=_name,
            classifier_scopes=(f"{_name}/logits",),
            logits_end_point=f"{_name}/logits",
            predictions_end_point="predictions",
        )
    )
