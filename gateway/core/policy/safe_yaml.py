"""`yaml.safe_load` with bounds: policy files are read without exhausting the stack or the memory.

`load` returns the document, or None after adding a problem that says where
the text is not valid YAML. Pure: the caller passes the text.
"""

from __future__ import annotations

from typing import NoReturn

import yaml

from .problems import Problems

MAX_YAML_DEPTH = 64  # levels of nesting, aliases expanded (the demo policy needs 7)
MAX_YAML_VALUES = 100_000  # values, aliases expanded (the demo policy has about 700)


class _LimitedLoader(yaml.SafeLoader):
    """`yaml.safe_load` that refuses, before building anything, what would exhaust the stack or
    the memory: nesting deeper than MAX_YAML_DEPTH, alias bombs ("billion laughs") that expand
    to more than MAX_YAML_VALUES values, and aliases that contain themselves."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                problem = f"nested more than {MAX_YAML_DEPTH} levels deep"
                event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
                raise yaml.composer.ComposerError(None, None, problem, event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        value = super().construct_yaml_int(node)
        if abs(value).bit_length() > 14_000:  # about 4,200 digits: Python refuses to write it out
            raise yaml.constructor.ConstructorError(None, None, "a number with thousands of digits",
                                                    node.start_mark)
        return value

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node


_LimitedLoader.add_constructor("tag:yaml.org,2002:int", _LimitedLoader.construct_yaml_int)


def _check_expansion(root: yaml.Node) -> None:
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels below), aliases expanded
    open_nodes: set[int] = set()

    def fail(node: yaml.Node, problem: str) -> NoReturn:
        raise yaml.composer.ComposerError(None, None, problem, node.start_mark)

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in open_nodes:
            fail(node, "an alias refers to a value that contains it")
        if key not in measured:
            if depth > MAX_YAML_DEPTH:
                fail(node, f"nested more than {MAX_YAML_DEPTH} levels deep once aliases are expanded")
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = node.value
            else:
                children = []
            open_nodes.add(key)
            values, below = 1, 0
            for child in children:
                child_values, child_below = measure(child, depth + 1)
                values, below = values + child_values, max(below, child_below + 1)
                if values > MAX_YAML_VALUES:
                    fail(node, f"more than {MAX_YAML_VALUES} values once aliases are expanded")
            open_nodes.discard(key)
            measured[key] = (values, below)
        values, below = measured[key]
        if depth + below > MAX_YAML_DEPTH:
            fail(node, f"nested more than {MAX_YAML_DEPTH} levels deep once aliases are expanded")
        return values, below

    measure(root, 0)


def load(text: str, problems: Problems) -> object:
    """The YAML document in `text`, or None with a problem added for `problems.file`."""
    loader = None
    try:
        loader = _LimitedLoader(text)
        document: object = loader.get_single_data()
        return document
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        problems.add(where, f"not valid YAML: {reason}")
        return None
    except (ValueError, TypeError, AttributeError, LookupError, OverflowError) as exc:
        # PyYAML's constructors let these through for values it recognizes but cannot build:
        # 2026-13-45, an integer of thousands of digits, `!!timestamp soon`, `!!int ''`
        problems.add("", f"not valid YAML: a value cannot be read ({exc})")
        return None
    finally:
        if loader is not None:
            loader.dispose()
