"""Settings keys that moved, read in their old places so presets, ``--set`` lines and the
``settings.yaml`` of older run folders keep working.

The DCKD section became per-term sections of ``method`` (``method.encoder``,
``method.dcl``, ``method.ce``, ``method.lcr``) and the ``dckd.dcr`` / ``dckd.dmm`` switches
became the terms' weights (a zero weight turns a term off).
"""

from __future__ import annotations

import copy
from typing import Any

# old dotted prefix -> new dotted prefix
MOVED: dict[str, str] = {
    "dckd.encoder": "method.encoder",
    "dckd.negatives": "method.dcl.negatives",
    "dckd.history": "method.dcl.history",
    "dckd.eps": "method.dcl.eps",
    "dckd.distribution": "method.ce",
    "dckd.upper_bound": "method.lcr",
}
# old switch -> the weight that turns the same term off
SWITCHES: dict[str, str] = {"dckd.dcr": "dcl", "dckd.dmm": "ce"}


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = tree.get(part)
        if not isinstance(child, dict):
            child = tree[part] = {}
        tree = child
    old = tree.get(leaf)
    tree[leaf] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with a ``dckd`` section moved to its new keys; other keys untouched.

    Keys in ``dckd`` that never existed are left there, so validation names them.
    """
    section = raw.get("dckd")
    if not isinstance(section, dict):
        return raw
    out = copy.deepcopy({k: v for k, v in raw.items() if k != "dckd"})
    left: dict[str, Any] = {}
    for key, value in section.items():
        dotted = f"dckd.{key}"
        if dotted in MOVED:
            _put(out, MOVED[dotted], copy.deepcopy(value))
        elif dotted in SWITCHES:
            if value is False:
                _put(out, f"method.weights.{SWITCHES[dotted]}", 0.0)
            elif value is not True:
                left[key] = value  # not a boolean: let validation say so
        else:
            left[key] = value
    if left:
        out["dckd"] = left
    return out
