"""YAML reading that keeps file and line numbers, so every data error can say where it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class DataError(ValueError):
    """A problem in a project file: says which file, which line and what to fix."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path:
            where = f"{self.path}:{line}: " if line else f"{self.path}: "
        super().__init__(where + message)
        self.message = message


class _Str(str):
    """A string that remembers the line it came from (1-based)."""

    line: int = 0


class _Dict(dict):
    line: int = 0


class _List(list):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings, sequences and strings carry `.line`."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Dict:
    loader.flatten_mapping(node)
    result = _Dict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from exc
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _List:
    result = _List(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


def _construct_str(loader: _LineLoader, node: yaml.ScalarNode) -> _Str:
    value = _Str(loader.construct_scalar(node))
    value.line = node.start_mark.line + 1
    return value


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_LineLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def line_of(value: Any) -> int | None:
    """Line a loaded value started on, when known."""
    return getattr(value, "line", None) or None


def load_yaml_text(text: str, path: str | Path = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise DataError(
            f"invalid YAML: {problem}"
            + (f" ({exc.context})" if exc.context else "")
            + " — check indentation, quoting and the '-' of list items",
            path,
            line,
        ) from None
    except yaml.YAMLError as exc:
        raise DataError(f"invalid YAML: {exc}", path) from None


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror}", path) from None
    return load_yaml_text(text, path)


def plain(value: Any) -> Any:
    """The loaded value with plain dict/list/str types (for JSON and pickling)."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def validate(model: type[M], raw: Any, path: str | Path) -> M:
    """`model.model_validate` on a loaded YAML value; the first problem becomes a DataError with its file and line."""
    try:
        return model.model_validate(plain(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        node: Any = raw
        line = line_of(raw)
        for key in first["loc"]:  # the deepest node that knows its line (numbers and booleans do not)
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                break
            line = line_of(node) or line
        where = ".".join(str(p) for p in first["loc"])
        message = str(first.get("ctx", {}).get("error") or first["msg"])  # a validator's own words when it has them
        raise DataError(f"{where}: {message}", path, line) from None
