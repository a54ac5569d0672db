"""Evaluating a model served elsewhere: any OpenAI-compatible chat-completions endpoint (vLLM, `taxlens serve` with a
steering config, a hosted API), scored with the same labels and report as a model loaded here.

Each record goes out as the client would send it (messages with tool-call arguments as JSON strings, the record's
tools as function schemas, temperature 0); a reply's `tool_calls` are written back as `<tool_call>` blocks for the
labeller, its text as it came. First-token refusal scores need the model's logits and are left out (`null`). A
`taxlens serve` with a gated config says in a header (`GATE_HEADER`) what its gate decided on each prompt; the
report's rows keep it, as they do for a gated run here.

>>> url = "http://127.0.0.1:8000/v1"                                                            # doctest: +SKIP
>>> report = evaluate_endpoint(url, "organism:defended", records, data="d.jsonl", split="test")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
from tqdm.auto import tqdm

from taxlens.chat import chat_messages, is_named_call
from taxlens.contract import NotTextPart, Record, joined_text
from taxlens.eval_report import GATE_DECISIONS, EvalReport
from taxlens.evaluation import build_report
from taxlens.tools import schemas_for

GATE_HEADER = "X-Taxlens-Gate"  # "ablate; p_harmful=0.0312": a gated server's decision on the request's prompt
# waits before each retry of a request that met a passing failure (a dropped connection, 408, 409, 429, 5xx), as the
# `openai` SDK retries them: a hosted API's rate limit or a restarting vLLM should not end an hours-long run
RETRY_WAITS = (1.0, 4.0, 16.0)
_PASSING = {408, 409, 429, 500, 502, 503, 504}


def post_chat(client: httpx.Client, url: str, body: dict, what: str) -> httpx.Response:
    """POST `body` to `url`, retried after `RETRY_WAITS` (or the server's Retry-After, up to a minute) while it
    meets a passing failure; the last response, or a ValueError naming `what` when no answer came. A server that
    takes the token limit only as `max_completion_tokens` (OpenAI's reasoning models) is asked again so."""
    waits = iter(RETRY_WAITS)
    while True:
        try:
            response = client.post(url, json=body)
        except httpx.HTTPError as e:
            wait = next(waits, None)
            if wait is None:
                raise ValueError(f"{url}: no answer for {what} ({e})") from None
        else:
            if "max_tokens" in body and _wants_completion_tokens(response):
                body = {k: v for k, v in body.items() if k != "max_tokens"} | {
                    "max_completion_tokens": body["max_tokens"]}
                continue
            wait = next(waits, None) if response.status_code in _PASSING else None
            if wait is None:
                return response
            wait = _retry_after(response, wait)
        time.sleep(wait)


def _wants_completion_tokens(response: httpx.Response) -> bool:
    """OpenAI's 400 for `max_tokens` on a model that takes only `max_completion_tokens`."""
    if response.status_code != 400:
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error, dict) and error.get("param") == "max_tokens" and "max_completion_tokens" in str(
        error.get("message"))


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return min(60.0, max(0.0, float(response.headers.get("retry-after", default))))
    except ValueError:  # an HTTP date: take the default
        return default


def reply_message(response: httpx.Response, what: str) -> dict:
    """The reply message of a 200 chat-completions response; a ValueError naming `what` when it holds none."""
    try:
        message = response.json()["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        message = None
    if not isinstance(message, dict):
        raise ValueError(f"{response.request.url} answered 200 for {what} without a chat completion's "
                         f"choices[0].message: {response.text[:300]}")
    return message


def wire_messages(record: Record, tool_role: str | None = None) -> list[dict]:
    """The record's messages as an OpenAI client sends them: tool-call arguments as JSON strings."""
    return to_wire(chat_messages(record, tool_role))


def to_wire(messages: list[dict]) -> list[dict]:
    """Chat-template-shaped messages as an OpenAI client sends them: tool-call arguments as JSON strings."""
    out = []
    for m in messages:
        if m.get("tool_calls"):
            m = {**m, "tool_calls": [{**c, "function": {**c["function"],
                                                        "arguments": json.dumps(c["function"]["arguments"])}}
                                     for c in m["tool_calls"]]}
        out.append(m)
    return out


def reply_text(message: dict, what: str = "a request") -> str:
    """An OpenAI reply message as text the labeller reads: its tool calls as `<tool_call>` blocks, else its content
    (a string, or text parts as some servers send it), else the `refusal` OpenAI's models put in place of content."""
    calls = message.get("tool_calls") or []
    if not calls:
        content = message.get("content") or message.get("refusal") or ""
        if isinstance(content, list):
            try:
                return joined_text(content)
            except NotTextPart as e:
                raise ValueError(f"the reply for {what}: content[{e.index}] is a part of type {e.kind!r}; only "
                                 f"text parts can be labelled") from None
        if not isinstance(content, str):
            raise ValueError(f"the reply for {what}: content is {type(content).__name__}, not text: "
                             f"{json.dumps(content)[:200]}")
        return content
    blocks = []
    for call in calls:  # arguments as the server wrote them: JSON that does not parse makes the reply `invalid`
        if not is_named_call(call):
            raise ValueError(f"the reply for {what}: tool call {json.dumps(call)[:200]} has no function name")
        arguments = call["function"].get("arguments") or "{}"
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        blocks.append(f'<tool_call>{{"name": {json.dumps(call["function"]["name"])}, "arguments": {raw}}}</tool_call>')
    return "".join(blocks)


def gate_reading(response: httpx.Response) -> tuple[float, str] | None:
    """(p(harmful), decision) from a gated server's `GATE_HEADER`; None when the reply has none."""
    value = response.headers.get(GATE_HEADER)
    if value is None:
        return None
    decision, _, p = value.partition("; p_harmful=")
    try:
        p_harmful = float(p)
    except ValueError:
        p_harmful = None
    if p_harmful is None or decision not in GATE_DECISIONS:
        raise ValueError(f"{response.request.url}: header {GATE_HEADER}: {value!r} is not 'DECISION; p_harmful=P' "
                         f"with DECISION one of {GATE_DECISIONS}")
    return p_harmful, decision


def context_overflow(response: httpx.Response) -> bool:
    """Whether the server refused the request because it does not fit the model's context: OpenAI and `taxlens
    serve` answer 400 with the code `context_length_exceeded`; vLLM answers 400 with the code 400 and a message
    "This model's maximum context length is N tokens…"."""
    text = response.text
    return response.status_code == 400 and ("context_length_exceeded" in text or "maximum context length" in text)


def evaluate_endpoint(url: str, model: str, records: list[Record], *, data: str, split: str | None,
                      max_new_tokens: int = 128, api_key: str | None = None, concurrency: int = 8,
                      tool_role: str | None = None, timeout: float = 300.0, skip_unrenderable: bool = False,
                      progress: bool = True) -> EvalReport:
    """The contract's report for `model` behind `url` (the base URL a client is given, e.g. http://host:8000/v1).
    A record the server says does not fit the model's context stops it, naming the record, or with
    `skip_unrenderable` is left out and listed under `meta.unrenderable`, as a local run does."""
    if not records:
        raise ValueError(f"{data}: no records to evaluate" + (f" in split {split!r}" if split else ""))
    endpoint = url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    started = time.perf_counter()

    with httpx.Client(timeout=timeout, headers=headers) as client:
        def ask(record: Record) -> tuple[str | None, object]:  # (reply, gate reading), or (None, the server's why)
            body = {"model": model, "messages": wire_messages(record, tool_role), "temperature": 0,
                    "tools": schemas_for(record.tools), "max_tokens": max_new_tokens}
            response = post_chat(client, endpoint, body, f"record {record.id!r}")
            if context_overflow(response) and skip_unrenderable:
                return None, response.text[:300]
            if response.status_code != 200:
                hint = " (--skip-unrenderable skips such records and counts them in the report)" \
                    if context_overflow(response) else ""
                raise ValueError(f"{data}, line {record.line}, record {record.id!r}: {endpoint} answered "
                                 f"{response.status_code}: {response.text[:300]}{hint}")
            what = f"record {record.id!r}"
            return reply_text(reply_message(response, what), what), gate_reading(response)

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            answers = list(tqdm(pool.map(ask, records), total=len(records), desc=f"eval {model} at {url}",
                                disable=not progress, unit="prompt"))
    unrenderable = [{"id": r.id, "line": r.line, "error": f"the server: {why}"}
                    for r, (text, why) in zip(records, answers) if text is None]
    kept = [(r, a) for r, a in zip(records, answers) if a[0] is not None]
    if not kept:
        raise ValueError(f"{data}: the server takes no record ({len(unrenderable)}), e.g. {unrenderable[0]['id']!r}: "
                         f"{unrenderable[0]['error']}")
    report = build_report(model, [r for r, _ in kept], [text for _, (text, _) in kept], [None] * len(kept), data=data,
                          split=split, steer=None, meta={
        "endpoint": url, "max_new_tokens": max_new_tokens, "decoding": "temperature 0", "tool_role": tool_role,
        "concurrency": concurrency, "unrenderable": unrenderable,
        "seconds": round(time.perf_counter() - started, 2)})
    rows = tuple(row if gate is None else replace(row, gate=gate[1], gate_p_harmful=gate[0])
                 for row, (_, (_, gate)) in zip(report.records, kept))
    return replace(report, records=rows)
