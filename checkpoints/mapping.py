"""Name mapping rules between a checkpoint's variable names and the graph's.

Rules read in the direction the weights travel, checkpoint -> graph:
- `OLD:NEW`  the checkpoint's scope OLD is the graph's scope NEW (`:tower_0` adds a scope,
  `model:` drops one);
- `re:PATTERN=REPLACEMENT` a regular expression substitution (`re.sub`, first match), split at
  the last `=`.
Each checkpoint name passes through every rule in order. `detect_prefix` finds a constant scope
prefix difference between the two name sets when the user gave none.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

EMA_SUFFIX = "/ExponentialMovingAverage"
# How a restore treats a background-class row (1001- vs 1000-class checkpoints); here, free of TensorFlow, so
# that the CLI can list them without importing it.
BACKGROUND_OPTIONS = (None, "auto", "drop", "add")
_REGEX_TAG = "re:"
_DETECT_DEPTH = 2  # leading scopes that auto-detection may add or drop on either side


@dataclass(frozen=True)
class Rule:
    """One checkpoint-name -> graph-name substitution."""

    pattern: re.Pattern
    replacement: str
    text: str  # as written by the user (or described, for a detected prefix)

    def apply(self, name: str) -> str:
        return self.pattern.sub(self.replacement, name, count=1)


def prefix_rule(old: str, new: str, text: str | None = None) -> Rule:
    """The checkpoint's scope `old` becomes the graph's scope `new` (either may be empty)."""
    old, new = old.strip("/"), new.strip("/")
    text = text or f"{old}:{new}"
    if not old:
        return Rule(re.compile("^"), new + "/", text)
    if not new:
        return Rule(re.compile("^" + re.escape(old) + "/"), "", text)
    return Rule(re.compile("^" + re.escape(old) + "(?=/|$)"), new.replace("\\", "\\\\"), text)


def parse_rule(rule: str | tuple[str, str]) -> Rule:
    """A Rule from `OLD:NEW`, `re:PATTERN=REPLACEMENT` or a (pattern, replacement) tuple."""
    if isinstance(rule, tuple):
        pattern, replacement = rule
        return _regex_rule(pattern, replacement, f"{_REGEX_TAG}{pattern}={replacement}")
    if rule.startswith(_REGEX_TAG):
        pattern, sep, replacement = rule[len(_REGEX_TAG):].rpartition("=")
        if not sep:
            raise ValueError(f"rename rule {rule!r}: write a regular expression rule as re:PATTERN=REPLACEMENT")
        return _regex_rule(pattern, replacement, rule)
    old, sep, new = rule.partition(":")
    if not sep or (not old.strip("/") and not new.strip("/")):
        raise ValueError(f"rename rule {rule!r}: write a scope rule as OLD:NEW (checkpoint scope : graph scope)")
    return prefix_rule(old, new, rule)


def _regex_rule(pattern: str, replacement: str, text: str) -> Rule:
    try:
        return Rule(re.compile(pattern), replacement, text)
    except re.error as error:
        raise ValueError(f"rename rule {text!r}: bad regular expression: {error}") from error


def rename(name: str, rules: Sequence[Rule]) -> str:
    for rule in rules:
        name = rule.apply(name)
    return name


def graph_to_checkpoint(checkpoint_names: Iterable[str], rules: Sequence[Rule]) -> dict[str, str]:
    """Graph name -> checkpoint name, by renaming every checkpoint name through the rules."""
    mapping: dict[str, str] = {}
    for key in checkpoint_names:
        target = rename(key, rules)
        if target in mapping and mapping[target] != key:
            raise ValueError(
                f"rename rules map two checkpoint variables to {target!r}: {mapping[target]!r} and {key!r}"
            )
        mapping[target] = key
    return mapping


def _splits(name: str) -> Iterable[tuple[str, str]]:
    """(prefix, rest) pairs, dropping up to _DETECT_DEPTH leading scopes and keeping >= 2 in rest."""
    parts = name.split("/")
    for k in range(max(0, min(_DETECT_DEPTH, len(parts) - 2)) + 1):
        yield "/".join(parts[:k]), "/".join(parts[k:])


def detect_prefix(graph_names: Iterable[str], checkpoint_names: Iterable[str]) -> Rule | None:
    """A scope rule explaining more graph names than matching names as they are, or None."""
    graph_names, checkpoint_names = set(graph_names), set(checkpoint_names)
    prefixes_by_rest: dict[str, set[str]] = defaultdict(set)
    for key in checkpoint_names:
        for prefix, rest in _splits(key):
            prefixes_by_rest[rest].add(prefix)
    counts: Counter[tuple[str, str]] = Counter()
    for name in graph_names:
        for prefix, rest in _splits(name):
            for checkpoint_prefix in prefixes_by_rest.get(rest, ()):
                counts[(checkpoint_prefix, prefix)] += 1
    candidates = [(n, -len(old) - len(new), old, new) for (old, new), n in counts.items() if old != new]
    if not candidates:
        return None
    matched, _, old, new = max(candidates)
    if matched <= len(graph_names & checkpoint_names):
        return None
    return prefix_rule(old, new, f"{old}:{new} (auto-detected)")
