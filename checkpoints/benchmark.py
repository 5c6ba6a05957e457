"""Time planning and applying a restore of a full-size zoo net: `python -m checkpoints.benchmark [NET] [DIR]`.

Writes a checkpoint of NET (default inception_resnet_v2, 1001 classes) with random values under
DIR (default /tmp/finetune_restore_benchmark; reused when present), then, in a fresh graph with a 10-class head, times
plan_restore (reading the checkpoint's index, mapping names) and the one-op restore, and checks a
restored tensor against the file. Not part of the test suite: it builds the real net.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from checkpoints.plan import plan_restore
from nets import nets_factory
from nets.compat import slim, tf


def _model_variables(name: str, num_classes: int):
    network_fn = nets_factory.get_network_fn(name, num_classes)
    size = network_fn.default_image_size
    network_fn(tf.placeholder(tf.float32, [1, size, size, 3]))
    return slim.get_model_variables()


def write_random_checkpoint(name: str, directory: str) -> str:
    """Save NET with random values at its checkpoint's class count; return the prefix."""
    spec = nets_factory.get_spec(name)
    path = os.path.join(directory, f"{name}.ckpt")
    with tf.Graph().as_default():
        variables = _model_variables(name, spec.num_classes)
        randomise = tf.group(*[tf.assign(v, tf.random.uniform(v.shape, -1, 1)) for v in variables])
        with tf.Session() as sess:
            sess.run(randomise)
            tf.train.Saver(variables).save(sess, path, write_meta_graph=False)
    return path


def time_restore(name: str, checkpoint: str, num_classes: int = 10) -> dict[str, float]:
    """Seconds to build the plan, build the restore op, initialise and run it; and the parameter count."""
    with tf.Graph().as_default():
        variables = _model_variables(name, num_classes)
        start = time.perf_counter()
        plan = plan_restore(variables, checkpoint, net=nets_factory.get_spec(name))
        planned = time.perf_counter()
        op = plan.restore_op()
        built = time.perf_counter()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            initialised = time.perf_counter()
            plan.apply(sess)
            restored = time.perf_counter()
            probe = plan.restored[len(plan.restored) // 2]
            value = sess.run(plan._variables[probe.variable])
        expected = tf.train.load_checkpoint(checkpoint).get_tensor(probe.checkpoint_key)
        if not np.array_equal(value, expected):
            raise AssertionError(f"{probe.variable} differs from the checkpoint after the restore")
        del op
    return {
        "parameters_restored": sum(e.size for e in plan.restored),
        "variables_restored": len(plan.restored),
        "plan_seconds": planned - start,
        "build_op_seconds": built - planned,
        "initialise_seconds": initialised - built,
        "restore_seconds": restored - initialised,
    }


def main(argv: list[str]) -> None:
    name = argv[0] if argv else "inception_resnet_v2"
    directory = argv[1] if len(argv) > 1 else "/tmp/finetune_restore_benchmark"
    os.makedirs(directory, exist_ok=True)
    start = time.perf_counter()
    checkpoint = os.path.join(directory, f"{name}.ckpt")
    if not os.path.exists(checkpoint + ".index"):
        write_random_checkpoint(name, directory)
        print(f"wrote {checkpoint} in {time.perf_counter() - start:.1f}s")
    for key, value in time_restore(name, checkpoint).items():
        print(f"{key}: {value:,.2f}" if isinstance(value, float) else f"{key}: {value:,}")


if __name__ == "__main__":
    main(sys.argv[1:])
