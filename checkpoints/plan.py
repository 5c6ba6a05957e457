"""Restore plans: which graph variable gets which checkpoint tensor, what is left fresh and why.

`build_plan` never raises on a misfit (inspection shows every problem); `plan_restore` is
`build_plan` + `RestorePlan.check()`, the strict restore training uses: any shape mismatch or
missing variable that no rule explains is a `RestoreError`, and so is a plan that restores
nothing or far less than the net. The error is one line (the count, the first few variables, the
flags that fix it); the plan's table and `to_dict()` list every variable. `RestorePlan.restore_op()`
is one RestoreV2 op for every tensor plus the assignments (sliced for the background-class
offset), grouped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from checkpoints import mapping, scopes
from checkpoints.reader import TensorInfo, latest_checkpoint, read_variables
from checkpoints.resolve import resolve_checkpoint
from nets.compat import tf

RESTORED, EXCLUDED, NEW, MISMATCH, MISSING = "restored", "excluded", "new", "mismatch", "missing"
ERRORS = (MISMATCH, MISSING)
BACKGROUND_OPTIONS = mapping.BACKGROUND_OPTIONS
DROP_BACKGROUND, ADD_BACKGROUND = "drop background row", "add background row"
MIN_RESTORED_FRACTION = 0.5  # of the variables not excluded (training state aside)
TRAINING_STATE = "training state; not in checkpoint"
TRAINING_STATE_KINDS = OPTIMIZER_SLOT, EMA_SHADOW, BOOKKEEPING = "optimizer slot", "moving-average shadow", "bookkeeping"
_TABLE_ROWS = 25
_NAMED = 3  # variables an error names before "... and N more"
MESSAGE_CHARS = 300  # an error names fewer variables (at least one) to stay within this


class RestoreError(ValueError):
    """A checkpoint that does not fit: `problem` (what, how many, the first few variables) and `fix`."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem}. {fix}")
        self.problem, self.fix = problem, fix

    @classmethod
    def naming(cls, headline: str, names: Sequence[str], fix: str, sep: str = ", ") -> RestoreError:
        """`headline: NAME, NAME ... and N more. fix`, naming as many as fit in MESSAGE_CHARS."""
        room = MESSAGE_CHARS - len(f"{headline}: ... and {len(names)} more. {fix}")
        return cls(f"{headline}: {_first_few(names, sep, room)}", fix)


def _first_few(items: Sequence[str], sep: str = ", ", room: int = MESSAGE_CHARS // 3) -> str:
    """Up to _NAMED items within `room` characters (at least one), then "... and N more"."""
    shown: list[str] = []
    for item in items[:_NAMED]:
        if shown and len(sep.join([*shown, item])) > room:
            break
        shown.append(item)
    rest = len(items) - len(shown)
    return sep.join(shown) + (f" ... and {rest} more" if rest else "")


@dataclass
class Entry:
    """The fate of one graph variable."""

    variable: str
    shape: tuple[int, ...]
    status: str  # RESTORED | EXCLUDED | NEW (fresh, allowed) | MISMATCH | MISSING (errors)
    checkpoint_key: str | None = None  # the tensor read (the EMA shadow when that is used)
    checkpoint_shape: tuple[int, ...] | None = None
    transform: str | None = None  # DROP_BACKGROUND | ADD_BACKGROUND
    reason: str = ""
    size: int = 0

    @property
    def renamed(self) -> bool:
        return self.checkpoint_key is not None and self.checkpoint_key != self.variable


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


@dataclass
class RestorePlan:
    """What maps to what, what is skipped and why; prints, saves as JSON and applies in one op."""

    checkpoint: str
    entries: list[Entry]
    unused: list[str]
    rules: list[str]
    options: dict = field(default_factory=dict)
    unmatched_excludes: list[str] = field(default_factory=list)  # exclude scopes under which no variable lies
    _variables: dict = field(default_factory=dict, repr=False)
    _op: object = field(default=None, repr=False)

    def _with(self, *statuses: str) -> list[Entry]:
        return [e for e in self.entries if e.status in statuses]

    @property
    def restored(self) -> list[Entry]:
        return self._with(RESTORED)

    @property
    def renamed(self) -> list[Entry]:
        return [e for e in self.restored if e.renamed]

    @property
    def skipped(self) -> list[Entry]:
        """In the checkpoint's reach but excluded by a scope rule."""
        return self._with(EXCLUDED)

    @property
    def fresh(self) -> list[Entry]:
        """Every variable that keeps its initialiser (excluded, new, or in error)."""
        return [e for e in self.entries if e.status != RESTORED]

    @property
    def errors(self) -> list[Entry]:
        return self._with(*ERRORS)

    # -- checks ---------------------------------------------------------------------------------

    def check(self) -> RestorePlan:
        """Raise RestoreError for variables no rule explains or a plan restoring too little; else return self."""
        whole_plan = f"`finetune inspect CKPT --net {self.options.get('net') or 'NET'}` lists all"
        if self.unmatched_excludes:
            raise RestoreError(
                f"--exclude-scopes {', '.join(self.unmatched_excludes)} matches no variable of the net",
                f"Check the scope names (absolute, or relative to the net's scope); {whole_plan}.")
        mismatched = self._with(MISMATCH)
        if mismatched:
            raise RestoreError.naming(
                f"{len(mismatched)} variables do not fit {self.checkpoint} (graph vs checkpoint)",
                [f"{e.variable} {_shape(e.shape)} vs {_shape(e.checkpoint_shape)}" for e in mismatched],
                f"Fix: --net, --exclude-scopes, or --background-class for 1001/1000; {whole_plan}.", sep="; ")
        missing = self._with(MISSING)
        if missing:
            unused_model = self._unused_by_kind()[0]
            has = f" (it has e.g. {unused_model[0]})" if unused_model else ""
            raise RestoreError.naming(
                f"{len(missing)} variables are missing from {self.checkpoint}",
                [e.variable for e in missing],
                f"Map names with --ckpt-rename OLD:NEW{has}, or --exclude-scopes; {whole_plan}.")
        wanted = [e for e in self.entries if e.status != EXCLUDED and e.reason != TRAINING_STATE]
        restored = self.restored
        if not restored or len(restored) < MIN_RESTORED_FRACTION * len(wanted):
            raise RestoreError(
                f"restore from {self.checkpoint} would restore only {len(restored)} of {len(wanted)} variables "
                "(training from random weights)",
                f"Check --net, --ckpt-rename and --exclude-scopes; {whole_plan}.",
            )
        return self

    # -- reports ----------------------------------------------------------------------------------

    def summary(self) -> str:
        restored, total = self.restored, self.entries
        params = sum(e.size for e in restored)
        all_params = sum(e.size for e in total)
        parts = [f"{len(restored)} of {len(total)} variables restored ({params / 1e6:.2f}M of {all_params / 1e6:.2f}M parameters)"]
        if self.options.get("use_moving_average"):
            parts.append(f"{sum(e.checkpoint_key.endswith(mapping.EMA_SUFFIX) for e in restored)} from EMA shadows")
        if self.renamed:
            parts.append(f"{len(self.renamed)} renamed by {', '.join(self.rules)}")
        parts.append(f"{len(self.fresh)} freshly initialised")
        parts.append(f"{len(self.unused)} unused in the checkpoint")
        if self.errors:
            parts.append(f"{len(self.errors)} ERRORS")
        return f"restore from {self.checkpoint}: " + "; ".join(parts)

    def table(self, limit: int | None = _TABLE_ROWS) -> str:
        """The summary line and a table of every variable not restored as is, then the unused scopes.

        Unused optimizer slots, moving-average shadows and bookkeeping (global_step) share one row;
        to_dict() lists every name.
        """
        from tabulate import tabulate

        rows = [
            (e.variable, _shape(e.shape), e.status, e.reason or e.transform or "")
            for e in self.entries
            if e.status != RESTORED or e.transform
        ]
        rows += self._unused_rows()
        lines = [self.summary()]
        if rows:
            shown = rows if limit is None else rows[:limit]
            lines.append(tabulate(shown, headers=["variable", "shape", "status", "reason"]))
            if len(shown) < len(rows):
                lines.append(f"... and {len(rows) - len(shown)} more rows (the JSON report lists all)")
        return "\n".join(lines)

    def _unused_rows(self) -> list[tuple[str, str, str, str]]:
        """Unused model variables by scope, then one row for the training state (slots, shadows, step)."""
        model, kinds = self._unused_by_kind()
        rows = [(scope + "/*", f"{n} tensors", "unused", "in the checkpoint only")
                for scope, n in sorted(Counter("/".join(k.split("/")[:2]) for k in model).items())]
        if kinds:
            rows.append(("training state", f"{sum(map(len, kinds.values()))} tensors", "unused",
                         "; ".join(_describe_kind(kind, kinds[kind]) for kind in TRAINING_STATE_KINDS if kind in kinds)))
        return rows

    def _unused_by_kind(self) -> tuple[list[str], dict[str, list[str]]]:
        """(unused model variables, {training-state kind: unused keys})."""
        keys = set(self.unused) | {e.checkpoint_key for e in self.restored}
        model, kinds = [], {}
        for key in self.unused:
            kind = _training_state_kind(key, keys)
            if kind is None:
                model.append(key)
            else:
                kinds.setdefault(kind, []).append(key)
        return model, kinds

    def to_dict(self) -> dict:
        def brief(entry: Entry) -> dict:
            return {k: v for k, v in asdict(entry).items() if v not in (None, "")}

        return {
            "checkpoint": self.checkpoint,
            "summary": self.summary(),
            "options": self.options,
            "rules": self.rules,
            "restored": [brief(e) for e in self.restored],
            "renamed": [{"variable": e.variable, "checkpoint_key": e.checkpoint_key} for e in self.renamed],
            "skipped": [brief(e) for e in self.skipped],
            "fresh": [brief(e) for e in self.fresh],
            "errors": [brief(e) for e in self.errors],
            "unused": self.unused,
        }

    def save_json(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write("\n")

    # -- applying -------------------------------------------------------------------------------

    def restore_op(self):
        """One op that reads every planned tensor (one RestoreV2) and assigns it; built once.

        Build it before the graph is finalised; run it after the variables' initialisers (the
        background row added by ADD_BACKGROUND keeps its initial value).
        """
        if self._op is None:
            self._op = self._build_restore_op()
        return self._op

    def apply(self, session) -> None:
        session.run(self.restore_op())

    def init_fn(self):
        """A `Scaffold(init_fn=...)` callable (scaffold, session); builds the op now."""
        op = self.restore_op()
        return lambda scaffold, session: session.run(op)

    def set_whole(self) -> list[str]:
        """Names of the variables the restore op sets whole (every value read from the checkpoint); a variable
        given a background row (ADD_BACKGROUND) keeps that row's initial value, so it is not one of them."""
        return [e.variable for e in self.restored if e.transform != ADD_BACKGROUND]

    def remainder_initializer(self, variables=None):
        """An initializer of the `variables` (default: the graph's global variables) that the restore op does not
        set whole, to run before the restore op instead of initializing everything: a restored variable's random
        initial value would only be overwritten."""
        if not self._variables:
            raise ValueError("this plan was built from variable shapes, not variables: it cannot be applied")
        whole = set(self.set_whole())
        graph = next(iter(self._variables.values())).graph
        with graph.as_default():
            variables = tf.global_variables() if variables is None else variables
            return tf.variables_initializer([v for v in variables if v.op.name not in whole],
                                            name="init_not_restored")

    def _build_restore_op(self):
        import tensorflow as tf2  # after nets.compat

        if not self._variables:
            raise ValueError("this plan was built from variable shapes, not variables: it cannot be applied")
        self.check()
        restored = self.restored
        dtypes = read_variables(self.checkpoint)
        keys = sorted({e.checkpoint_key for e in restored})
        graph = next(iter(self._variables.values())).graph
        with graph.as_default(), tf.name_scope("restore_plan"):
            tensors = tf2.raw_ops.RestoreV2(
                prefix=self.checkpoint,
                tensor_names=keys,
                shape_and_slices=[""] * len(keys),
                dtypes=[tf.as_dtype(dtypes[k].dtype) for k in keys],
            )
            by_key = dict(zip(keys, tensors))
            assigns = [self._assign(self._variables[e.variable], e, by_key[e.checkpoint_key]) for e in restored]
            return tf.group(*assigns, name="restore")

    @staticmethod
    def _assign(variable, entry: Entry, value):
        if value.dtype != variable.dtype.base_dtype:
            value = tf.cast(value, variable.dtype.base_dtype)
        if entry.transform == DROP_BACKGROUND:
            return tf.assign(variable, value[..., 1:])
        if entry.transform == ADD_BACKGROUND:
            return variable[..., 1:].assign(value)
        return tf.assign(variable, value)


def _training_state_kind(key: str, keys: set[str]) -> str | None:
    """OPTIMIZER_SLOT, EMA_SHADOW or BOOKKEEPING for a checkpoint tensor that is no model variable, else None.

    A slot or shadow is named after its variable plus one scope (`.../weights/Momentum`); bookkeeping
    sits outside every scope (global_step, Adam's beta powers), where slim nets keep no variable.
    """
    variable = key.rpartition("/")[0]
    if not variable:
        return BOOKKEEPING
    if variable not in keys:
        return None
    return EMA_SHADOW if key.endswith(mapping.EMA_SUFFIX) else OPTIMIZER_SLOT


def _describe_kind(kind: str, keys: Sequence[str]) -> str:
    """'84 optimizer slots (Momentum)', '10 moving-average shadows (...)', 'bookkeeping: global_step'."""
    if kind == OPTIMIZER_SLOT:
        return f"{len(keys)} optimizer slots ({', '.join(sorted({k.rpartition('/')[2] for k in keys}))})"
    if kind == EMA_SHADOW:
        return f"{len(keys)} moving-average shadows (--ckpt-moving-average restores them)"
    return f"{kind}: {_first_few(keys)}"


def _shape(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


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
    return RestorePlan(prefix, entries, unused, [r.text for r in rules], report, unmatched, by_name)


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
        listed = _first_few([f"{v.name} is {_shape(stored[v.name].shape)} there, {_shape(v.shape)} here"
                             for v in mismatched], "; ")
        raise ValueError(f"{latest} belongs to a different net or class count: {len(mismatched)} variables differ in "
                         f"shape: {listed}. {fix}")
    if missing:
        raise ValueError(
            f"{latest} belongs to a different net or training setup: {len(missing)} of {len(graph_vars)} variables "
            f"are not in it ({_first_few(missing)}). {fix}"
        )
    return latest
