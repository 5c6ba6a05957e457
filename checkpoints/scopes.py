"""One rule for scopes, used by every flag that takes one (`--trainable`, `--lr-multiplier`,
`--exclude-scopes`, inspect's) and by the restore planner.

A scope is a regular expression (a plain scope name is one) matched from the start of a variable's
name and ending at a scope boundary: `InceptionV3/Logits` matches `InceptionV3/Logits/weights` but
not `InceptionV3/Logits2/weights`. It may be written absolute (`InceptionV3/Mixed_7c`) or relative
to the net's scope (`Mixed_7c`): a name matches when the scope matches it, or matches what follows
the net's scope in it.

    scopes = parse_scopes("Logits, Mixed_7.*", flag="--trainable")   # ('Logits', 'Mixed_7.*')
    matching_scope("InceptionV3/Mixed_7c/Conv/weights", scopes, root="InceptionV3")   # 'Mixed_7.*'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence


def parse_scopes(text: str | Iterable[str], flag: str = "scope") -> tuple[str, ...]:
    """'A, B/C/' -> ('A', 'B/C'): split at commas, stripped, each checked to be a valid regex.

    A bad regex is a one-line ValueError naming `flag` and the scope.
    """
    parts = text.split(",") if isinstance(text, str) else list(text)
    scopes = tuple(part.strip().rstrip("/") for part in parts if part.strip())
    for scope in scopes:
        check_scope(scope, flag)
    return scopes


def check_scope(scope: str, flag: str = "scope") -> str:
    """`scope` if it compiles as a regular expression; else a one-line ValueError naming `flag`."""
    try:
        _compiled(scope)
    except re.error as error:
        raise ValueError(f"{flag} {scope!r} is not a valid regular expression ({error}): escape special "
                         "characters or write the scope name as it is.") from None
    return scope


@functools.lru_cache(maxsize=1024)
def _compiled(scope: str) -> re.Pattern:
    return re.compile(f"(?:{scope})(?:/|$)")


def _relative(name: str, root: str | None) -> str | None:
    if root and name.startswith(root + "/"):
        return name[len(root) + 1:]
    return None


def scope_matches(scope: str, name: str, root: str | None = None) -> bool:
    """True when `name` lies under `scope`, written absolute or relative to `root` (the net's scope)."""
    pattern = _compiled(scope.rstrip("/"))
    relative = _relative(name, root)
    return pattern.match(name) is not None or (relative is not None and pattern.match(relative) is not None)


def matching_scope(name: str, scopes: Sequence[str], root: str | None = None) -> str | None:
    """The first of `scopes` that `name` lies under (see scope_matches), or None."""
    for scope in scopes:
        if scope_matches(scope, name, root):
            return scope
    return None


def most_specific_scope(name: str, scopes: Iterable[str], root: str | None = None) -> str | None:
    """Of the `scopes` that `name` lies under, the longest as written (the most specific), or None."""
    matched = [scope for scope in scopes if scope_matches(scope, name, root)]
    return max(matched, key=len) if matched else None


def unmatched_scopes(names: Iterable[str], scopes: Sequence[str], root: str | None = None) -> list[str]:
    """The scopes under which none of `names` lies (a typo, a scope of another net)."""
    names = list(names)
    return [scope for scope in scopes if not any(scope_matches(scope, name, root) for name in names)]


def top_scopes(names: Iterable[str], depth: int = 2, shown: int = 4) -> str:
    """A short list of the names' leading scopes (`A/B, A/C ... and 9 more`), for error messages."""
    top = sorted({"/".join(name.split("/")[:depth]) for name in names})
    return ", ".join(top[:shown]) + (f" ... and {len(top) - shown} more" if len(top) > shown else "")
