"""The restore plan as a value: which graph variable gets which checkpoint tensor, what is left fresh and why.

`RestorePlan` holds one `Entry` per graph variable and the checkpoint's unused tensors. It checks
itself (`check()`: any shape mismatch or missing variable that no rule explains is a `RestoreError`,
and so is a plan that restores nothing or far less than the net; the error is one line: the count,
the first few variables, the flags that fix it), reports itself (`summary()`, `table()`, `to_dict()`
and `save_json()` list every variable) and applies itself (`restore_op()`: one RestoreV2 op for every
tensor plus the assignments, sliced for the background-class offset, grouped; checkpoints/restore_op.py).
Building a plan from a graph and a checkpoint is checkpoints/planner.py's (`build_plan`, `plan_restore`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from checkpoints import mapping
from checkpoints import restore_op as _restore_op
from checkpoints.restore_op import ADD_BACKGROUND, DROP_BACKGROUND  # noqa: F401 (the transforms an Entry names)
from nets import spec

RESTORED, EXCLUDED, NEW, MISMATCH, MISSING = "restored", "excluded", "new", "mismatch", "missing"
ERRORS = (MISMATCH, MISSING)
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
        return cls(f"{headline}: {first_few(names, sep, room)}", fix)


def first_few(items: Sequence[str], sep: str = ", ", room: int = MESSAGE_CHARS // 3) -> str:
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
    checkpoint_shapes: dict = field(default_factory=dict, repr=False)  # every checkpoint tensor: name -> shape

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
        another_net = self._another_net(whole_plan)
        if another_net:
            raise another_net
        mismatched = self._with(MISMATCH)
        if mismatched:
            raise RestoreError.naming(
                f"{len(mismatched)} variables do not fit {self.checkpoint} (graph vs checkpoint)",
                [f"{e.variable} {shape_text(e.shape)} vs {shape_text(e.checkpoint_shape)}" for e in mismatched],
                f"Fix: --net, --exclude-scopes, or --background-class for 1001/1000; {whole_plan}.", sep="; ")
        missing = self._with(MISSING)
        if missing:
            unused_model = self._unused_by_kind()[0]
            has = f" (it has e.g. {unused_model[0]})" if unused_model else ""
            raise RestoreError.naming(
                f"{len(missing)} variables are missing from {self.checkpoint}",
                [e.variable for e in missing],
                f"Map names with --ckpt-rename OLD:NEW{has}, or --exclude-scopes; {whole_plan}.")
        wanted, restored = self._wanted(), self.restored
        if not restored or len(restored) < MIN_RESTORED_FRACTION * len(wanted):
            raise RestoreError(
                f"restore from {self.checkpoint} would restore only {len(restored)} of {len(wanted)} variables "
                "(training from random weights)",
                f"Check --net, --ckpt-rename and --exclude-scopes; {whole_plan}.",
            )
        return self

    def _wanted(self) -> list[Entry]:
        return [e for e in self.entries if e.status != EXCLUDED and e.reason != TRAINING_STATE]

    def _another_net(self, whole_plan: str) -> RestoreError | None:
        """The error for a checkpoint of another net than the plan's: most variables in error, and its names and
        shapes those of another published net (named), or some missing and some of another shape."""
        net, wanted, restored = self.options.get("net"), self._wanted(), self.restored
        missing, mismatched = self._with(MISSING), self._with(MISMATCH)
        if not net or not (missing or mismatched) or len(restored) >= MIN_RESTORED_FRACTION * len(wanted):
            return None
        likely = spec.likely_net(self.checkpoint_shapes)
        if likely == net or (likely is None and not (missing and mismatched)):
            return None  # the net's own checkpoint, renamed or cut: the errors below say what differs
        restoring = f"only {len(restored)}" if restored else "none"
        return RestoreError(
            f"{self.checkpoint} looks like a checkpoint of {likely or 'another net'}, not {net}: {restoring} of the "
            f"{len(wanted)} variables would restore ({len(missing)} missing, {len(mismatched)} of another shape)",
            f"Give {f'--net {likely}' if likely else 'the --net it was made for'}, or a checkpoint of {net}; "
            f"{whole_plan}.")

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
            (e.variable, shape_text(e.shape), e.status, e.reason or e.transform or "")
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

    # -- applying (checkpoints/restore_op.py) ------------------------------------------------------

    def restore_op(self):
        """One op that reads every planned tensor (one RestoreV2) and assigns it; built once.

        Build it before the graph is finalised; run it after the variables' initialisers (the
        background row added by ADD_BACKGROUND keeps its initial value).
        """
        if self._op is None:
            self._require_variables()
            self.check()
            self._op = _restore_op.build_restore_op(self.checkpoint, self.restored, self._variables)
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
        return _restore_op.set_whole(self.restored)

    def remainder_initializer(self, variables=None):
        """An initializer of the `variables` (default: the graph's global variables) that the restore op does not
        set whole, to run before the restore op instead of initializing everything: a restored variable's random
        initial value would only be overwritten."""
        self._require_variables()
        return _restore_op.remainder_initializer(self.restored, self._variables, variables)

    def _require_variables(self) -> None:
        if not self._variables:
            raise ValueError("this plan was built from variable shapes, not variables: it cannot be applied")


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
    return f"{kind}: {first_few(keys)}"


def shape_text(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"
