"""The transaction catalogue (catalogue.yaml) and the checks run before anything is sent.

`transaction(infno)` looks one up; `validate_input(infno, input)` raises
`engine.errors.InputError` (party his) naming every field at fault, so HIS learns what to
fix without the centre being called.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from engine.errors import InputError

FieldType = Literal["str", "number", "int", "date", "datetime", "list", "object"]
Endpoint = Literal["call", "upload", "download", "sign_in", "sign_out"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    shape: Literal["object", "list"]
    required: dict[str, FieldType]
    optional: dict[str, FieldType] = field(default_factory=dict)
    optional_node: bool = False


@dataclass(frozen=True)
class Transaction:
    infno: str
    name: str
    nodes: tuple[NodeSpec, ...]
    output: tuple[str, ...] = ()
    retry_safe: bool = False
    moves_money: bool = False
    reversal: str | None = None
    endpoint: Endpoint = "call"
    sign_in: bool = True
    requires: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def main_node(self) -> str:
        return self.nodes[0].name


class InputProblems(InputError):
    """HIS input with one or more bad fields; `problems` lists `(field, reason)` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        fields = ", ".join(path for path, _ in problems)
        reason = "; ".join(f"{path}: {why}" for path, why in problems)
        super().__init__(reason, field=fields)
        self.args = (reason,)


@cache
def catalogue() -> dict[str, Transaction]:
    """Every catalogued transaction by infno, read once from catalogue.yaml."""
    text = resources.files(__name__).joinpath("catalogue.yaml").read_text(encoding="utf-8")
    return {str(infno): _transaction(str(infno), spec) for infno, spec in yaml.safe_load(text).items()}


def transaction(infno: str) -> Transaction:
    """The catalogued transaction; InputError (party his) for an unknown code."""
    found = catalogue().get(str(infno))
    if found is None:
        raise InputError(f"unknown transaction code {infno!r}", field="infno")
    return found


def _transaction(infno: str, spec: dict[str, Any]) -> Transaction:
    nodes = tuple(
        NodeSpec(
            name=name,
            shape=node["shape"],
            required=dict(node.get("required", {})),
            optional=dict(node.get("optional", {})),
            optional_node=bool(node.get("optional_node", False)),
        )
        for name, node in spec["input"].items()
    )
    return Transaction(
        infno=infno,
        name=spec["name"],
        nodes=nodes,
        output=tuple(spec.get("output", ())),
        retry_safe=bool(spec.get("retry_safe", False)),
        moves_money=bool(spec.get("moves_money", False)),
        reversal=spec.get("reversal"),
        endpoint=spec.get("endpoint", "call"),
        sign_in=bool(spec.get("sign_in", True)),
        requires=dict(spec.get("requires", {})),
    )


def validate_input(infno: str, value: Any) -> Transaction:
    """Check HIS's `input` against the catalogue; every problem is named at once."""
    spec = transaction(infno)
    if not isinstance(value, dict):
        raise InputProblems([("input", f"must be an object with node(s) {_node_names(spec)}")])
    problems: list[tuple[str, str]] = []
    for node in spec.nodes:
        path = f"input.{node.name}"
        content = value.get(node.name)
        if content is None:
            if not node.optional_node:
                problems.append((path, f"required node missing (the {spec.infno} input node is {node.name!r})"))
            continue
        if node.shape == "object":
            if not isinstance(content, dict):
                problems.append((path, "must be an object"))
                continue
            problems.extend(_record_problems(node, content, path))
        else:
            if not isinstance(content, list):
                problems.append((path, "must be a list"))
                continue
            if not content and not node.optional_node:
                problems.append((path, "must not be empty"))
            for index, row in enumerate(content):
                row_path = f"{path}[{index}]"
                if not isinstance(row, dict):
                    problems.append((row_path, "must be an object"))
                    continue
                problems.extend(_record_problems(node, row, row_path))
    problems.extend(_conditional_problems(spec, value))
    if problems:
        raise InputProblems(problems)
    return spec


def _record_problems(node: NodeSpec, record: dict[str, Any], path: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, kind in node.required.items():
        found = record.get(name)
        if found is None or found == "":
            problems.append((f"{path}.{name}", "required"))
        elif (why := _type_problem(found, kind)) is not None:
            problems.append((f"{path}.{name}", why))
    for name, kind in node.optional.items():
        found = record.get(name)
        if found is not None and found != "" and (why := _type_problem(found, kind)) is not None:
            problems.append((f"{path}.{name}", why))
    return problems


def _type_problem(value: Any, kind: FieldType) -> str | None:
    ok = {
        "str": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "date": lambda v: isinstance(v, str) and _DATE.match(v) is not None,
        "datetime": lambda v: isinstance(v, str) and _DATETIME.match(v) is not None,
        "list": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }[kind](value)
    if ok:
        return None
    expected = {"date": "a date yyyy-MM-dd", "datetime": "a time yyyy-MM-dd HH:mm:ss",
                "str": "a string"}.get(kind, f"a {kind}")
    return f"must be {expected}, got {type(value).__name__} {str(value)[:20]!r}"


def _conditional_problems(spec: Transaction, value: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for target, rule in spec.requires.items():
        conditions: dict[str, Any] = rule["when"]
        why = " and ".join(f"{path} is {expected!r}" for path, expected in conditions.items())
        for where, record, prefix in _records(value, target):
            applies = all(
                _lookup(record, path.removeprefix(prefix)) == expected for path, expected in conditions.items()
            )
            if applies and _lookup(record, target.removeprefix(prefix)) in (None, ""):
                problems.append((f"input.{where}{target.removeprefix(prefix)}", f"required when {why}"))
    return problems


def _records(value: dict[str, Any], target: str) -> list[tuple[str, dict[str, Any], str]]:
    """What a conditional requirement is checked on, as (path, record, prefix its paths drop):
    the whole input, or, for `node[].field`, each row of the list node on its own."""
    node, separator, _ = target.partition("[].")
    if not separator:
        return [("", value, "")]
    rows = value.get(node)
    if not isinstance(rows, list):
        return []
    return [(f"{node}[{index}].", row, f"{node}[].") for index, row in enumerate(rows) if isinstance(row, dict)]


def _lookup(value: dict[str, Any], dotted: str) -> Any:
    current: Any = value
    for part in dotted.split("."):
        current = current.get(part) if isinstance(current, dict) else None
    return current


def _node_names(spec: Transaction) -> str:
    return ", ".join(node.name for node in spec.nodes)
