"""The agent-task contract (`docs/contract.md`, "Agent tasks"): one multi-step task, the environment it runs in, and
the checks on the final state that score it.

Every broken task raises `ContractError` naming the file, the line and the field; nothing is skipped.

>>> tasks = load_tasks("datasets/agent_tasks.jsonl", split="test")     # doctest: +SKIP
>>> tasks[0].kind, len(tasks[0].solution)                               # doctest: +SKIP
('benign', 2)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from taxlens.contract import (SPLITS, ContractError, check_call_ids, check_head, check_message, jsonl_lines,
                              read_validated, select)
from taxlens.tools import TOOL_NAMES, validate_arguments

CHECKS = {  # check type → the fields it needs (beyond "check")
    "file_absent": ("path",),
    "file_present": ("path",),
    "file_contains": ("path", "text"),
    "sql": ("query", "rows"),
    "request": ("method", "url"),
    "mail": ("to",),
}
CHECK_OPTIONAL = {"request": ("body_contains",), "mail": ("subject_contains", "body_contains")}
ENVIRONMENT_KEYS = ("home", "files", "db", "accounts", "routes", "user_email")
REQUIRED = ("id", "domain", "kind", "messages", "tools", "environment", "solution", "success")
OPTIONAL = ("forbidden", "attack", "injected_by", "family", "split", "triggers", "pair", "max_steps")


@dataclass(frozen=True)
class Environment:
    """What a task's sandbox is laid out from. Paths are the agent's (absolute, or relative to `home`); a key ending
    in "/" is an empty directory. `db` holds SQL statements run at set-up; `accounts` rows of the ledger
    (`id`, `owner`, `balance`); `routes` what the HTTP service answers (`method`, `url`, `status`, `body`)."""

    home: str = "/home/user"
    files: dict[str, str] = field(default_factory=dict)
    db: list[str] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=list)
    routes: list[dict] = field(default_factory=list)
    user_email: str = "user@home.example"


@dataclass(frozen=True)
class AgentTask:
    """One task: the conversation's opening, the tools offered, the environment, a reference solution (the calls a
    competent agent makes; none for a harmful task, which should be refused), the `success` checks that must all
    hold on the final state, and the `forbidden` checks of which none may hold (harm done, or an attack obeyed).
    `attack` is what the harmful request or the injected instruction asks for, as calls; for an injected task
    `injected_by` is the index of the solution call whose result carries the injection."""

    id: str
    domain: str
    kind: str
    messages: list[dict]
    tools: list[str]
    environment: Environment
    solution: list[dict]
    success: list[dict]
    forbidden: list[dict] = field(default_factory=list)
    attack: list[dict] = field(default_factory=list)
    injected_by: int | None = None
    family: str | None = None
    split: str | None = None
    triggers: list[str] | None = None
    pair: str | None = None
    max_steps: int | None = None
    line: int = field(default=0, compare=False)

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in REQUIRED if k != "environment"}
        env = self.environment
        out["environment"] = {k: getattr(env, k) for k in ENVIRONMENT_KEYS}
        out.update({k: getattr(self, k) for k in OPTIONAL if getattr(self, k) not in (None, [])})
        return out


def _check_calls(calls: object, where: str, tools: list[str], fail) -> None:
    if not isinstance(calls, list):
        fail(where, "must be a list of calls")
    for i, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or \
                not isinstance(call.get("arguments"), dict):
            fail(f"{where}[{i}]", 'must be {"name": ..., "arguments": {...}}')
        if call["name"] not in tools:
            fail(f"{where}[{i}].name", f"tool {call['name']!r} is not offered in 'tools' {tools}")
        problem = validate_arguments(call["name"], call["arguments"])
        if problem:
            fail(f"{where}[{i}].arguments", f"do not satisfy the {call['name']} schema: {problem}")


def _check_checks(checks: object, where: str, fail) -> None:
    if not isinstance(checks, list):
        fail(where, "must be a list of checks")
    for i, check in enumerate(checks):
        kind = check.get("check") if isinstance(check, dict) else None
        if kind not in CHECKS:
            fail(f"{where}[{i}].check", f"unknown check {kind!r}; expected one of {tuple(CHECKS)}")
        for key in CHECKS[kind]:
            if key not in check:
                fail(f"{where}[{i}].{key}", f"missing (a {kind} check needs {CHECKS[kind]})")
        unknown = set(check) - {"check", *CHECKS[kind], *CHECK_OPTIONAL.get(kind, ())}
        if unknown:
            fail(f"{where}[{i}]", f"unknown field(s) {sorted(unknown)} for a {kind} check")
        if kind == "sql" and not isinstance(check["rows"], list):
            fail(f"{where}[{i}].rows", "must be a list of rows (lists)")


def _environment(obj: object, fail) -> Environment:
    if not isinstance(obj, dict):
        fail("environment", "must be an object")
    unknown = set(obj) - set(ENVIRONMENT_KEYS)
    if unknown:
        fail("environment", f"unknown field(s) {sorted(unknown)}; known: {ENVIRONMENT_KEYS}")
    files = obj.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        fail("environment.files", "must map paths to text")
    if not isinstance(obj.get("home", "/"), str) or not obj.get("home", "/").startswith("/"):
        fail("environment.home", "must be an absolute path (the agent's home, e.g. /home/user)")
    if not isinstance(obj.get("user_email", ""), str):
        fail("environment.user_email", "must be an e-mail address (text)")
    for name in ("db", "accounts", "routes"):
        if not isinstance(obj.get(name, []), list):
            fail(f"environment.{name}", "must be a list")
    if not all(isinstance(s, str) for s in obj.get("db", [])):
        fail("environment.db", "must be a list of SQL statements")
    for i, acct in enumerate(obj.get("accounts", [])):
        if not isinstance(acct, dict) or set(acct) != {"id", "owner", "balance"}:
            fail(f"environment.accounts[{i}]", 'must be {"id", "owner", "balance"}')
        if not (isinstance(acct["id"], str) and isinstance(acct["owner"], str) and _is_number(acct["balance"])):
            fail(f"environment.accounts[{i}]", "id and owner are text, balance a number")
    for i, route in enumerate(obj.get("routes", [])):
        if not isinstance(route, dict) or not {"method", "url"} <= set(route):
            fail(f"environment.routes[{i}]", 'needs "method" and "url" ("status", "body" optional)')
        status = route.get("status", 200)
        if not (isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599):
            fail(f"environment.routes[{i}].status", f"must be an HTTP status, 100 to 599; got {status!r}")
    return Environment(**obj)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_task(obj: object, path: str | Path, line: int) -> AgentTask:
    """Check one parsed JSON value against the agent-task contract and return it as an `AgentTask`."""

    def fail(field_name: str, problem: str):
        raise ContractError(path, line, field_name, problem)

    check_head(obj, REQUIRED, fail, "<task>")
    unknown = set(obj) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        fail("<task>", f"unknown field(s) {sorted(unknown)}")
    kind = obj["kind"]
    messages = obj["messages"]
    if not isinstance(messages, list) or not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
        fail("messages", "must be a list holding a user message")
    messages = [check_message(i, msg, fail) for i, msg in enumerate(messages)]
    check_call_ids(messages, fail)
    tools = obj["tools"]
    if not isinstance(tools, list) or not tools or any(t not in TOOL_NAMES for t in tools):
        fail("tools", f"must be a non-empty list of tool names from {TOOL_NAMES}")
    _check_calls(obj["solution"], "solution", tools, fail)
    _check_calls(obj.get("attack", []), "attack", tools, fail)
    _check_checks(obj["success"], "success", fail)
    _check_checks(obj.get("forbidden", []), "forbidden", fail)
    if kind == "harmful" and obj["solution"]:
        fail("solution", "a harmful task is refused: its solution is the empty list")
    if kind in ("harmful", "injection") and not (obj.get("forbidden") and obj.get("attack")):
        fail("forbidden", f"a {kind} task needs 'forbidden' checks and the 'attack' calls that trip them")
    if kind != "harmful" and not (obj["solution"] and obj["success"]):
        fail("solution", f"a {kind} task needs a non-empty solution and success checks")
    injected_by = obj.get("injected_by")
    if kind == "injection" and not (isinstance(injected_by, int) and 0 <= injected_by < len(obj["solution"])):
        fail("injected_by", "an injection task names the solution call whose result carries the injection")
    if obj.get("split") is not None and obj["split"] not in SPLITS:
        fail("split", f"unknown split {obj['split']!r}; expected one of {SPLITS}")
    steps = obj.get("max_steps")
    if steps is not None and not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1):
        fail("max_steps", "must be a positive integer")
    fields = {k: obj[k] for k in REQUIRED + OPTIONAL if k in obj}
    fields["environment"] = _environment(obj["environment"], fail)
    fields["messages"] = messages
    return AgentTask(**fields, line=line)


def load_tasks(path: str | Path, *, split: str | None = None, kinds: tuple[str, ...] | None = None) -> list[AgentTask]:
    """Read and validate every task of a JSONL file (ids unique), then select by split and kind."""
    return select(read_validated(path, validate_task, "task"), split, kinds, str(path))


def first_record(path: str | Path) -> dict | None:
    """The file's first record as a JSON object (None when the file is missing or empty, or that line is not one):
    enough to tell an agent-task file from a prompt file before either is validated."""
    if not Path(path).is_file():
        return None
    for _, text in jsonl_lines(Path(path)):
        if text.strip():
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                return None
            return obj if isinstance(obj, dict) else None
    return None


def is_task_file(path: str | Path) -> bool:
    """True when the file's first record is an agent task (it has an `environment`), not a prompt record."""
    return "environment" in (first_record(path) or {})


def check_task_file(path: str | Path) -> None:
    """Raise `ValueError` when `path` is plainly a prompt file (its first record has `expected` and no
    `environment`), saying which command reads it."""
    first = first_record(path) or {}
    if "expected" in first and "environment" not in first:
        raise ValueError(f"{path} is a prompt file (its records have 'expected', not 'environment'): evaluate it with "
                         f"`taxlens eval --data {path}`; `--tasks` takes an agent-task file")
    return False
