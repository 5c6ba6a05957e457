"""TF-Slim's `research/slim/nets` API on this package, called the way TF-Slim's documentation and users call it:
module layout, generic builders, arguments and defaults, end points, variables against the published lists."""

import numpy as np
import pytest

from nets import nets_factory
from nets.compat import slim, tf
from nets.spec import read_published_variables
from tests.helpers.netcheck import variable_shapes


def test_tf_slim_module_layout_imports():
    from nets import inception, inception_utils, resnet_utils, resnet_v1, resnet_v2
    from nets.mobilenet import mobilenet, mobilenet_v2, mobilenet_v3
    from nets.nasnet import nasnet, nasnet_utils, pnasnet

    for module, names in [
        (inception, ["inception_v1", "inception_v2_base", "inception_v3_arg_scope", "inception_v4",
                     "inception_resnet_v2", "inception_resnet_v2_arg_scope", "inception_arg_scope"]),
        (inception_utils, ["inception_arg_scope"]),
        (resnet_utils, ["Block", "conv2d_same", "subsample", "stack_blocks_dense", "resnet_arg_scope"]),
        (resnet_v1, ["resnet_v1", "resnet_v1_block", "resnet_v1_50", "resnet_v1_200", "resnet_arg_scope"]),
        (resnet_v2, ["resnet_v2", "resnet_v2_block", "resnet_v2_152"]),
        (mobilenet, ["training_scope", "global_pool", "depth_multiplier"]),
        (mobilenet_v2, ["mobilenet", "mobilenet_base", "training_scope", "V2_DEF", "mobilenet_v2_140",
                        "mobilenet_v2_050", "mobilenet_v2_035"]),
        (mobilenet_v3, ["mobilenet", "mobilenet_base", "training_scope", "large", "small", "edge_tpu",
                        "edge_tpu_075", "large_minimalistic", "V3_LARGE", "V3_EDGETPU"]),
        (nasnet, ["build_nasnet_mobile", "build_nasnet_large", "nasnet_mobile_arg_scope", "nasnet_large_arg_scope",
                  "mobile_imagenet_config", "large_imagenet_config"]),
        (nasnet_utils, ["calc_reduction_layers", "global_avg_pool", "factorized_reduction", "drop_path"]),
        (pnasnet, ["build_pnasnet_mobile", "build_pnasnet_large", "pnasnet_large_arg_scope", "large_imagenet_config"]),
    ]:
        missing = [name for name in names if not hasattr(module, name)]
        assert not missing, f"{module.__name__} lacks {missing}"


def test_from_nets_import_nasnet_still_gives_the_zoo_nets():
    from nets import nasnet, pnasnet

    assert nets_factory.get_spec("nasnet_mobile").network_fn is nasnet.nasnet_mobile
    assert nets_factory.get_spec("pnasnet_large").network_fn is pnasnet.pnasnet_large
    assert len(nets_factory.specs()) == len(set(nets_factory.specs()))


def test_resnet_v1_generic_with_block_list(graph):
    from nets import resnet_utils, resnet_v1

    blocks = [resnet_v1.resnet_v1_block("block1", base_depth=1, num_units=1, stride=2),
              resnet_v1.resnet_v1_block("block2", base_depth=2, num_units=2, stride=1)]
    images = tf.placeholder(tf.float32, [2, 32, 32, 3])
    with slim.arg_scope(resnet_utils.resnet_arg_scope()):
        logits, end_points = resnet_v1.resnet_v1(images, blocks, num_classes=5, scope="tiny")
    assert logits.shape.as_list() == [2, 5]
    assert end_points["tiny/block2"].shape.as_list() == [2, 4, 4, 8]  # 32 / conv1 2 / pool 2 / block1 2
    assert end_points["global_pool"].shape.as_list() == [2, 1, 1, 8]
    assert end_points["predictions"].shape.as_list() == [2, 5]
    assert variable_shapes()["tiny/block1/unit_1/bottleneck_v1/conv1/weights"] == (1, 1, 64, 1)


def test_resnet_v2_generic_output_stride_keeps_the_map(graph):
    from nets import resnet_utils, resnet_v2

    blocks = [resnet_v2.resnet_v2_block("block1", base_depth=2, num_units=2, stride=2),
              resnet_v2.resnet_v2_block("block2", base_depth=2, num_units=1, stride=1)]
    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with slim.arg_scope(resnet_utils.resnet_arg_scope()):
        net, _ = resnet_v2.resnet_v2(images, blocks, global_pool=False, output_stride=4, scope="tiny")
    assert net.shape.as_list() == [1, 16, 16, 8]  # stride 4, where the blocks alone would give 8


@pytest.mark.slow
def test_resnet_v1_50_depth_multiplier_and_min_base_depth(graph):
    from nets import resnet_v1

    images = tf.placeholder(tf.float32, [1, 32, 32, 3])
    with slim.arg_scope(resnet_v1.resnet_arg_scope()):
        resnet_v1.resnet_v1_50(images, 10, depth_multiplier=0.125, min_base_depth=16)
    shapes = variable_shapes()
    assert shapes["resnet_v1_50/block1/unit_1/bottleneck_v1/conv1/weights"] == (1, 1, 64, 16)  # 64/8 -> min 16
    assert shapes["resnet_v1_50/block4/unit_1/bottleneck_v1/conv1/weights"] == (1, 1, 128, 64)  # 512/8, after block3's 4 x 32
    assert shapes["resnet_v1_50/logits/weights"] == (1, 1, 256, 10)


@pytest.mark.slow
def test_resnet_v1_50_default_depth_is_the_published_net(graph):
    from nets import resnet_v1

    with slim.arg_scope(resnet_v1.resnet_arg_scope()):
        resnet_v1.resnet_v1_50(tf.placeholder(tf.float32, [1, 64, 64, 3]), 1000)
    shapes = variable_shapes()
    assert shapes["resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/weights"] == (1, 1, 512, 2048)
    assert sum(int(np.prod(s)) for n, s in shapes.items() if "moving_" not in n) == 25_557_032


def test_inception_arg_scope_batch_norm_scale_adds_gammas(graph):
    from nets import inception

    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with slim.arg_scope(inception.inception_arg_scope(batch_norm_scale=True)):
        inception.inception_v1_base(images, final_endpoint="Conv2d_1a_7x7")
    assert variable_shapes()["InceptionV1/Conv2d_1a_7x7/BatchNorm/gamma"] == (64,)


@pytest.mark.parametrize("name, size", [("vgg_a", 256), ("alexnet_v2", 256), ("overfeat", 263)])
def test_conv_fc_nets_default_to_tf_slims_spatial_logits_above_their_size(graph, name, size):
    module = __import__(f"nets.{name.split('_')[0]}", fromlist=["_"])
    images = tf.placeholder(tf.float32, [2, size, size, 3])
    logits, _ = getattr(module, name)(images, num_classes=7, spatial_squeeze=False)
    assert logits.shape.as_list() == [2, 2, 2, 7]  # TF-Slim's global_pool=False
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        toolkit_logits, _ = nets_factory.get_network_fn(name, 7)(images)
    assert toolkit_logits.shape.as_list() == [2, 7]  # the toolkit's registry pools fc7 where it is not 1x1


def _published(name: str) -> dict:
    return read_published_variables(name)


@pytest.mark.slow
def test_mobilenet_v2_the_tf_slim_way_builds_the_published_net(graph):
    from nets.mobilenet import mobilenet_v2

    images = tf.placeholder(tf.float32, [1, 224, 224, 3])
    with slim.arg_scope(mobilenet_v2.training_scope(is_training=False)):
        logits, end_points = mobilenet_v2.mobilenet(images)
    assert variable_shapes() == _published("mobilenet_v2")
    assert logits.shape.as_list() == [1, 1001]
    assert end_points["layer_19"].shape.as_list() == [1, 7, 7, 1280]
    assert end_points["layer_18/depthwise_output"].shape.as_list() == [1, 7, 7, 960]
    assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)  # the scope's is_training=False reached BatchNorm


@pytest.mark.slow
def test_mobilenet_v2_035_and_base(graph):
    from nets.mobilenet import mobilenet_v2

    images = tf.placeholder(tf.float32, [1, 96, 96, 3])
    with slim.arg_scope(mobilenet_v2.training_scope()):
        mobilenet_v2.mobilenet_v2_035(images)
    assert variable_shapes() == _published("mobilenet_v2_035")
    assert tf.get_collection(tf.GraphKeys.UPDATE_OPS)  # training_scope() trains by default
    with tf.Graph().as_default():
        with slim.arg_scope(mobilenet_v2.training_scope(is_training=False)):
            net, end_points = mobilenet_v2.mobilenet_base(tf.placeholder(tf.float32, [1, 96, 96, 3]),
                                                          final_endpoint="layer_5")
        assert net.shape.as_list() == [1, 12, 12, 32] and "Logits" not in end_points


@pytest.mark.parametrize("builder, published", [("large", "mobilenet_v3_large"), ("small", "mobilenet_v3_small"),
                                                ("edge_tpu", "mobilenet_edgetpu")])
def test_mobilenet_v3_variants_build_the_published_nets(graph, builder, published):
    from nets.mobilenet import mobilenet_v3

    with slim.arg_scope(mobilenet_v3.training_scope(is_training=False)):
        logits, _ = getattr(mobilenet_v3, builder)(tf.placeholder(tf.float32, [1, 96, 96, 3]))
    assert variable_shapes() == _published(published)
    assert logits.shape.as_list() == [1, 1001]


def test_mobilenet_unsupported_options_refuse(graph):
    from nets.mobilenet import mobilenet_v2, mobilenet_v3

    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with pytest.raises(ValueError, match="output_stride"):
        mobilenet_v2.mobilenet(images, output_stride=16)
    with pytest.raises(ValueError, match="use_groupnorm"):
        mobilenet_v3.large(images, use_groupnorm=True)


@pytest.mark.slow
def test_nasnet_config_set_hparam_changes_the_net(graph):
    from nets.nasnet import nasnet

    config = nasnet.mobile_imagenet_config()
    assert config.num_cells == 12 and config.num_conv_filters == 44
    config.set_hparam("num_cells", 6)
    config.set_hparam("num_conv_filters", 8)
    with pytest.raises(ValueError):
        config.set_hparam("no_such_hparam", 1)
    with slim.arg_scope(nasnet.nasnet_mobile_arg_scope()):
        logits, end_points = nasnet.build_nasnet_mobile(tf.placeholder(tf.float32, [1, 64, 64, 3]), 10,
                                                        is_training=False, config=config)
    assert logits.shape.as_list() == [1, 10]
    assert "Cell_5" in end_points and "Cell_6" not in end_points
    assert end_points["global_pool"].shape.as_list() == [1, 8 * 4 * 6]  # filters x 4 x 6 (2 reductions)


@pytest.mark.slow
def test_build_nasnet_mobile_is_the_published_net(graph):
    from nets.nasnet import nasnet

    with slim.arg_scope(nasnet.nasnet_mobile_arg_scope()):
        nasnet.build_nasnet_mobile(tf.placeholder(tf.float32, [1, 224, 224, 3]), 1001)
    assert variable_shapes() == _published("nasnet_mobile")


def test_nasnet_utils_helpers(graph):
    from nets.nasnet import nasnet_utils

    assert nasnet_utils.calc_reduction_layers(12, 2) == [4, 8]
    net = tf.placeholder(tf.float32, [2, 8, 8, 6])
    assert nasnet_utils.global_avg_pool(net).shape.as_list() == [2, 6]
    with slim.arg_scope([slim.conv2d], normalizer_fn=None):
        reduced = nasnet_utils.factorized_reduction(net, 10, 2)
    assert reduced.shape.as_list() == [2, 4, 4, 10]


@pytest.mark.slow
def test_nasnet_and_pnasnet_builders_stop_at_final_endpoint(graph):
    from nets.nasnet import nasnet, pnasnet

    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with slim.arg_scope(nasnet.nasnet_mobile_arg_scope()):
        net, end_points = nasnet.build_nasnet_mobile(images, 10, is_training=False, final_endpoint="Cell_1")
    assert list(end_points) == ["Stem", "Cell_0", "Cell_1"] and net is end_points["Cell_1"]
    assert not [n for n in variable_shapes() if n.startswith(("cell_2/", "final_layer"))]
    with tf.Graph().as_default():
        config = pnasnet.mobile_imagenet_config()
        config.set_hparam("num_conv_filters", 8)
        with slim.arg_scope(pnasnet.pnasnet_mobile_arg_scope()):
            stem, points = pnasnet.build_pnasnet_mobile(images=tf.placeholder(tf.float32, [1, 64, 64, 3]),
                                                        num_classes=10, config=config, final_endpoint="Stem")
        assert list(points) == ["Stem"] and stem.shape.as_list()[-1] == 5 * 4  # 5 x (8 / 2) filters
        with pytest.raises(ValueError, match="final_endpoint"):
            pnasnet.build_pnasnet_mobile(tf.placeholder(tf.float32, [1, 64, 64, 3]), 10, final_endpoint="Cell_99")


def test_vgg_aliases():
    from nets import vgg

    assert vgg.vgg_d is vgg.vgg_16 and vgg.vgg_e is vgg.vgg_19
