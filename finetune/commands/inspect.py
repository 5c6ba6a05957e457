"""`finetune inspect CKPT [--net NAME]`: a checkpoint's variables, or how it fits a net of the zoo."""

from __future__ import annotations

import argparse

from finetune import config

HELP = ("List a checkpoint's variables (name, shape, dtype) with count, parameters and bytes; with --net, "
        "compare it with the net: restored, renamed, shape mismatches, missing, unused.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT",
                        help="checkpoint prefix, directory (its latest), file (.index, .data-*, .meta, V1 .ckpt) "
                             "or known checkpoint name")
    parser.add_argument("--net", help="compare with this zoo net (`finetune nets`)")
    parser.add_argument("--num-classes", type=int, help="the net's class count (default: its checkpoint's)")
    config.add_arguments(parser, group="restore")  # the same restore flags, parsed the same way, as training's


def _net_variables(name: str, num_classes: int | None):
    """Build the net in a fresh graph; return its spec and variables (the graph stays alive with them)."""
    from nets import nets_factory
    from nets.compat import tf

    spec = nets_factory.get_spec(name)
    with tf.Graph().as_default():
        network_fn = nets_factory.get_network_fn(name, num_classes or spec.num_classes)
        size = network_fn.default_image_size
        network_fn(tf.placeholder(tf.float32, [1, size, size, 3]))
        return spec, tf.global_variables()


def run(args: argparse.Namespace) -> int:
    import checkpoints

    if args.net is None:
        print(checkpoints.checkpoint_table(checkpoints.resolve_checkpoint(args.checkpoint)))
        return 0
    spec, variables = _net_variables(args.net, args.num_classes)
    plan = checkpoints.build_plan(variables, args.checkpoint, net=spec, options=config.restore_options(args))
    print(plan.table(limit=None))
    return 1 if plan.errors else 0
