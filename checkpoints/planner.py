"""Building a restore plan: how a checkpoint meets the graph's variables (`RestoreOptions`), and the plan
that follows (`build_plan`, never raising on a misfit, for inspection; `plan_restore`, the strict one
training uses); `check_resume`, whether a train dir's own checkpoint fits the graph.

Imports run one way: planner -> plan (the value) -> restore_op (applying it); resolve, reader, mapping
and scopes below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from checkpoints import mapping, scopes
from checkpoints.plan import (
    ADD_BACKGROUND,
    DROP_BACKGROUND,
    EXCLUDED,
    MISMATCH,
    MISSING,
    NEW,
    RESTORED,
    TRAINING_STATE,
    Entry,
    RestorePlan,
    first_few,
    shape_text,
)
from checkpoints.reader import TensorInfo, latest_checkpoint, read_variables
from checkpoints.resolve import resolve_checkpoint
from nets.compat import tf

BACKGROUND_OPTIONS = mapping.BACKGROUND_OPTIONS


@dataclass(frozen=True)
class _GraphVariable:
    name: str
    shape: tuple[int, ...]
    dtype: str | None
    is_model: bool  # trainable or a model variable; others (global step, slots) are training state


def _graph_variables(variables) -> tuple[list[_GraphVariable], dict]:
    """Normalise tf.Variables or a {name: shape} mapping; also return name -> tf.Variable."""
    if isinstance(variables, Mapping):
        return [_GraphVariable(n, tuple(s), None, True) for n, s in variables.items()], {}
    variables = list(variables)
    if not variables:
        raise ValueError("no variables to restore: build the network before planning its restore")
    graph = variables[0].graph
    model = {id(v) for v in graph.get_collection(tf.GraphKeys.MODEL_VARIABLES)}
    model |= {id(v) for v in graph.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES)}
    infos = [
        _GraphVariable(v.op.name, tuple(v.shape.as_list()), v.dtype.base_dtype.name, id(v) in model)
        for v in variables
    ]
    return infos, {v.op.name: v for v in variables}


def _size(shape: Sequence[int]) -> int:
    return TensorInfo(tuple(shape), "float32").size



def _background_transform(option: str | None, graph_shape, checkpoint_shape) -> str | None:
    """The background-class transform that makes the checkpoint's shape fit, if asked for."""
    if option is None or tuple(graph_shape[:-1]) != tuple(checkpoint_shape[:-1]) or not graph_shape:
        return None
    pair = (checkpoint_shape[-1], graph_shape[-1])
    if pair == (1001, 1000) and option in ("auto", "drop"):
        return DROP_BACKGROUND
    if pair == (1000, 1001) and option in ("auto", "add"):
        return ADD_BACKGROUND
    return None



@dataclass(frozen=True)
class RestoreOptions:
    """How a checkpoint meets the graph: the values every restore flag sets, in one typed value.

    exclude_scopes: scopes never restored (None: the net's classifier scopes when its class count
      differs from the checkpoint's; () for none).
    include_scopes: when given, only variables under these scopes are restored.
    rename: rules mapping checkpoint names to graph names (checkpoints.mapping.Rule, or their text
      `OLD:NEW` / `re:PATTERN=REPLACEMENT`, parsed here once); a constant scope prefix difference
      is detected when detect_prefix.
    use_moving_average: restore the ExponentialMovingAverage shadow values in place of the raw weights.
    background_class: 'drop' (1001-class checkpoint -> 1000-class graph), 'add' (1000 -> 1001, the
      background row keeps its initial value), 'auto' (either, as the shapes say) or None.
    allow_missing: scopes whose variables may be missing from the checkpoint (they start fresh).
    Scopes follow checkpoints.scopes: regexes at a scope boundary, absolute or relative to the net's scope.
    """

    exclude_scopes: tuple[str, ...] | None = None
    include_scopes: tuple[str, ...] | None = None
    rename: tuple[mapping.Rule, ...] = ()
    use_moving_average: bool = False
    background_class: str | None = None
    allow_missing: tuple[str, ...] = ()
    detect_prefix: bool = True

    def __post_init__(self):
        if self.background_class not in BACKGROUND_OPTIONS:
            raise ValueError(f"background class must be one of {', '.join(o for o in BACKGROUND_OPTIONS if o)}, "
                             f"got {self.background_class!r}.")
        fix = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen: normalise once)
        for name, flag in (("exclude_scopes", "--exclude-scopes"), ("include_scopes", "include scope"),
                           ("allow_missing", "allow-missing scope")):
            value = getattr(self, name)
            if value is not None:
                fix(name, scopes.parse_scopes(value, flag))
        fix("rename", tuple(rule if isinstance(rule, mapping.Rule) else mapping.parse_rule(rule)
                            for rule in self.rename))

    def to_dict(self) -> dict:
        return {**asdict(self), "rename": [rule.text for rule in self.rename]}


def build_plan(variables, checkpoint: str, *, net=None, options: RestoreOptions = RestoreOptions()) -> RestorePlan:
    """A RestorePlan for `variables` (tf.Variables or {name: shape}) from `checkpoint`; never raises on misfits.

    variables: the graph's tf.Variables to warm-start (usually the model variables), or {name: shape}
      for a plan that is only inspected. Non-model, non-trainable variables missing from the checkpoint
      (global step, optimizer slots) are training state and start fresh.
    checkpoint: anything resolve_checkpoint takes (prefix, directory, file, registry name).
    net: the NetSpec; scopes are relative to its scope, its classifier scopes are excluded by default when
      the class count differs from the checkpoint's, and a classifier missing from the checkpoint starts fresh.
    """
    prefix = resolve_checkpoint(checkpoint)
    stored = read_variables(prefix)
    graph_vars, by_name = _graph_variables(variables)
    if options.use_moving_average and not any(k.endswith(mapping.EMA_SUFFIX) for k in stored):
        raise ValueError(f"checkpoint {prefix} holds no ExponentialMovingAverage shadows: drop the moving-average option")

    rules = list(options.rename)
    raw_keys = [k for k in stored if not k.endswith(mapping.EMA_SUFFIX)]
    if options.detect_prefix:
        renamed = {mapping.rename(k, rules) for k in raw_keys}
        detected = mapping.detect_prefix([v.name for v in graph_vars], renamed)
        rules += [detected] if detected else []
    key_of = mapping.graph_to_checkpoint(stored, rules)

    planner = _Planner(stored, key_of, net, options)
    excluded = options.exclude_scopes if options.exclude_scopes is not None else planner.default_excludes(graph_vars)
    entries = [planner.entry(v, excluded) for v in graph_vars]
    used = {e.checkpoint_key for e in entries if e.status == RESTORED}
    unused = [k for k in stored if k not in used]
    report = {"net": getattr(net, "name", None), **options.to_dict(), "exclude_scopes": list(excluded)}
    unmatched = scopes.unmatched_scopes([v.name for v in graph_vars], options.exclude_scopes or (), planner.root)
    return RestorePlan(prefix, entries, unused, [r.text for r in rules], report, unmatched, by_name,
                       checkpoint_shapes={key: info.shape for key, info in stored.items()})


class _Planner:
    """Decides one variable's entry; holds what every decision needs."""

    def __init__(self, stored, key_of, net, options: RestoreOptions):
        self.stored, self.key_of, self.net, self.options = stored, key_of, net, options
        self.root = getattr(net, "scope", None)  # scopes may be written relative to the net's scope

    def in_scopes(self, name: str, scope_list) -> str | None:
        return scopes.matching_scope(name, scope_list, self.root)

    def checkpoint_key(self, name: str) -> str | None:
        """The checkpoint name for a graph variable; a graph EMA shadow falls back to its raw weight."""
        if name in self.key_of:
            return self.key_of[name]
        if name.endswith(mapping.EMA_SUFFIX):
            return self.key_of.get(name[: -len(mapping.EMA_SUFFIX)])
        return None

    def classifier_scopes(self) -> tuple[str, ...]:
        return tuple(self.net.classifier_scopes) if self.net is not None else ()

    def default_excludes(self, graph_vars: list[_GraphVariable]) -> list[str]:
        """The net's classifier scopes when its class count differs from the checkpoint's."""
        for var in graph_vars:
            key = self.checkpoint_key(var.name)
            if key is None or not self.in_scopes(var.name, self.classifier_scopes()):
                continue
            stored_shape = self.stored[key].shape
            if stored_shape != var.shape and not _background_transform(self.options.background_class, var.shape, stored_shape):
                return list(self.classifier_scopes())
        return []

    def entry(self, var: _GraphVariable, excluded: Sequence[str]) -> Entry:
        entry = Entry(var.name, var.shape, RESTORED, size=_size(var.shape))
        key = self.checkpoint_key(var.name)
        scope = self.in_scopes(var.name, excluded)
        include = self.options.include_scopes
        if include is not None and not self.in_scopes(var.name, include):
            return self._fresh(entry, EXCLUDED, "outside include scopes")
        if scope:
            return self._fresh(entry, EXCLUDED, f"excluded by scope {scope}" + self._class_note(var, key))
        if key is None:
            return self._missing(entry, var)
        if self.options.use_moving_average and key + mapping.EMA_SUFFIX in self.stored:
            key += mapping.EMA_SUFFIX
        entry.checkpoint_key, entry.checkpoint_shape = key, self.stored[key].shape
        if entry.checkpoint_shape != var.shape:
            entry.transform = _background_transform(self.options.background_class, var.shape, entry.checkpoint_shape)
            if entry.transform is None:
                entry.status = MISMATCH
        return entry

    def _class_note(self, var: _GraphVariable, key: str | None) -> str:
        if not self.in_scopes(var.name, self.classifier_scopes()):
            return ""
        if key is None or self.stored[key].shape == var.shape:
            return " (new classifier)"
        return f" (new classifier: {var.shape[-1]} classes, checkpoint has {self.stored[key].shape[-1]})"

    def _missing(self, entry: Entry, var: _GraphVariable) -> Entry:
        allowed = self.in_scopes(var.name, self.options.allow_missing)
        if allowed:
            return self._fresh(entry, NEW, f"not in checkpoint; allowed by {allowed}")
        if self.in_scopes(var.name, self.classifier_scopes()):
            return self._fresh(entry, NEW, "new classifier; not in checkpoint")
        if not var.is_model:
            return self._fresh(entry, NEW, TRAINING_STATE)
        return self._fresh(entry, MISSING, "not in checkpoint")

    @staticmethod
    def _fresh(entry: Entry, status: str, reason: str) -> Entry:
        entry.status, entry.reason = status, reason
        return entry


def plan_restore(variables, checkpoint: str, *, net=None, options: RestoreOptions = RestoreOptions()) -> RestorePlan:
    """The strict restore plan: build_plan + RestorePlan.check().

    Raises RestoreError (a ValueError: the count, the first few variables, the flags that fix it) when
    variables do not fit, when an exclude scope matches no variable, and when the plan restores nothing
    or less than half of those not excluded.
    """
    return build_plan(variables, checkpoint, net=net, options=options).check()


def check_resume(train_dir: str, variables, *, checkpoint: str | None = None) -> str | None:
    """The train dir's latest checkpoint (or `checkpoint`, one of its own) if it fits the graph (same names and
    shapes), None if none.

    Raises ValueError when the checkpoint belongs to another net or class count, before anything runs.
    """
    latest = checkpoint or (latest_checkpoint(train_dir) if tf.io.gfile.isdir(train_dir) else None)
    if latest is None:
        return None
    stored = read_variables(latest)
    graph_vars, _ = _graph_variables(variables)
    missing = [v.name for v in graph_vars if v.name not in stored]
    mismatched = [v for v in graph_vars if v.name in stored and stored[v.name].shape != v.shape]
    fix = f"Use a new --train-dir, or delete {train_dir} to start over."
    if mismatched:
        listed = first_few([f"{v.name} is {shape_text(stored[v.name].shape)} there, {shape_text(v.shape)} here"
                             for v in mismatched], "; ")
        raise ValueError(f"{latest} belongs to a different net or class count: {len(mismatched)} variables differ in "
                         f"shape: {listed}. {fix}")
    if missing:
        raise ValueError(
            f"{latest} belongs to a different net or training setup: {len(missing)} of {len(graph_vars)} variables "
            f"are not in it ({first_few(missing)}). {fix}"
        )
    return latest
