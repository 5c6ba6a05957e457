"""Runs without training: the quick net, a checkpoint's values, a train dir as training writes it, and the logits
a checkpoint gives when restored with a plain Saver (what evaluation, export and predict must reproduce)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from finetune.data.preprocessing import preprocess_image
from finetune.runs.trained_model import TrainedModel
from helpers.weights import save_random_checkpoint
from nets import nets_factory
from nets.compat import tf

QUICK_NET = "mobilenet_v1_025"  # the net every training test runs (at 32 px): the zoo's quickest to build and train
IMAGE_SIZE = 32
CLASSES = ["circle", "ring", "square", "frame", "triangle", "plus"]


def checkpoint_values(checkpoint: str) -> dict[str, np.ndarray]:
    """Every tensor a checkpoint (a prefix, or a directory's newest) holds, by name."""
    reader = tf.train.load_checkpoint(checkpoint)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def checkpoint_steps(train_dir: Path) -> list[int]:
    """The steps of the model.ckpt-N checkpoints in `train_dir`, sorted."""
    return sorted(int(p.name[len("model.ckpt-"):-len(".index")]) for p in Path(train_dir).glob("model.ckpt-*.index"))


def assert_frozen_bit_equal(checkpoint: str, source: str, classifier: str = "MobilenetV1/Logits") -> None:
    """Every variable outside the classifier equals the source checkpoint's, bit for bit."""
    pretrained, trained = checkpoint_values(source), checkpoint_values(checkpoint)
    frozen = [n for n in pretrained if not n.startswith(classifier) and n != "global_step"]
    assert len(frozen) > 100 and any(n.endswith("moving_variance") for n in frozen)
    for name in frozen:
        np.testing.assert_array_equal(trained[name], pretrained[name], err_msg=name)


def make_train_dir(train_dir: Path, dataset: Path, *, net: str = QUICK_NET, image_size: int = IMAGE_SIZE,
                   class_names=CLASSES, step: int = 7, seed: int = 0) -> Path:
    """A train dir as training writes it: a random-weight checkpoint model.ckpt-STEP, run_config.json, labels.txt.

    BatchNorm betas are random and the moving statistics are those of a batch of random
    images, so the outputs depend on the input and folding BatchNorm into the convolutions is exercised.
    """
    spec = nets_factory.get_spec(net)
    rng = np.random.default_rng(seed)
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(seed)
        images = tf.constant(rng.uniform(-1, 1, [32, image_size, image_size, 3]), tf.float32)
        nets_factory.get_network_fn(net, len(class_names), is_training=True)(images)
        batch_norms = [op for op in graph.get_operations() if op.type.startswith("FusedBatchNorm")]
        global_step = tf.train.get_or_create_global_step()
        variables = {v.op.name: v for v in tf.global_variables()}
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for name, variable in variables.items():
                if name.endswith("/beta"):
                    variable.load(rng.uniform(-0.2, 0.2, variable.shape).astype(np.float32), session)
            for op in batch_norms:
                scope = _variable_scope(op.name, variables)
                mean, variance = session.run([op.outputs[1], op.outputs[2]])
                variables[f"{scope}/moving_mean"].load(mean, session)
                variables[f"{scope}/moving_variance"].load(variance, session)
            global_step.load(step, session)
            tf.train.Saver().save(session, str(train_dir / "model.ckpt"), global_step=step)
    config = {"net": net, "num_classes": len(class_names), "image_size": image_size,
              "preprocessing": spec.preprocessing, "labels": list(class_names), "dataset": str(dataset)}
    (train_dir / "run_config.json").write_text(json.dumps(config))
    (train_dir / "labels.txt").write_text("".join(f"{name}\n" for name in class_names))
    return train_dir


def _variable_scope(op_name: str, variables: dict) -> str:
    """The BatchNorm variable scope of a batch-norm op (its name scope may repeat the net's scope)."""
    scopes = [name[: -len("/moving_mean")] for name in variables if name.endswith("/moving_mean")]
    return max((scope for scope in scopes if op_name.rsplit("/", 1)[0].endswith(scope)), key=len)


def checkpoint_logits(model: TrainedModel, pixels) -> np.ndarray:
    """Logits of the checkpoint restored with a plain Saver, preprocessing each image (of any size, values 0-255)
    as evaluation does."""
    size = model.image_size
    with tf.Graph().as_default():
        images = tf.stack([preprocess_image(tf.constant(p / 255.0), size, size, False, model.preprocessing)
                           for p in pixels])
        logits, _ = nets_factory.get_network_fn(model.net, model.num_classes)(images)
        with tf.Session() as session:
            tf.train.Saver().restore(session, model.checkpoint)
            return session.run(logits)


def random_net_checkpoint(path: str, num_classes: int, net: str = QUICK_NET, image_size: int = IMAGE_SIZE) -> str:
    """The net with `num_classes` classes and random (physically valid, seed 0) values everywhere, saved at `path`."""
    with tf.Graph().as_default():
        nets_factory.get_network_fn(net, num_classes)(tf.zeros([1, image_size, image_size, 3]))
        save_random_checkpoint(path)
    return path
