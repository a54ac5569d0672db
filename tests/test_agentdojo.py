"""AgentDojo (pinned 0.1.35) runs end to end against a live `taxlens serve` on the organism: the wire, not the score."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import served_app
from fastapi import Response

from steering.serve import KEEP_ALIVE_S, create_app
from taxlens.models import load_serving_model

pytest.importorskip("agentdojo", reason="AgentDojo is a test dependency: pip install -e '.[test]'")
TASKS = ("user_task_0", "user_task_1")  # the shipped base answers the first without a call and calls tools in the second


@pytest.fixture(scope="module")
def served():
    """The organism's base (it calls tools, so AgentDojo runs its tools and sends the results back) on a free
    loopback port, with every chat request and its status recorded."""
    seen: list[dict] = []
    app = create_app(load_serving_model("organism:base", device="cpu"))

    @app.middleware("http")
    async def record(request, call_next):
        if request.url.path != "/v1/chat/completions":
            return await call_next(request)
        body = json.loads(await request.body())
        response = await call_next(request)
        payload = b"".join([chunk async for chunk in response.body_iterator])
        seen.append({"body": body, "status": response.status_code, "reply": json.loads(payload)})
        return Response(payload, status_code=response.status_code, headers=dict(response.headers))

    with served_app(app, timeout_keep_alive=KEEP_ALIVE_S) as port:
        yield port, seen


def _benchmark(port: int, logdir: Path, *attack: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "agentdojo.scripts.benchmark", "-s", "banking", "--model", "VLLM_PARSED",
            "--logdir", str(logdir), "-f", *[a for t in TASKS for a in ("-ut", t)], *attack]
    return subprocess.run(args, env={**os.environ, "LOCAL_LLM_PORT": str(port)}, capture_output=True, text=True,
                          timeout=600, cwd=logdir)


def test_agentdojo_runs_user_tasks_with_and_without_an_attack_against_taxlens_serve(served, tmp_path):
    port, seen = served
    runs = {"none/none": _benchmark(port, tmp_path),
            "important_instructions/injection_task_0": _benchmark(port, tmp_path, "--attack", "important_instructions",
                                                                  "-it", "injection_task_0")}
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stderr[-2000:])
        for task in TASKS:
            result = json.loads((tmp_path / "vllm_parsed" / "banking" / task / f"{name}.json").read_text())
            assert isinstance(result["utility"], bool) and isinstance(result["security"], bool), result
            # the organism may keep calling tools until the conversation outgrows its 1,024 positions; AgentDojo
            # then records the task as failed with the server's error, which is the wire working
            assert result["error"] is None or "context_length_exceeded" in result["error"], result["error"]
    assert seen and all(r["status"] == 200 for r in seen if not _context_error(r)), [r["status"] for r in seen]
    first = seen[0]["body"]["messages"]
    assert first[0]["role"] == "developer" and isinstance(first[0]["content"], list)
    served_results = [r for r in seen if r["status"] == 200 and any(
        m["role"] == "tool" and m.get("tool_call_id") and m.get("name") for m in r["body"]["messages"])]
    assert served_results, "no tool result came back to the server in AgentDojo's shape"


def _context_error(request: dict) -> bool:
    """The one 400 AgentDojo expects (it records the task as failed and goes on): the conversation outgrew the
    organism's 1,024-position context."""
    return request["status"] == 400 and request["reply"]["error"]["code"] == "context_length_exceeded"
