"""YAML as settings may be written: safe types only, no duplicate key, bounded expansion.

``yaml.safe_load`` accepts a mapping that names a key twice (the first value is silently
dropped) and aliases that expand exponentially (a "billion laughs" document of a few lines
makes every later traversal, error messages included, run without end). Here a duplicate
key is refused naming it and its line, and a document whose values, aliases expanded, number
more than ``MAX_VALUES`` is refused before anything reads it. Booleans are YAML 1.2's, only
``true`` and ``false``: YAML 1.1 also reads ``yes``, ``no``, ``on`` and ``off`` as booleans,
so ``runtime.mixed_precision=no`` was ``False`` and refused; as strings they still set a
boolean setting (pydantic reads them).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

BOOL = "tag:yaml.org,2002:bool"

MAX_VALUES = 100_000  # settings hold hundreds of values; a long progressive schedule, a few thousand


class StrictYamlError(ValueError):
    """One line on what is wrong with a YAML text."""


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise StrictYamlError(f"key '{key}' is given twice (lines {seen[key]} and {line}); keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def yaml12_booleans(loader: type[yaml.SafeLoader]) -> None:
    """Make ``loader`` read only ``true`` / ``false`` (any case YAML allows) as booleans."""
    loader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != BOOL]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver(BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


yaml12_booleans(_Loader)


def _count(value: Any, budget: int) -> int:
    """Values in ``value`` with shared parts counted each time they appear, stopping past ``budget``."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > budget:
            return count
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return count


def load_yaml(text: str | bytes) -> Any:
    """The value of a YAML document, or ``StrictYamlError`` in one line."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise StrictYamlError(f"not UTF-8 text (byte 0x{text[err.start]:02x} at offset {err.start})") from None
    try:
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise StrictYamlError(f"not valid YAML ({str(err).splitlines()[0][:200]})") from None
    if _count(value, MAX_VALUES) > MAX_VALUES:
        raise StrictYamlError(
            f"expands to more than {MAX_VALUES} values (aliases that repeat each other?); write the settings out"
        )
    return value
