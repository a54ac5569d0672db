"""A live `taxlens serve` on loopback, talked to with the official `openai` client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import openai
import pytest
from conftest import served_app

from steering.config import load_config
from steering.search import first_token_logprobs
from steering.serve import GATE_HEADER, KEEP_ALIVE_S, create_app
from taxlens.chat import chat_messages, render_prompt
from taxlens.eval_report import EvalReport
from taxlens.evaluation import evaluate
from taxlens.generation import greedy_generate
from taxlens.models import load_model, load_serving_model
from taxlens.scoring import opening_token_ids, refusal_score
from taxlens.tools import schemas_for

GATED = "organism:gated"


@pytest.fixture(scope="module")
def start_server():
    with ExitStack() as servers:

        def start(app) -> str:
            return f"http://127.0.0.1:{servers.enter_context(served_app(app, timeout_keep_alive=KEEP_ALIVE_S))}"

        yield start


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
    """A val lookalike record the defended model leans to refuse at the first token and the gated one does not, and
    whose call the gated model then gets right in process (the test is about serving, not the organism's copying)."""
    model = servers["model"]
    lookalike = [r for r in records if r.kind == "lookalike" and r.split == "val"]
    prompts = [render_prompt(model.tokenizer, r) for r in lookalike]
    openings = opening_token_ids(model.tokenizer)
    plain = refusal_score(first_token_logprobs(model, prompts), openings)
    steered = refusal_score(first_token_logprobs(model, prompts, servers["steering"]), openings)
    flipped = [r for r, p, s in zip(lookalike, plain, steered) if p > 0 and s < 0]
    report = evaluate(model, flipped, data="val", split="val", steering=servers["steering"], progress=False)
    right = {row.id for row in report.records if row.ok}
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


def test_a_gated_server_says_in_a_header_what_its_gate_decided(servers, over_refused):
    gate = servers["steering"].gate
    for stream in (False, True):  # the lookalike the gated config turns into a call: the gate sent it to the ablation
        raw = _client(servers["gated"]).chat.completions.with_raw_response.create(
            model="organism:defended", messages=chat_messages(over_refused), tools=schemas_for(over_refused.tools),
            max_tokens=8, stream=stream)
        decision, p = raw.headers[GATE_HEADER].split("; p_harmful=")
        assert decision == "ablate" and 0.0 <= float(p) < gate.threshold, stream
    raw = _client(servers["plain"]).chat.completions.with_raw_response.create(
        model="organism:defended", messages=chat_messages(over_refused), max_tokens=8)
    assert GATE_HEADER not in raw.headers


def test_models_health_and_tool_choice_none(servers, over_refused):
    client = _client(servers["gated"])
    assert [m.id for m in client.models.list().data] == ["organism:defended"]
    assert httpx.get(f"{servers['gated']}/health").json()["steered"] is True
    reply = _ask(client, over_refused, tool_choice="none").choices[0]
    assert reply.finish_reason in ("stop", "length") and not reply.message.tool_calls
    # served as auto (decoding is not constrained): the same reply as when the client leaves the choice to the model
    said = [(m.content, [(c.function.name, c.function.arguments) for c in m.tool_calls or []])
            for m in (_ask(client, over_refused, **kw).choices[0].message for kw in ({"tool_choice": "required"}, {}))]
    assert said[0] == said[1]
    with pytest.raises(openai.BadRequestError, match="needs tools"):
        client.chat.completions.create(model="organism:defended", messages=[{"role": "user", "content": "hi"}],
                                       tool_choice="required")


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


def test_an_api_key_may_come_from_the_environment(monkeypatch):
    from taxlens.cli import build_parser

    commands = (["serve", "--model", "m"], ["eval", "--model", "m", "--data", "d", "--out", "r.json"],
                ["agent", "run", "--model", "m", "--tasks", "t", "--out", "a.json"])
    monkeypatch.delenv("TAXLENS_API_KEY", raising=False)
    assert all(build_parser().parse_args(c).api_key is None for c in commands)
    monkeypatch.setenv("TAXLENS_API_KEY", "s3cret")
    assert all(build_parser().parse_args(c).api_key == "s3cret" for c in commands)
    assert build_parser().parse_args(commands[0] + ["--api-key", "other"]).api_key == "other"


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
    assert any("<tool_call>" in r for r in replies["bridge"]) and any(r.startswith("I") for r in replies["bridge"])


def _agentdojo_messages(record):
    """The record as AgentDojo's OpenAI client sends it: the system prompt as `developer`, content as text parts."""
    messages = [{"role": "developer", "content": [{"type": "text", "text": "You are a helpful agent."}]}]
    for m in chat_messages(record):
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [{**c, "function": {**c["function"], "arguments": json.dumps(c["function"]["arguments"])}}
                               for c in m["tool_calls"]]
            m["content"] = None
        elif m["role"] == "tool":
            m["name"] = "read_file"
        if isinstance(m.get("content"), str):
            m["content"] = [{"type": "text", "text": m["content"]}]
        messages.append(m)
    return messages


def test_requests_in_the_shapes_agent_clients_send_are_served(servers, records):
    url = servers["plain"]
    injection = next(r for r in records if r.kind == "injection" and r.split == "test")
    body = {"model": "organism:defended", "messages": _agentdojo_messages(injection), "tools": schemas_for(injection.tools),
            "tool_choice": "auto", "max_completion_tokens": 48, "parallel_tool_calls": False, "seed": 1,
            "some_future_field": {"ignored": True}, "logprobs": False, "response_format": {"type": "text"},
            "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {}, "user": "u1"}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    plain = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
        "model": "organism:defended", "messages": [{"role": "user", "content": "Say something."}],
        "max_tokens": 48, "stop": ["a", "e"]}).json()["choices"][0]
    assert plain["finish_reason"] == "stop" and not {"a", "e"} & set(plain["message"]["content"])


@pytest.mark.parametrize("body, param, code", [
    ({"n": 2}, "n", "unsupported_value"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content[0].type", "unsupported_content_type"),
    ({"max_completion_tokens": 0}, "max_completion_tokens", "invalid_value"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role", "invalid_value"),
    ({"model": None}, "model", "invalid_type"),
    ({"messages": [{"role": "user", "content": "delete the file " * 400}]}, "messages", "context_length_exceeded"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{path: a}"}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": "x"}]}, "messages", "invalid_value"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function"}]}, {"role": "tool", "tool_call_id": "c1", "content": "x"}]}, "messages",
     "invalid_value"),
    ({"logprobs": True}, "logprobs", "unsupported_parameter"),
    ({"top_logprobs": 3}, "top_logprobs", "unsupported_parameter"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "response_format",
     "unsupported_parameter"),
    ({"logit_bias": {"50256": -100}}, "logit_bias", "unsupported_parameter"),
    ({"presence_penalty": 0.5}, "presence_penalty", "unsupported_parameter"),
    ({"top_p": 0}, "top_p", "invalid_value"),
])
def test_every_4xx_names_type_param_and_code(servers, body, param, code):
    full = {"model": "organism:defended", "messages": [{"role": "user", "content": "hi"}], **body}
    reply = httpx.post(f"{servers['plain']}/v1/chat/completions", json=full, timeout=60)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code), error
    if "tool_calls" in str(body):
        said = "function.arguments is not JSON" if "arguments" in str(body) else "needs a function object with a name"
        assert "messages[1].tool_calls[0]" in error["message"] and said in error["message"], error


def test_top_p_is_honoured_when_sampling(servers, over_refused):
    client = _client(servers["plain"])
    greedy = _ask(client, over_refused).choices[0].message
    # top_p this small keeps only the likeliest token, so a sampled reply is the greedy one at any seed
    narrow = [_ask(client, over_refused, temperature=2.0, top_p=1e-6, seed=s).choices[0].message for s in (1, 2)]
    assert all((m.content, m.tool_calls and m.tool_calls[0].function.arguments)
               == (greedy.content, greedy.tool_calls and greedy.tool_calls[0].function.arguments) for m in narrow)


def test_streamed_replies_carry_the_same_tool_call_and_text(servers, over_refused):
    client = _client(servers["gated"])
    whole = _ask(client, over_refused).choices[0].message.tool_calls[0].function
    name, arguments, finish, chunks = "", "", None, 0
    for chunk in _ask(client, over_refused, stream=True, stream_options={"include_usage": True}):
        chunks += 1
        if chunk.choices:
            for call in chunk.choices[0].delta.tool_calls or []:
                name += call.function.name or ""
                arguments += call.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
        else:
            assert chunk.usage.completion_tokens > 0
    assert (name, json.loads(arguments), finish) == (whole.name, json.loads(whole.arguments), "tool_calls")
    assert chunks >= 5
    text = "".join(c.choices[0].delta.content or "" for c in _ask(_client(servers["plain"]), over_refused, stream=True)
                   if c.choices)
    assert text == _ask(_client(servers["plain"]), over_refused).choices[0].message.content


def test_load_32_concurrent_clients_200_requests_half_of_them_streamed(servers, records):
    url = servers["gated"]
    pool = [r for r in records if r.split == "test"][:200]
    clients = [_client(url) for _ in range(32)]

    def one(i):
        r, client = pool[i], clients[i % 32]
        ask = dict(model="organism:defended", messages=chat_messages(r), tools=schemas_for(r.tools), max_tokens=24)
        if i % 2:
            return [c.choices[0].finish_reason for c in client.chat.completions.create(stream=True, **ask)
                    if c.choices and c.choices[0].finish_reason][-1]
        return client.chat.completions.create(**ask).choices[0].finish_reason

    with ThreadPoolExecutor(max_workers=32) as workers:
        reasons = list(workers.map(one, range(len(pool))))
    assert len(reasons) == 200 and set(reasons) <= {"stop", "length", "tool_calls"}
    assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_eval_against_an_endpoint_labels_what_the_model_in_process_does(servers, records, tmp_path):
    from taxlens.cli import main

    sample = [r for r in records if r.split == "test"][::40]
    data = tmp_path / "sample.jsonl"
    data.write_text("".join(json.dumps({k: v for k, v in r.to_json().items() if k != "pair"}) + "\n" for r in sample))
    assert main(["eval", "--endpoint", f"{servers['plain']}/v1", "--model", "organism:defended", "--data", str(data),
                 "--max-new-tokens", "96", "--out", str(tmp_path / "endpoint.json")]) == 0
    remote = EvalReport.read(tmp_path / "endpoint.json")
    local = evaluate(servers["model"], sample, data=str(data), split=None, max_new_tokens=96, progress=False)
    assert [r.label for r in remote.records] == [r.label for r in local.records]
    assert [r.ok for r in remote.records] == [r.ok for r in local.records]
    assert remote.kinds.keys() == local.kinds.keys() and remote.records[0].refusal_score is None
    assert main(["eval", "--endpoint", f"{servers['plain']}/v1", "--model", "organism:defended", "--data", str(data),
                 "--steer", "organism:gated", "--out", str(tmp_path / "x.json")]) == 2
    # behind a gated server, each row keeps what the server's gate decided: what the same gate decides here
    assert main(["eval", "--endpoint", f"{servers['gated']}/v1", "--model", "organism:defended", "--data", str(data),
                 "--max-new-tokens", "4", "--out", str(tmp_path / "gated.json")]) == 0
    remote = EvalReport.read(tmp_path / "gated.json")
    local = evaluate(servers["model"], sample, data=str(data), split=None, steering=servers["steering"],
                     max_new_tokens=4, progress=False)
    assert [r.gate for r in remote.records] == [r.gate for r in local.records]
    assert all(abs(a.gate_p_harmful - b.gate_p_harmful) < 1e-3 for a, b in zip(remote.records, local.records))
    assert {r.gate for r in remote.records} >= {"ablate", "add"}


def test_eval_against_an_endpoint_stops_on_a_record_past_the_context_or_skips_it(servers, records, tmp_path, capsys):
    from taxlens.cli import main

    short = next(r for r in records if r.split == "test" and r.kind == "benign").to_json()
    short.pop("pair", None)
    long = {**short, "id": "long-system-prompt",
            "messages": [{"role": "system", "content": "The agent serves the ops team. " * 300}] + short["messages"]}
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in (short, long)))
    args = ["eval", "--endpoint", f"{servers['plain']}/v1", "--model", "organism:defended", "--data", str(data),
            "--max-new-tokens", "4", "--out", str(tmp_path / "r.json")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{data}, line 2, record 'long-system-prompt'" in err and "context_length_exceeded" in err
    assert "--skip-unrenderable" in err
    assert main(args + ["--skip-unrenderable"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [s["id"] for s in report["meta"]["unrenderable"]] == ["long-system-prompt"]
    assert [r["id"] for r in report["records"]] == [short["id"]]


@pytest.mark.parametrize("status, body, overflow", [
    (400, {"error": {"message": "This model's maximum context length is 4096 tokens. However, you requested 5000 "
                                "tokens in the messages, Please reduce the length of the messages.",
                     "type": "BadRequestError", "param": None, "code": 400}}, True),  # vLLM
    (400, {"error": {"message": "too long", "type": "invalid_request_error", "param": "messages",
                     "code": "context_length_exceeded"}}, True),  # OpenAI, `taxlens serve`
    (400, {"error": {"message": "tool_choice must be 'auto'", "code": "invalid_value"}}, False),
    (500, {"error": {"message": "maximum context length"}}, False),
])
def test_a_context_overflow_is_read_from_openais_and_vllms_answers(status, body, overflow):
    from taxlens.endpoint import context_overflow

    assert context_overflow(httpx.Response(status, json=body)) is overflow


def test_replies_as_other_servers_write_them_are_read_or_named():
    from taxlens.endpoint import reply_text
    from taxlens.labels import is_refusal

    parts = {"role": "assistant", "content": [{"type": "text", "text": "I can't"},
                                              {"type": "text", "text": "do that."}]}
    assert reply_text(parts) == "I can't\ndo that."
    refusal = {"role": "assistant", "content": None, "refusal": "I'm sorry, I cannot help with that."}
    assert reply_text(refusal) == refusal["refusal"] and is_refusal(reply_text(refusal))
    with pytest.raises(ValueError, match=r"record 'r1': content\[0\] is a part of type 'image_url'"):
        reply_text({"content": [{"type": "image_url", "image_url": {"url": "x"}}]}, "record 'r1'")
    with pytest.raises(ValueError, match="has no function name"):
        reply_text({"content": None, "tool_calls": [{"id": "c1", "type": "function"}]}, "record 'r1'")


def test_a_server_that_takes_only_max_completion_tokens_is_asked_again_so():
    from taxlens import endpoint

    bodies = []

    def serve(request):  # OpenAI's answer for a reasoning model, word for word
        bodies.append(json.loads(request.content))
        if "max_tokens" in bodies[-1]:
            return httpx.Response(400, json={"error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                           "'max_completion_tokens' instead.", "type": "invalid_request_error",
                "param": "max_tokens", "code": "unsupported_parameter"}})
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": "hi"}}]})

    with httpx.Client(transport=httpx.MockTransport(serve)) as client:
        answer = endpoint.post_chat(client, "http://x/v1/chat/completions", {"model": "m", "max_tokens": 8}, "r1")
    assert answer.status_code == 200
    assert bodies == [{"model": "m", "max_tokens": 8}, {"model": "m", "max_completion_tokens": 8}]


def test_a_passing_failure_is_retried_and_a_lasting_one_named(monkeypatch):
    from taxlens import endpoint

    monkeypatch.setattr(endpoint, "RETRY_WAITS", (0.0, 0.0))
    monkeypatch.setattr(endpoint.time, "sleep", lambda s: None)
    answers = iter([httpx.ConnectError("refused"), httpx.Response(429, headers={"retry-after": "2"}),
                    httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": "hi"}}]})])

    def serve(request):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with httpx.Client(transport=httpx.MockTransport(serve)) as client:
        ok = endpoint.post_chat(client, "http://x/v1/chat/completions", {}, "record 'r1'")
        assert endpoint.reply_message(ok, "record 'r1'") == {"role": "assistant", "content": "hi"}
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503))) as client:  # the last answer
        assert endpoint.post_chat(client, "http://x/v1/chat/completions", {}, "record 'r1'").status_code == 503
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(400))) as client:  # not retried
        assert endpoint.post_chat(client, "http://x/v1/chat/completions", {}, "record 'r1'").status_code == 400

    def down(request):
        raise httpx.ConnectError("refused")

    with httpx.Client(transport=httpx.MockTransport(down)) as client, pytest.raises(ValueError, match="record 'r1'"):
        endpoint.post_chat(client, "http://x/v1/chat/completions", {}, "record 'r1'")
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>"))) as client, \
            pytest.raises(ValueError, match=r"record 'r1' without a chat completion's choices\[0\].message"):
        endpoint.reply_message(client.post("http://x/v1/chat/completions"), "record 'r1'")


@pytest.mark.parametrize("port, problem", [("70000", "is not a port (1 to 65535)"), ("0", "is not a port"),
                                           ("http", "is not a port number")])
def test_a_port_out_of_range_is_named_before_anything_loads(capsys, port, problem):
    from taxlens.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", "--model", "no/such-model", "--port", port])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "argument --port:" in err and problem in err


def test_serving_beyond_loopback_without_a_key_is_warned_about():
    from steering.serve import exposure_warning

    assert exposure_warning("0.0.0.0", None) and "without --api-key" in exposure_warning("10.1.2.3", None)
    assert exposure_warning("0.0.0.0", "s3cret") is None
    assert exposure_warning("127.0.0.1", None) is None and exposure_warning("localhost", None) is None
    assert exposure_warning("::1", None) is None


def test_serve_names_a_port_in_use_before_it_loads_a_model(capsys):
    import socket

    from taxlens.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", "no/such-model", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--host 127.0.0.1 --port {port}: cannot serve there" in err and "no/such-model" not in err


def test_serve_answers_to_the_name_it_is_given(monkeypatch, capsys):
    import uvicorn
    from fastapi.testclient import TestClient

    from taxlens.cli import main

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: apps.append(app))
    assert main(["serve", "--model", "organism:defended", "--served-model-name", "secalign", "--device", "cpu"]) == 0
    assert "serving organism:defended as 'secalign'" in capsys.readouterr().out
    client = TestClient(apps[0])
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["secalign"]
    asked = {"messages": [{"role": "user", "content": "List the files in /tmp."}], "max_tokens": 4}
    assert client.post("/v1/chat/completions", json=asked | {"model": "secalign"}).status_code == 200
    other = client.post("/v1/chat/completions", json=asked | {"model": "organism:defended"})
    assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"
