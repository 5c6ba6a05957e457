"""OverFeat of TF-Slim (Sermanet et al. 2014, https://arxiv.org/abs/1312.6229, the fast model), the body as data.

The layers and scopes of tf_slim.nets.overfeat.overfeat (fc6-fc8 as convolutions), built by
nets/_conv_fc.py with TF-Slim's research-version options (num_classes=0, global_pool, small images).
TF-Slim published no overfeat checkpoint: nets/published/overfeat.txt lists the variables of tf_slim's own
build at 1000 classes, 231 px (its default size). TF-Slim's preprocessing factory names no preprocessing for
it; the zoo uses vgg's (mean-subtracted RGB), as for the other Caffe-era nets without BatchNorm.
"""

from __future__ import annotations

from tf_slim.nets import overfeat as slim_overfeat

from nets._conv_fc import Conv, FullyConnected, MaxPool, network, register_net

overfeat_arg_scope = slim_overfeat.overfeat_arg_scope

# Output size at 231 px in the comments.
BODY = [
    Conv("conv1", 64, 11, stride=4, padding="VALID"),  # 56 x 56 x 64
    MaxPool("pool1", 2),  # 28 x 28
    Conv("conv2", 256, 5, padding="VALID"),  # 24 x 24 x 256
    MaxPool("pool2", 2),  # 12 x 12
    Conv("conv3", 512, 3),
    Conv("conv4", 1024, 3),
    Conv("conv5", 1024, 3),
    MaxPool("pool5", 2),  # 6 x 6 x 1024
]
FULLY_CONNECTED = FullyConnected(fc6_kernel=6, fc6_depth=3072, fc7_depth=4096)

overfeat = network("overfeat", BODY, FULLY_CONNECTED, image_size=231)

register_net(overfeat, overfeat_arg_scope)
