"""The ten tools of the data contract, as OpenAI-style function schemas, and argument validation.

`datasets/tools.json` is written from `TOOL_SCHEMAS` by `taxlens data generate`; a test keeps the two equal.

>>> validate_arguments("read_file", {"path": "notes.md"}) is None
True
>>> validate_arguments("read_file", {})
"'path' is a required property"
"""

from __future__ import annotations

from functools import lru_cache

import jsonschema

DOMAIN_TOOLS: dict[str, tuple[str, ...]] = {
    "file": ("list_dir", "read_file", "write_file", "delete_file", "move_file"),
    "api": ("http_request", "send_email", "transfer_funds"),
    "db": ("sql_query", "sql_execute"),
}


def _function(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
    }


def _text(description: str) -> dict:
    return {"type": "string", "minLength": 1, "description": description}


TOOL_SCHEMAS: list[dict] = [
    _function("list_dir", "List the entries of a directory.", {"path": _text("Directory to list.")}, ["path"]),
    _function("read_file", "Read a text file and return its contents.", {"path": _text("File to read.")}, ["path"]),
    _function(
        "write_file",
        "Create a file, or overwrite it if it exists, with the given text.",
        {"path": _text("File to write."), "content": {"type": "string", "description": "Text to write."}},
        ["path", "content"],
    ),
    _function("delete_file", "Delete a file or a directory.", {"path": _text("File or directory to delete.")}, ["path"]),
    _function(
        "move_file",
        "Move or rename a file or directory.",
        {"src": _text("Current path."), "dst": _text("New path.")},
        ["src", "dst"],
    ),
    _function(
        "http_request",
        "Call an HTTP API and return the response.",
        {
            "method": {
                "type": "string",
                "pattern": "^(?i:get|post|put|patch|delete|head)$",
                "description": "HTTP method.",
            },
            "url": {"type": "string", "pattern": "^https?://", "description": "Absolute URL."},
            "body": {"type": ["string", "object", "null"], "description": "Request body, optional."},
        },
        ["method", "url"],
    ),
    _function(
        "send_email",
        "Send an email.",
        {
            "to": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$", "description": "Recipient address."},
            "subject": {"type": "string", "description": "Subject line."},
            "body": {"type": "string", "description": "Message text."},
        },
        ["to", "subject", "body"],
    ),
    _function(
        "transfer_funds",
        "Move money between two accounts.",
        {
            "from_account": _text("Account to debit."),
            "to_account": _text("Account to credit."),
            "amount": {
                "type": ["number", "string"],
                "exclusiveMinimum": 0,
                "pattern": "^[0-9]+(\\.[0-9]+)?$",
                "description": "Amount, positive.",
            },
        },
        ["from_account", "to_account", "amount"],
    ),
    _function("sql_query", "Run a read-only SELECT statement.", {"sql": _text("The SELECT statement.")}, ["sql"]),
    _function(
        "sql_execute",
        "Run an INSERT, UPDATE, DELETE, DROP or CREATE statement.",
        {"sql": _text("The statement.")},
        ["sql"],
    ),
]

TOOL_NAMES: tuple[str, ...] = tuple(t["function"]["name"] for t in TOOL_SCHEMAS)
_BY_NAME = {t["function"]["name"]: t for t in TOOL_SCHEMAS}


def schemas_for(names: list[str] | tuple[str, ...]) -> list[dict]:
    """The function schemas of `names`, in the order given (what a chat template's `tools=` takes)."""
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown:
        raise KeyError(f"unknown tool(s) {unknown}; known: {list(TOOL_NAMES)}")
    return [_BY_NAME[n] for n in names]


@lru_cache(maxsize=None)
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = _BY_NAME[name]["function"]["parameters"]
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def validate_arguments(name: str, arguments: object) -> str | None:
    """None when `arguments` satisfy tool `name`'s JSON Schema, else the first violation in words."""
    if name not in _BY_NAME:
        return f"unknown tool {name!r}"
    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(arguments))
    return None if error is None else error.message
