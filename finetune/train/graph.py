"""The training graph: the net with frozen scopes in inference mode, the loss, and the train op.

    images, labels -> one tower per device: net (trainable scopes in training mode, the rest in
    inference mode) -> cross-entropy (+ aux) -> gradients of the trainable scopes, averaged over the
    towers -> multipliers, clip by global norm -> optimizer + schedule -> train_op (+ BatchNorm updates, EMA)

Frozen means frozen: only variables under the trainable scopes get gradients, and outside them
BatchNorm and dropout run in inference mode, so the forward pass through frozen layers is the
pretrained net's and their BatchNorm moving statistics stay as restored (`train_bn_stats` lets them
update). Nets call `slim.batch_norm` from deep inside their own arg scopes, which set `is_training`
for the whole net; `_layer_modes` therefore wraps tf_slim's batch_norm and dropout for the time the
net is built and passes `is_training=False` to the calls outside the trainable scopes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
from collections.abc import Callable, Iterator, Sequence

from checkpoints import scopes
from finetune.config import TRAINABLE_ALL, RunConfig, trainable_scopes  # trainable_scopes: the run's rule, here too
from finetune.train import cluster as clusters
from finetune.train import devices, optim
from finetune.train.precision import Precision
from nets import hub, nets_factory
from nets.compat import slim, tf

AUX_LOGITS = "AuxLogits"
AUX_LOSS_WEIGHT = 0.4  # TF-Slim's weight of the auxiliary classifier's loss
_SLIM_NAMESPACES = ("tf_slim", "tf_slim.layers", "tf_slim.layers.layers")
_MODE_LAYERS = ("batch_norm", "dropout")


# ---------------------------------------------------------------------------------------------
# Scopes: what trains


@dataclasses.dataclass(frozen=True)
class RunScopes:
    """What trains, resolved once from --trainable: the trainable scopes and the net's own scopes (the net
    minus the trainable scopes is frozen), both relative to `root`, the net's scope (checkpoints.scopes)."""

    trainable: tuple[str, ...]
    net: tuple[str, ...]
    root: str
    freeze_batch_norm: bool = False  # every BatchNorm in inference mode, also in trainable scopes (folded BatchNorm)

    @classmethod
    def of(cls, spec: nets_factory.NetSpec, trainable: Sequence[str], freeze_batch_norm: bool = False) -> RunScopes:
        return cls(trainable_scopes(spec, trainable), trainable_scopes(spec, (TRAINABLE_ALL,)), spec.scope,
                   freeze_batch_norm)

    def trains(self, name: str) -> bool:
        """True when the variable or layer `name` lies under a trainable scope."""
        return scopes.matching_scope(name, self.trainable, self.root) is not None

    def classifier_only(self, spec: nets_factory.NetSpec) -> bool:
        """Only the net's classifier trains (what lets the feature cache run)."""
        return set(self.trainable) == set(spec.classifier_scopes)


def select_trainable(variables: Sequence[tf.Variable], scope_list: Sequence[str], root: str) -> list[tf.Variable]:
    """The variables under `scope_list` (relative to `root`, the net's scope); ValueError naming a scope
    that matches none."""
    names = [v.op.name for v in variables]
    unmatched = scopes.unmatched_scopes(names, scope_list, root)
    if unmatched:
        raise ValueError(f"--trainable scope {unmatched[0]!r} matches no variable of the net (its scopes: "
                         f"{scopes.top_scopes(names)}; `finetune inspect CKPT --net NET` lists the variables).")
    return [v for v in variables if scopes.matching_scope(v.op.name, scope_list, root)]


@contextlib.contextmanager
def _layer_modes(scope_list: Sequence[str] | None, root: str, batch_norm_decay: float | None,
                 freeze_batch_norm: bool = False) -> Iterator[list[str]]:
    """While building a net: slim.batch_norm and slim.dropout outside `scope_list` (relative to `root`) get
    is_training=False (None: every layer keeps the net's mode), and batch_norm gets `decay` when given;
    freeze_batch_norm: every batch_norm gets is_training=False (its statistics neither used from the batch nor
    updated), whatever the scopes.

    Yields the list (filled as the net builds) of the BatchNorm layers left in training mode.
    """
    modules = [sys.modules[name] for name in _SLIM_NAMESPACES]
    originals = {layer: getattr(modules[-1], layer) for layer in _MODE_LAYERS}
    training_bn: list[str] = []
    in_training = None if scope_list is None else (lambda name: scopes.matching_scope(name, scope_list, root))
    bn_in_training = (lambda name: False) if freeze_batch_norm else in_training
    wrapped = {"batch_norm": _scoped_mode(originals["batch_norm"], "BatchNorm", bn_in_training, training_bn,
                                          {} if batch_norm_decay is None else {"decay": batch_norm_decay}),
               "dropout": _scoped_mode(originals["dropout"], "Dropout", in_training, [], {})}
    try:
        for module in modules:
            for layer, function in wrapped.items():
                setattr(module, layer, function)
        yield training_bn
    finally:
        for module in modules:
            for layer, function in originals.items():
                setattr(module, layer, function)


def _scoped_mode(layer: Callable, default_scope: str, in_training: Callable[[str], object] | None,
                 training: list[str], fixed: dict) -> Callable:
    @functools.wraps(layer)
    def call(*args, **kwargs):
        name = f"{tf.get_variable_scope().name}/{kwargs.get('scope') or default_scope}".lstrip("/")
        if in_training is None or in_training(name):
            training.append(name)
        else:
            kwargs["is_training"] = False
        return layer(*args, **{**kwargs, **fixed})

    call._key_op = layer._key_op  # the same arg_scope key: arg scopes set for slim's layer apply to it
    return call


def _check_frozen_batch_norm(graph: tf.Graph, name_scope: str, training_bn: Sequence[str]) -> None:
    """No fused BatchNorm of the net just built (under name_scope) runs in training mode but those in
    trainable scopes (catches a net that bypasses slim's layers, which the switch cannot reach)."""
    prefix = f"{name_scope}/" if name_scope else ""
    in_training = [op.name for op in graph.get_operations()
                   if op.name.startswith(prefix) and op.type.startswith("FusedBatchNorm")
                   and not op.type.endswith("Grad") and op.get_attr("is_training")]
    if len(in_training) > len(training_bn):
        raise ValueError(f"BatchNorm outside the trainable scopes runs in training mode ({in_training[0]}...): this "
                         "net does not build BatchNorm through slim.batch_norm; use --train-bn-stats or --trainable all.")


# ---------------------------------------------------------------------------------------------
# Net, loss and train op


@dataclasses.dataclass(frozen=True)
class TrainGraph:
    """What the loop fetches from the training graph."""

    loss: tf.Tensor  # total: cross-entropy (+ aux) + regularisation of the trained variables
    accuracy: tf.Tensor  # of the batch
    learning_rate: tf.Tensor
    grad_norm: tf.Tensor  # global norm of the gradients before clipping
    train_op: tf.Operation
    trained: list[tf.Variable]
    model_variables: list[tf.Variable]
    optimizer: tf.train.Optimizer | None = None


def build_logits(spec: nets_factory.NetSpec, images: tf.Tensor, num_classes: int, scope_list: Sequence[str], *,
                 weight_decay: float, train_bn_stats: bool, batch_norm_decay: float | None = None,
                 total_steps: int | None = None, input_range=None, freeze_batch_norm: bool = False
                 ) -> tuple[tf.Tensor, dict]:
    """The net in training mode inside `scopes`, inference mode outside (unless train_bn_stats); with
    freeze_batch_norm every BatchNorm in inference mode (a checkpoint whose BatchNorm is folded).

    batch_norm_decay overrides the net's BatchNorm moving-average decay (e.g. for short runs from scratch).
    total_steps: the run's length, for nets whose regularisation follows training progress (NASNet's drop path).
    """
    network_fn = nets_factory.get_network_fn(spec.name, num_classes, weight_decay=weight_decay, is_training=True,
                                             total_training_steps=total_steps)
    # a hub backbone runs in training mode only when it trains (or with train_bn_stats)
    backbone_training = train_bn_stats or bool(scopes.matching_scope(hub.BACKBONE_SCOPE, scope_list, spec.scope))
    with _layer_modes(None if train_bn_stats else scope_list, spec.scope, batch_norm_decay,
                      freeze_batch_norm) as training_bn:
        logits, end_points = network_fn(images, **hub.net_kwargs(spec.name, input_range, backbone_training))
    if not train_bn_stats:
        _check_frozen_batch_norm(images.graph, images.graph.get_name_scope(), training_bn)
    return logits, end_points


def classification_loss(logits: tf.Tensor, end_points: dict, labels: tf.Tensor, num_classes: int,
                        label_smoothing: float) -> tf.Tensor:
    """Softmax cross-entropy of the logits, plus TF-Slim's 0.4-weighted loss of the auxiliary logits."""
    onehot = tf.one_hot(labels, num_classes)
    loss = tf.losses.softmax_cross_entropy(onehot, logits, label_smoothing=label_smoothing, scope="cross_entropy")
    if AUX_LOGITS in end_points:
        aux = tf.reshape(end_points[AUX_LOGITS], [-1, num_classes])
        loss += tf.losses.softmax_cross_entropy(onehot, aux, weights=AUX_LOSS_WEIGHT, label_smoothing=label_smoothing,
                                                scope="aux_cross_entropy")
    return loss


def regularization_loss(trained: Sequence[tf.Variable]) -> tf.Tensor:
    """The weight-decay terms of the trained variables only (frozen ones would add a constant)."""
    names = {v.op.name for v in trained}
    terms = [t for t in tf.losses.get_regularization_losses() if t.op.name.split("/Regularizer/")[0] in names]
    return tf.add_n(terms, name="regularization") if terms else tf.constant(0.0)


def build_train_graph(config: RunConfig, spec: nets_factory.NetSpec, images: tf.Tensor, labels: tf.Tensor,
                      num_classes: int, *, steps_per_epoch: int, max_steps: int, places: Sequence[str],
                      sync_cluster: clusters.Cluster | None = None, run_scopes: RunScopes | None = None,
                      input_range: tuple[float, float] | None = None, precision: Precision | None = None
                      ) -> TrainGraph:
    """Net, loss and train op: one tower per device; gradients of the trainable scopes, averaged over the
    towers, processed (multipliers, global-norm clip), applied; then BatchNorm updates and EMA.

    sync_cluster: apply the gradients of all its workers together (SyncReplicasOptimizer). run_scopes,
    input_range and precision as the run resolved them (finetune.train.resolve); resolved from `config`
    here when not given (the benchmarks build without a resolved run)."""
    global_step = tf.train.get_or_create_global_step()
    run_scopes = run_scopes or RunScopes.of(spec, config.trainable)
    scope_list = run_scopes.trainable
    precision = precision or devices.get_precision(config.precision)
    if input_range is None and hub.is_hub(spec.name):
        input_range = hub.run_input(spec.name, config.image_size, config.input_range)[1]

    def tower(batch):
        tower_images, tower_labels = batch
        with precision.scope():
            logits, end_points = build_logits(spec, precision.cast(tower_images), num_classes, scope_list,
                                              weight_decay=config.weight_decay, train_bn_stats=config.train_bn_stats,
                                              batch_norm_decay=config.batch_norm_decay, total_steps=max_steps,
                                              input_range=input_range, freeze_batch_norm=run_scopes.freeze_batch_norm)
        end_points = {k: tf.cast(v, tf.float32) for k, v in end_points.items() if k == AUX_LOGITS}
        logits = tf.cast(logits, tf.float32)
        loss = classification_loss(logits, end_points, tower_labels, num_classes, config.label_smoothing)
        correct = tf.cast(tf.equal(tf.argmax(logits, 1), tower_labels), tf.float32)
        return loss, tf.reduce_mean(correct)

    towers = devices.build_towers(tower, devices.split_batch((images, labels), len(places)), places)
    model_variables = [v for v in slim.get_model_variables() if scopes.matching_scope(v.op.name, run_scopes.net)]
    trained = select_trainable(tf.trainable_variables(), scope_list, spec.scope)
    with tf.name_scope("loss"):
        regularization = regularization_loss(trained)
        losses = [tf.add(t.outputs[0], regularization, name=f"total_{t.index}") for t in towers]
        loss = tf.reduce_mean(losses, name="total")
        accuracy = tf.reduce_mean([t.outputs[1] for t in towers], name="accuracy")
    lr = optim.learning_rate(config.lr_schedule, config.learning_rate, global_step, steps_per_epoch=steps_per_epoch,
                             total_steps=max_steps, decay_epochs=config.decay_epochs,
                             decay_factor=config.decay_factor, end_lr=config.end_learning_rate,
                             warmup_steps=config.warmup_steps)
    optimizer = precision.wrap_optimizer(optim.make_optimizer(config.optimizer, lr, **config.optimizer_params))
    if sync_cluster is not None:
        optimizer = clusters.sync_replicas(optimizer, sync_cluster)
    grads_and_vars = devices.average_gradients(devices.tower_gradients(optimizer, losses, towers, trained))
    grads_and_vars, grad_norm = optim.process_gradients(grads_and_vars, clip_norm=config.clip_grad_norm,
                                                        multipliers=dict(config.lr_multiplier) or None,
                                                        root=spec.scope)
    # BatchNorm statistics update with the step, from the first tower as TF-Slim's model_deploy does
    # (only training-mode BatchNorm adds UPDATE_OPS).
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS, towers[0].scope)):
        train_op = optimizer.apply_gradients(grads_and_vars, global_step=global_step)
    if config.moving_average_decay:
        with tf.control_dependencies([train_op]):
            train_op = optim.moving_average_op(config.moving_average_decay, trained, global_step)
    return TrainGraph(loss=loss, accuracy=accuracy, learning_rate=lr, grad_norm=grad_norm, train_op=train_op,
                 trained=trained, model_variables=model_variables, optimizer=optimizer)


def summaries(model: TrainGraph) -> tf.Tensor:
    """The scalars TensorBoard shows for a run, merged."""
    tf.summary.scalar("loss", model.loss)
    tf.summary.scalar("learning_rate", model.learning_rate)
    tf.summary.scalar("accuracy", model.accuracy)
    tf.summary.scalar("global_gradient_norm", model.grad_norm)
    return tf.summary.merge_all()
