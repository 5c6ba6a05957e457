"""AlexNet v2 of TF-Slim ("One weird trick", Krizhevsky 2014, https://arxiv.org/abs/1404.5997), the body as data.

The layers and scopes of tf_slim.nets.alexnet.alexnet_v2 (no LRN; fc6-fc8 as convolutions), built by
nets/_conv_fc.py with TF-Slim's research-version options (num_classes=0, global_pool, small images).
TF-Slim published no alexnet_v2 checkpoint: nets/published/alexnet_v2.txt lists the variables of tf_slim's
own build at 1000 classes, 224 px. TF-Slim's preprocessing factory names no preprocessing for it; the zoo
uses vgg's (mean-subtracted RGB), as for the other Caffe-era nets without BatchNorm.
"""

from __future__ import annotations

from tf_slim.nets import alexnet as slim_alexnet

from nets._conv_fc import Conv, FullyConnected, MaxPool, network, register_net

alexnet_v2_arg_scope = slim_alexnet.alexnet_v2_arg_scope

# Output size at 224 px in the comments.
BODY = [
    Conv("conv1", 64, 11, stride=4, padding="VALID"),  # 54 x 54 x 64
    MaxPool("pool1", 3),  # 26 x 26
    Conv("conv2", 192, 5),
    MaxPool("pool2", 3),  # 12 x 12
    Conv("conv3", 384, 3),
    Conv("conv4", 384, 3),
    Conv("conv5", 256, 3),
    MaxPool("pool5", 3),  # 5 x 5 x 256
]
FULLY_CONNECTED = FullyConnected(fc6_kernel=5, fc6_depth=4096, fc7_depth=4096)

alexnet_v2 = network("alexnet_v2", BODY, FULLY_CONNECTED, image_size=224)

register_net(alexnet_v2, alexnet_v2_arg_scope)
