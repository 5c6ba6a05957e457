"""ResNet V1 50/101/152/200: tf_slim.nets' bodies with TF-Slim's research-version head.

Published checkpoints: resnet_v1_{50,101,152}_2016_08_28 (converted from Kaiming He's Caffe
models), 1000 classes (no background), 224 px, vgg preprocessing. TF-Slim published no
resnet_v1_200 checkpoint; it is registered with the family's class count.
"""

from __future__ import annotations

from tf_slim.nets import resnet_utils
from tf_slim.nets import resnet_v1 as slim_resnet_v1

from nets._slim_heads import resnet_with_head
from nets.spec import NetSpec, register

resnet_arg_scope = resnet_utils.resnet_arg_scope

resnet_v1_50 = resnet_with_head(slim_resnet_v1.resnet_v1_50)
resnet_v1_101 = resnet_with_head(slim_resnet_v1.resnet_v1_101)
resnet_v1_152 = resnet_with_head(slim_resnet_v1.resnet_v1_152)
resnet_v1_200 = resnet_with_head(slim_resnet_v1.resnet_v1_200)

for _network_fn in (resnet_v1_50, resnet_v1_101, resnet_v1_152, resnet_v1_200):
    _name = _network_fn.__name__
    register(
        NetSpec(
            name=_name,
            network_fn=_network_fn,
            arg_scope_fn=resnet_arg_scope,
            image_size=224,
            num_classes=1000,
            preprocessing="vgg",
            scope=_name,
            classifier_scopes=(f"{_name}/logits",),
            logits_end_point=f"{_name}/logits",
            predictions_end_point="predictions",
        )
    )
