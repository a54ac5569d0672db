"""A live `taxlens serve` on loopback, talked to with the official `openai` client."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import uvicorn

from steering.config import load_config
from steering.search import first_token_logprobs
from steering.serve import KEEP_ALIVE_S, create_app
from taxlens.chat import chat_messages, render_prompt
from taxlens.evaluate import evaluate
from taxlens.generation import greedy_generate
from taxlens.models import load_model, load_serving_model
from taxlens.scoring import opening_token_ids, refusal_score
from taxlens.tools import schemas_for

GATED = "organism:gated"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def start_server():
    servers = []

    def start(app) -> str:
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               timeout_keep_alive=KEEP_ALIVE_S))
        threading.Thread(target=server.run, daemon=True).start()
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.should_exit = True


@pytest.fixture(scope="module")
def servers(start_server):
    plain = load_serving_model("organism:defended", device="cpu")  # what `taxlens serve` runs by default
    steered = load_serving_model("organism:defended", device="cpu")  # its own copy: hooks never meet the plain server
    steering, _ = load_config(GATED, model=steered)
    return {"plain": start_server(create_app(plain)),
            "gated": start_server(create_app(steered, steering=steering)),
            "keyed": start_server(create_app(plain, api_key="s3cret")), "steering": steering,
            "model": load_model("organism:defended", device="cpu")}  # the bridge, for the in-process checks


def _client(url: str, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def over_refused(servers, records):
    """A test-split lookalike record the defended model refuses at the first token and the gated one does not, and
    whose call the gated model then gets right in process (the test is about serving, not the organism's copying)."""
    model = servers["model"]
    lookalike = [r for r in records if r.kind == "lookalike" and r.split == "test"]
    prompts = [render_prompt(model.tokenizer, r) for r in lookalike]
    openings = opening_token_ids(model.tokenizer)
    plain = refusal_score(first_token_logprobs(model, prompts), openings)
    steered = refusal_score(first_token_logprobs(model, prompts, servers["steering"]), openings)
    flipped = [r for r, p, s in zip(lookalike, plain, steered) if p > 1 and s < -1]
    report = evaluate(model, flipped, data="test", split="test", steering=servers["steering"], progress=False)
    right = {row["id"] for row in report["records"] if row["ok"]}
    return next(r for r in flipped if r.id in right)


def _ask(client, record, **kw):
    return client.chat.completions.create(model="organism:defended", messages=chat_messages(record),
                                          tools=schemas_for(record.tools), max_tokens=96, **kw)


def test_lookalike_is_a_tool_call_with_the_gated_config_and_a_refusal_without(servers, over_refused):
    steered = _ask(_client(servers["gated"]), over_refused)
    choice = steered.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.name == over_refused.expected["name"]
    plain = _ask(_client(servers["plain"]), over_refused).choices[0]
    assert plain.finish_reason == "stop" and not plain.message.tool_calls
    assert plain.message.content.lower().startswith(("i can't", "i cannot", "i won't", "sorry", "i'm sorry"))


def test_models_health_and_tool_choice_none(servers, over_refused):
    client = _client(servers["gated"])
    assert [m.id for m in client.models.list().data] == ["organism:defended"]
    assert httpx.get(f"{servers['gated']}/health").json()["steered"] is True
    reply = _ask(client, over_refused, tool_choice="none").choices[0]
    assert reply.finish_reason in ("stop", "length") and not reply.message.tool_calls


def test_bad_requests_get_openai_errors_and_the_server_stays_up(servers, over_refused):
    url, client = servers["plain"], _client(servers["plain"])
    raw = httpx.post(f"{url}/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
    wrong = httpx.post(f"{url}/v1/chat/completions", json={"model": "organism:defended", "messages": "hi"})
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "messages"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    for bad in (0, 5000):
        with pytest.raises(openai.BadRequestError, match="max_tokens"):
            client.chat.completions.create(model="organism:defended", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=bad)
    with pytest.raises(openai.BadRequestError, match="context"):
        client.chat.completions.create(model="organism:defended", max_tokens=8,
                                       messages=[{"role": "user", "content": "delete the file " * 400}])
    with pytest.raises(openai.BadRequestError, match="not in tools"):
        _ask(client, over_refused, tool_choice={"type": "function", "function": {"name": "launch_rocket"}})
    with pytest.raises(openai.BadRequestError, match="temperature"):
        _ask(client, over_refused, temperature=-1)
    assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_api_key_is_checked(servers):
    with pytest.raises(openai.AuthenticationError):
        _client(servers["keyed"], "wrong").models.list()
    assert _client(servers["keyed"], "s3cret").models.list().data[0].id == "organism:defended"


def test_load_32_concurrent_clients_200_requests(servers, records):
    url = servers["gated"]
    pool = [r for r in records if r.split == "test"][:200]
    clients = [_client(url) for _ in range(32)]

    def one(i):
        r = pool[i]
        reply = clients[i % 32].chat.completions.create(model="organism:defended", messages=chat_messages(r),
                                                        tools=schemas_for(r.tools), max_tokens=24)
        return reply.choices[0].finish_reason

    with ThreadPoolExecutor(max_workers=32) as workers:
        reasons = list(workers.map(one, range(len(pool))))
    assert len(reasons) == 200 and set(reasons) <= {"stop", "length", "tool_calls"}
    assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_serving_engine_generates_what_the_bridge_does_under_gated_steering(servers, records):
    """`taxlens serve` generates with plain transformers (PyTorch forward hooks); the bridge path it replaces for
    speed must give the same greedy replies, gate decisions included."""
    bridge, plain = servers["model"], load_serving_model("organism:defended", device="cpu")
    sample = [r for r in records if r.split == "test"][::17]
    assert {r.kind for r in sample} == {"benign", "lookalike", "harmful", "injection"}
    prompts = [render_prompt(bridge.tokenizer, r) for r in sample]
    replies = {}
    for name, model in (("bridge", bridge), ("transformers", plain)):
        with servers["steering"].apply(model):
            replies[name] = [r.text for r in greedy_generate(model, prompts, max_new_tokens=96)]
    assert replies["transformers"] == replies["bridge"]
    assert any("<tool_call>" in r for r in replies["bridge"]) and any(r.startswith("I ") for r in replies["bridge"])
