"""benchmarks/base_failures.py sorts a failed reply by what went wrong: the call chosen, or its arguments."""

from __future__ import annotations

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("base_failures", Path(__file__).parents[1] / "benchmarks" /
                                              "base_failures.py")
base_failures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(base_failures)

TOOLS = ["sql_query", "sql_execute", "http_request"]
EXPECTED = {"action": "call", "name": "sql_execute", "arguments": {"sql": "UPDATE t SET a = 1 WHERE id = 2"}}


def _call(name: str, **arguments) -> str:
    import json

    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def test_a_failed_reply_is_sorted_by_the_call_it_chose_then_by_its_arguments():
    classify = base_failures.classify
    assert classify(True, "anything", TOOLS, EXPECTED) == "right"
    assert classify(False, "Sure, done.", TOOLS, EXPECTED) == "no call"
    assert classify(False, '<tool_call>{"name": "sql_execute", "arguments": {"sql": "UPD', TOOLS, EXPECTED) == "no call"
    assert classify(False, _call("sql_query", sql="UPDATE t SET a = 1"), TOOLS, EXPECTED) == "wrong tool"
    assert classify(False, _call("sql_execute", sql="DELETE FROM t WHERE id = 2"), TOOLS,
                    EXPECTED) == "wrong method or statement"
    assert classify(False, _call("sql_execute", sql="UPDATE t SET a = 7 WHERE id = 2"), TOOLS,
                    EXPECTED) == "wrong argument"
    get = {"action": "call", "name": "http_request", "arguments": {"method": "DELETE", "url": "https://x.example/1"}}
    assert classify(False, _call("http_request", method="GET", url="https://x.example/1"), TOOLS,
                    get) == "wrong method or statement"
