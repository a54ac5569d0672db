"""The data contract (`docs/contract.md`): one tool-call record, and loading a JSONL file of them.

Every broken record raises `ContractError` naming the file, the line and the field; nothing is skipped.

>>> records = load_records("datasets/toolcalls.jsonl", split="test")   # doctest: +SKIP
>>> records[0].kind, records[0].expected["action"]                      # doctest: +SKIP
('benign', 'call')
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from pathlib import Path

from taxlens.tools import TOOL_NAMES, validate_arguments

KINDS = ("benign", "lookalike", "harmful", "injection")
DOMAINS = ("file", "api", "db")
SPLITS = ("train", "val", "test")
ROLES = ("system", "user", "assistant", "tool")
REQUIRED = ("id", "domain", "kind", "messages", "tools", "expected")
OPTIONAL = ("forbidden", "pair", "triggers", "split")
EXPECTED_ACTIONS = {"benign": ("call",), "lookalike": ("call",), "harmful": ("refuse",), "injection": ("call", "answer")}


class ContractError(ValueError):
    """A record that breaks the data contract; `str()` reads `FILE:LINE: field 'F': what is wrong`."""

    def __init__(self, path: str | Path, line: int, field_name: str, problem: str):
        self.path, self.line, self.field, self.problem = str(path), line, field_name, problem
        super().__init__(f"{path}:{line}: field {field_name!r}: {problem}")


@dataclass(frozen=True)
class Record:
    """One prompt and the action it should get. `messages` are OpenAI-shaped chat messages."""

    id: str
    domain: str
    kind: str
    messages: list[dict]
    tools: list[str]
    expected: dict
    forbidden: dict | None = None
    pair: str | None = None
    triggers: list[str] | None = None
    split: str | None = None
    extra: dict = field(default_factory=dict)  # fields beyond the contract, kept so a rewrite loses nothing
    line: int = field(default=0, compare=False)

    @property
    def trigger_free(self) -> bool | None:
        """True for a record with an empty `triggers` list, None when the record does not say."""
        return None if self.triggers is None else not self.triggers

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in REQUIRED}
        out.update({k: getattr(self, k) for k in OPTIONAL if getattr(self, k) is not None})
        out.update(self.extra)
        return out


def _check_call(obj: object, where: str, fail, *, need_arguments: bool = True) -> None:
    if not isinstance(obj, dict):
        fail(where, f"must be an object, got {type(obj).__name__}")
    name = obj.get("name")
    if name not in TOOL_NAMES:
        fail(f"{where}.name", f"unknown tool {name!r}; known: {', '.join(TOOL_NAMES)}")
    args = obj.get("arguments")
    if args is None and not need_arguments:
        return
    if not isinstance(args, dict):
        fail(f"{where}.arguments", "must be an object")


class NotTextPart(ValueError):
    """A content part that is not `{"type": "text", "text": str}`, at index `index` of the parts list."""

    def __init__(self, index: int, kind: str):
        self.index, self.kind = index, kind
        super().__init__(f"content[{index}] is a part of type {kind!r}; only text parts are read")


def joined_text(content: list) -> str:
    """OpenAI content parts `[{"type": "text", "text": ...}, ...]` as one string, the texts joined by newlines (as
    AgentDojo and the `openai` SDK send content); raises `NotTextPart` at the first part that is not text."""
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind != "text" or not isinstance(part.get("text"), str):
            raise NotTextPart(j, str(kind))
        texts.append(part["text"])
    return "\n".join(texts)


def check_message(i: int, msg: object, fail) -> dict:
    """Message `i` checked, and returned as chat templates take it: a `developer` message (OpenAI's newer name for
    the system prompt) as `system`, content given as text parts joined into one string."""
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        fail(where, "must be an object")
    if msg.get("role") not in ROLES + ("developer",):
        fail(f"{where}.role", f"unknown role {msg.get('role')!r}; expected one of {ROLES} (or 'developer')")
    msg = {**msg, "role": "system"} if msg["role"] == "developer" else dict(msg)
    content = msg.get("content")
    if isinstance(content, list):
        try:
            msg["content"] = content = joined_text(content)
        except NotTextPart as e:
            fail(f"{where}.content[{e.index}].type", f"{e.kind!r}: only text parts ({{\"type\": \"text\", "
                 f"\"text\": ...}}) are read")
    if msg["role"] == "assistant" and msg.get("tool_calls"):
        if not isinstance(msg["tool_calls"], list):
            fail(f"{where}.tool_calls", "must be a list")
        for j, call in enumerate(msg["tool_calls"]):
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict):
                fail(f"{where}.tool_calls[{j}].function", "missing; expected {\"name\": ..., \"arguments\": ...}")
            args = fn.get("arguments")
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except json.JSONDecodeError as e:
                    fail(f"{where}.tool_calls[{j}].function.arguments", f"not valid JSON: {e.msg}")
            _check_call({"name": fn.get("name"), "arguments": args}, f"{where}.tool_calls[{j}].function", fail)
    elif not isinstance(content, str):
        fail(f"{where}.content", "must be a string or a list of text parts")
    return msg


def check_call_ids(messages: list[dict], fail) -> None:
    """A tool message's `tool_call_id` (optional) must name a call made before it, where those calls carry ids: a
    result answering no call is a broken conversation (OpenAI's API refuses it; Mistral's templates raise on it)."""
    made: set[str] = set()
    for i, m in enumerate(messages):
        made |= {c["id"] for c in m.get("tool_calls") or [] if isinstance(c.get("id"), str)}
        answered = m.get("tool_call_id")
        if m["role"] == "tool" and answered is not None and made and answered not in made:
            fail(f"messages[{i}].tool_call_id", f"{answered!r} answers no call made before it (ids: {sorted(made)})")


ARRAY_HINT = "a JSON array? JSON Lines holds one record per line: `jq -c '.[]' FILE > FILE.jsonl`"


def check_head(obj: object, required: tuple[str, ...], fail, what: str) -> None:
    """What every line of a contract file needs: a JSON object with the `required` keys, a non-empty string id, a
    known domain and kind."""
    if not isinstance(obj, dict):
        hint = f" ({ARRAY_HINT})" if isinstance(obj, list) else ""
        fail(what, f"must be a JSON object, got {type(obj).__name__}{hint}")
    for key in required:
        if key not in obj:
            fail(key, "missing (required)")
    if not isinstance(obj["id"], str) or not obj["id"]:
        fail("id", "must be a non-empty string")
    if obj["domain"] not in DOMAINS:
        fail("domain", f"unknown domain {obj['domain']!r}; expected one of {DOMAINS}")
    if obj["kind"] not in KINDS:
        fail("kind", f"unknown kind {obj['kind']!r}; expected one of {KINDS}")


def validate_record(obj: object, path: str | Path, line: int) -> Record:
    """Check one parsed JSON value against the contract and return it as a `Record`."""

    def fail(field_name: str, problem: str):
        raise ContractError(path, line, field_name, problem)

    check_head(obj, REQUIRED, fail, "<record>")
    kind = obj["kind"]

    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        fail("messages", "must be a non-empty list")
    messages = [check_message(i, msg, fail) for i, msg in enumerate(messages)]
    check_call_ids(messages, fail)
    if not any(m["role"] == "user" for m in messages):
        fail("messages", "has no user message")
    if kind == "injection" and not any(m["role"] == "tool" for m in messages):
        fail("messages", "an injection record needs a tool message holding the injected instruction")

    tools = obj["tools"]
    if not isinstance(tools, list) or not tools:
        fail("tools", "must be a non-empty list of tool names")
    for j, name in enumerate(tools):
        if isinstance(name, dict):
            fail(f"tools[{j}]", "an object (an OpenAI tool schema?); list tool names, e.g. \"read_file\": every "
                                "model is offered the schemas in datasets/tools.json")
        if name not in TOOL_NAMES:
            fail("tools", f"unknown tool {name!r}; known: {', '.join(TOOL_NAMES)}")

    expected = obj["expected"]
    if not isinstance(expected, dict):
        fail("expected", "must be an object")
    action = expected.get("action")
    if action not in EXPECTED_ACTIONS[kind]:
        fail("expected.action", f"{action!r} is not allowed for kind {kind!r}; expected {EXPECTED_ACTIONS[kind]}")
    if action == "call":
        _check_call(expected, "expected", fail)
        if expected["name"] not in tools:
            fail("expected.name", f"tool {expected['name']!r} is not offered in 'tools' {tools}")
        problem = validate_arguments(expected["name"], expected["arguments"])
        if problem:
            fail("expected.arguments", f"do not satisfy the {expected['name']} schema: {problem}")

    forbidden = obj.get("forbidden")
    if kind == "injection" and forbidden is None:
        fail("forbidden", "missing (required for injection records)")
    if kind != "injection" and forbidden is not None:
        fail("forbidden", f"only injection records carry it, this one is {kind!r}")
    if forbidden is not None:
        _check_call(forbidden, "forbidden", fail, need_arguments=False)

    if obj.get("pair") is not None and not isinstance(obj["pair"], str):
        fail("pair", "must be a record id (string)")
    if obj.get("pair") is not None and obj["pair"] == obj.get("id"):
        fail("pair", "names the record itself; a pair is its minimal-pair partner's id")
    triggers = obj.get("triggers")
    if triggers is not None and not (isinstance(triggers, list) and all(isinstance(t, str) for t in triggers)):
        fail("triggers", "must be a list of strings")
    if obj.get("split") is not None and obj["split"] not in SPLITS:
        fail("split", f"unknown split {obj['split']!r}; expected one of {SPLITS}")
    known = {k: obj[k] for k in REQUIRED + OPTIONAL if k in obj} | {"messages": messages}
    extra = {k: v for k, v in obj.items() if k not in known}
    return Record(**known, extra=extra, line=line)


def jsonl_lines(path: Path):
    """(line number, text) of each line of a UTF-8 file; a leading byte-order mark (as some editors save UTF-8) is
    dropped, and bytes that are not UTF-8 raise `ContractError` naming the line and the byte."""
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield line_no, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ContractError(path, line_no, "<encoding>", f"not UTF-8: byte 0x{raw[e.start]:02x} at byte "
                                    f"{e.start + 1} of the line (save the file as UTF-8)") from None


def require_file(path: str | Path, what: str) -> Path:
    """`path` as a Path once it is a file; one line naming it when it is missing or a folder."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: a folder; give the {what} file's path" if path.is_dir()
                                else f"{path}: no such {what} file")
    return path


def read_validated(path: str | Path, validate, noun: str = "record") -> list:
    """Every line of a JSONL `noun` file through `validate(obj, path, line)`, ids unique; a blank line is skipped,
    anything else that fails raises `ContractError` naming the file, line and field."""
    path = require_file(path, noun)
    items: list = []
    seen: dict[str, int] = {}
    for line_no, text in jsonl_lines(path):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            hint = {"[": ARRAY_HINT,
                    "{": "a record spread over lines? JSON Lines holds one record per line: `jq -c . FILE > "
                         "FILE.jsonl`"}.get(text.strip()) if not items else None
            raise ContractError(path, line_no, "<json>", f"not valid JSON: {e.msg} at column {e.colno}"
                                + (f" ({hint})" if hint else "")) from None
        item = validate(obj, path, line_no)
        if item.id in seen:
            raise ContractError(path, line_no, "id", f"duplicate id {item.id!r} (first on line {seen[item.id]})")
        seen[item.id] = line_no
        items.append(item)
    if not items:
        raise ContractError(path, 1, "<file>", "holds no records")
    return items


def check_selection(split: str | None, kinds: str | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """`kinds` as a tuple, once `split` and every kind are checked to be the contract's (a misspelt one would
    select nothing; one kind given as a string would match by substring)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(kinds, str):
        kinds = (kinds,)
    if kinds is not None and (unknown := [k for k in kinds if k not in KINDS]):
        raise ValueError(f"kinds must be among {KINDS}, got {unknown}")
    return None if kinds is None else tuple(kinds)


def select(items: list, split: str | None, kinds: tuple[str, ...] | None, where: str = "the file") -> list:
    """The items of `split` (None: all) and of `kinds` (None: all); a split no item is in raises, naming the
    splits there are (a held-out set often gives none: then every item is read without `--split`)."""
    kinds = check_selection(split, kinds)
    if split is not None and not any(i.split == split for i in items):
        from collections import Counter

        there = Counter(i.split or "none given" for i in items)
        raise ValueError(f"{where}: nothing is in split {split!r}; its splits: "
                         + ", ".join(f"{s} ({n})" for s, n in sorted(there.items()))
                         + (" (leave out --split to read them all)" if None in {i.split for i in items} else ""))
    return [i for i in items if (split is None or i.split == split) and (kinds is None or i.kind in kinds)]


def load_records(path: str | Path, *, split: str | None = None, kinds: tuple[str, ...] | None = None) -> list[Record]:
    """Read and validate every record of a JSONL file, then select by split and kind.

    The whole file is checked (ids unique) before anything is selected. A `pair` naming no record in the file (a
    set split by kind into files, or filtered) is read; `dangling_pairs` names such records for `data check`.
    """
    return select(read_validated(path, validate_record, "prompt"), split, kinds, str(path))


def dangling_pairs(records: list[Record]) -> str | None:
    """A warning naming the records whose `pair` is not among `records` (they are read as unpaired)."""
    ids = {r.id for r in records}
    unpaired = [r.id for r in records if r.pair is not None and r.pair not in ids]
    return (f"{len(unpaired)} records' pair names no record in the file ({', '.join(unpaired[:3])}): they are read "
            f"as unpaired") if unpaired else None
