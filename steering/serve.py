"""`taxlens serve`: an OpenAI-compatible chat-completions endpoint for a model, optionally steered.

`POST /v1/chat/completions` as clients send it (`steering.openai_api`: developer messages, text parts, tools and
tool results, `tool_choice` auto / none / required / a named function (the last two served as auto),
`max_completion_tokens` or `max_tokens`, `stop`, `parallel_tool_calls`, `stream`, `temperature`, `top_p`, `seed`),
`GET /v1/models`, `GET /health`.
A steering config is applied per request, so a gate decides on each request's own prompt — and so again on every
new turn, which arrives as a new request carrying the tool results. Requests are served one at a time in arrival order (a lock around the model); a streamed reply is
sent once it is generated. Errors come back in OpenAI's error shape with a 4xx status, and the server stays up.
Under a gated config each reply carries the gate's reading of its prompt in a header, `X-Taxlens-Gate: ablate;
p_harmful=0.0312` (`ablate`, `add` or `none`), which clients may ignore. Binds 127.0.0.1 unless told otherwise.

>>> app = create_app(load_serving_model("organism:defended"), steering=gated)  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                               # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hmac
import json
import uuid
from contextlib import nullcontext

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from steering.openai_api import (DEFAULT_MAX_TOKENS, ApiError, ChatRequest, check_request, completion, stream_events,
                                 template_messages, tool_choice)
from taxlens.chat import RenderError, check_tool_role, render_messages
from taxlens.endpoint import GATE_HEADER
from taxlens.generation import check_passed_to, encode_batch, gate_readings, stop_token_ids
from taxlens.labels import parse_reply

# Requests queue behind one model lock, so a client's pooled connection can sit idle for longer than uvicorn's 5 s
# keep-alive while others are served; the server closing it then races the client's next request on it.
KEEP_ALIVE_S = 75
_VALIDATION_CODES = {"missing": "missing_required_parameter", "json_invalid": "invalid_json"}


def create_app(model, *, steering=None, model_id: str | None = None, api_key: str | None = None,
               tool_role: str | None = None, passed_to=None) -> FastAPI:
    """The FastAPI app serving `model` (a ServingModel or LoadedModel) with `steering` (anything with
    `apply(model)`) if given; `tool_role` renders tool results in the role the model's template reserves for
    untrusted data (Meta-SecAlign: `input`). `passed_to` (with a gated steering): the model, the defended model's
    base, that answers the requests the gate passes instead of the ablated model."""
    check_passed_to(model, steering, passed_to)
    check_tool_role(model.tokenizer, model.name, tool_role)
    model_id = model_id or model.name
    app = FastAPI(title="taxlens serve")
    lock = asyncio.Lock()
    context_limit = model.context_limit

    @app.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        code = _VALIDATION_CODES.get(first.get("type", ""), "invalid_type" if "type" in first.get("type", "")
                                     else "invalid_value")
        if code == "invalid_json":
            return ApiError(400, f"the request body is not valid JSON: {first.get('msg')}", None, code).response()
        return ApiError(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}", where or None,
                        code).response()

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1/"):
            sent = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(sent, f"Bearer {api_key}".encode()):  # in time that does not leak the key
                return ApiError(401, "invalid or missing API key (send Authorization: Bearer <key>)", None,
                                "invalid_api_key", "authentication_error").response()
        return await call_next(request)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_id, "steered": steering is not None}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "taxlens"}]}

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest):
        if req.model != model_id:
            raise ApiError(404, f"the model {req.model!r} does not exist here; this server serves {model_id!r}",
                           "model", "model_not_found")
        check_request(req)
        choice = tool_choice(req)
        tools = [t.model_dump() for t in req.tools or []] if choice != "none" else []
        try:
            prompt = render_messages(model.tokenizer, template_messages(req, tool_role), tools)
        except RenderError as e:
            raise ApiError(400, f"the model's chat template rejected these messages: {e}", "messages",
                           "template_error") from e
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
            raise ApiError(400, f"messages could not be rendered: {e}", "messages", "invalid_value") from e
        n_prompt = len(model.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        limit, param = req.token_limit()
        room = context_limit - n_prompt
        if room < 1 or (limit is not None and limit > room):
            asked = "" if limit is None else f" and {param} asks for {limit} more"
            raise ApiError(400, f"this model's maximum context length is {context_limit} tokens; the messages have "
                                f"{n_prompt}{asked}: reduce the length of the messages", "messages",
                           "context_length_exceeded")
        max_new = limit if limit is not None else min(DEFAULT_MAX_TOKENS, room)
        async with lock:
            text, n_new, hit_limit, gate = await run_in_threadpool(_generate, model, steering, prompt, max_new,
                                                                   req.temperature or 0.0, req.top_p, req.seed,
                                                                   passed_to)
        message, finish = _reply(text, hit_limit, req, choice)
        usage = {"prompt_tokens": n_prompt, "completion_tokens": n_new, "total_tokens": n_prompt + n_new}
        headers = {} if gate is None else {GATE_HEADER: f"{gate[1]}; p_harmful={gate[0]}"}
        if req.stream:
            include = req.stream_options is not None and req.stream_options.include_usage
            return StreamingResponse(stream_events(model_id, message, finish, usage if include else None),
                                     media_type="text/event-stream", headers=headers)
        return JSONResponse(completion(model_id, message, finish, usage), headers=headers)

    return app


def _reply(text: str, hit_limit: bool, req: ChatRequest, choice: str) -> tuple[dict, str]:
    """The assistant message and finish reason: tool calls parsed from the text (only the first when
    `parallel_tool_calls` is false), else the text cut at the first stop sequence."""
    parsed = parse_reply(text) if choice != "none" else None
    if parsed and parsed.calls:
        calls = parsed.calls[:1] if req.parallel_tool_calls is False else parsed.calls
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}} for c in calls]}, "tool_calls"
    cuts = [text.find(s) for s in req.stops() if s in text]
    if cuts:
        return {"role": "assistant", "content": text[:min(cuts)]}, "stop"
    return {"role": "assistant", "content": text}, "length" if hit_limit else "stop"


@torch.no_grad()
def _generate(model, steering, prompt: str, max_tokens: int, temperature: float, top_p: float | None,
              seed: int | None, passed_to=None):
    """Reply text, number of new tokens, whether it stopped at max_tokens, and the steering gate's (p(harmful),
    decision) on the prompt (None without a gate); with `passed_to`, the gate decides on a one-token pass and a
    prompt it passes is answered by `passed_to`."""
    hf, tok = model.hf, model.tokenizer
    batch = encode_batch(tok, [prompt], model.device)
    eos = stop_token_ids(tok, hf)
    if passed_to is not None:
        reading = gate_readings(model, steering, [prompt], 1)[0]
        if reading[1] == "ablate":
            return (*_generate(passed_to, None, prompt, max_tokens, temperature, top_p, seed)[:3], reading)
    sampling = ({"do_sample": True, "temperature": temperature, "top_p": top_p or 1.0, "top_k": 0} if temperature > 0
                else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
    if seed is not None:
        torch.manual_seed(seed)
    with steering.apply(model) if steering is not None else nullcontext() as handle:
        out = hf.generate(**batch, max_new_tokens=max_tokens, eos_token_id=eos, pad_token_id=tok.pad_token_id,
                          **sampling)
        readings = getattr(handle, "gate_readings", lambda: None)()
    ids = out[0, batch["input_ids"].shape[1]:].tolist()
    cut = next((j for j, t in enumerate(ids) if t in eos), None)
    new = ids if cut is None else ids[:cut]
    return (tok.decode(new, skip_special_tokens=True), len(new), cut is None and len(ids) >= max_tokens,
            readings[0] if readings else None)


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """What to say when a server will answer beyond this machine with no key asked of its clients."""
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        loopback = False
    return None if loopback or api_key else (f"--host {host} without --api-key: anyone who can reach this machine "
                                             f"can use the model")


def check_port(host: str, port: int) -> None:
    """Raise `ValueError` when `host:port` cannot be bound now (in use, or an address this machine lacks); the
    socket is set up as uvicorn sets its own (SO_REUSEADDR), so a port uvicorn could take passes."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as e:
        raise ValueError(f"--host {host} --port {port}: cannot serve there ({e.strerror or e})") from None
