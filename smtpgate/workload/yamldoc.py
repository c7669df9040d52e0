"""YAML documents with their node graph, so every value keeps its line.

`documents()` parses once into nodes and constructs plain data from the same
nodes (SafeLoader: no tags that run code; anchors and `<<` merge keys as YAML
1.1 defines them). `line_of()` finds the line of a value by its path,
following merge keys the way the constructor did (own keys first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from smtpgate.errors import WorkloadError

MAX_BYTES = 16 * 1024 * 1024
MAX_VALUES = 200_000  # values after aliases are expanded: a "billion laughs" file is refused
_MERGE = "tag:yaml.org,2002:merge"


def read_text(path: str, stream: Any = None) -> str:
    """The file (or `stream` for '-') as text, bounded."""
    try:
        if stream is not None:
            data = stream.read(MAX_BYTES + 1)
        else:
            with open(path, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise WorkloadError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise WorkloadError(f"{path}: larger than {MAX_BYTES >> 20} MiB")
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkloadError(f"{path}: not UTF-8 text (byte offset {exc.start})") from exc


def documents(text: str, source: str) -> list[tuple[Any, Node | None]]:
    """Every document as (data, node); YAML errors name source:line:column."""
    loader = yaml.SafeLoader(text)
    out: list[tuple[Any, Node | None]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node) if node is not None else None
            _bounded(data, source)
            out.append((data, node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise WorkloadError(f"{where}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{source}: invalid YAML: {str(exc).splitlines()[0]}") from exc
    except RecursionError as exc:
        raise WorkloadError(f"{source}: invalid YAML: nested too deeply") from exc
    finally:
        loader.dispose()
    return out


def _bounded(data: Any, source: str) -> None:
    count, stack = 0, [data]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise WorkloadError(f"{source}: more than {MAX_VALUES} values once aliases are expanded; refused")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def line_of(node: Node | None, path: Sequence[str | int]) -> int | None:
    """The 1-based line of the value at `path`, or of the deepest node found on the way."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for step in path:
        child = _child(node, step)
        if child is None:
            return line
        node = child
        line = node.start_mark.line + 1
    return line


def key_line_of(node: Node | None, path: Sequence[str | int]) -> int | None:
    """The line of the key that ends `path` (where an unknown key is written)."""
    parent = node
    for step in path[:-1]:
        parent = _child(parent, step) if parent is not None else None
    if isinstance(parent, MappingNode) and path:
        for key, _ in parent.value:
            if isinstance(key, ScalarNode) and key.value == str(path[-1]):
                return key.start_mark.line + 1
    return line_of(node, path)


def _child(node: Node, step: str | int) -> Node | None:
    if isinstance(node, SequenceNode) and isinstance(step, int):
        return node.value[step] if 0 <= step < len(node.value) else None
    if not isinstance(node, MappingNode):
        return None
    merged: list[Node] = []
    for key, value in node.value:
        if key.tag == _MERGE:
            merged += value.value if isinstance(value, SequenceNode) else [value]
        elif isinstance(key, ScalarNode) and key.value == str(step):
            return value
    for source in merged:
        found = _child(source, step)
        if found is not None:
            return found
    return None


def dotted(path: Sequence[str | int]) -> str:
    """`spec.template.spec.containers[1].image`."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out
