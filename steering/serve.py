"""`taxlens serve`: an OpenAI-compatible chat-completions endpoint for a model, optionally steered.

`POST /v1/chat/completions` (messages, tools, tool_choice `auto` / `none` / a named function, max_tokens,
temperature), `GET /v1/models`, `GET /health`. A steering config is applied per request, so a gate decides on
each request's own prompt — and so again on every new turn, which arrives as a new request carrying the tool
results. Requests are served one at a time in arrival order (a lock around the model); errors come back in
OpenAI's error shape with a 4xx status, and the server stays up. Binds 127.0.0.1 unless told otherwise.

>>> app = create_app(load_serving_model("organism:defended"), steering=gated)  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                               # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import nullcontext
from typing import Literal

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from taxlens.chat import RenderError, normalise_messages, render_messages
from taxlens.generation import encode_batch, stop_token_ids
from taxlens.labels import parse_reply

MAX_TOKENS = 1024
# Requests queue behind one model lock, so a client's pooled connection can sit idle for longer than uvicorn's 5 s
# keep-alive while others are served; the server closing it then races the client's next request on it.
KEEP_ALIVE_S = 75


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def response(self) -> JSONResponse:
        return JSONResponse(status_code=self.status, content={"error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code}})


class Function(BaseModel):
    name: str
    description: str | None = None
    parameters: dict = Field(default_factory=dict)


class Tool(BaseModel):
    type: Literal["function"] = "function"
    function: Function


class Message(BaseModel, extra="allow"):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[dict] | None = None
    tool_call_id: str | None = None


class ChatRequest(BaseModel):
    model: str
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none"] | dict | None = None
    max_tokens: int | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int | None = None


def _tool_choice(req: ChatRequest) -> str:
    """'auto' or 'none'; a named function must be one of the request's tools (it is then served as 'auto')."""
    choice = req.tool_choice or "auto"
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        offered = [t.function.name for t in req.tools or []]
        if choice.get("type") != "function" or not isinstance(name, str):
            raise ApiError(400, "tool_choice must be 'auto', 'none' or {'type': 'function', 'function': {'name': …}}",
                           "tool_choice")
        if name not in offered:
            raise ApiError(400, f"tool_choice names the tool {name!r}, which is not in tools ({offered})",
                           "tool_choice")
        return "auto"
    return choice


def create_app(model, *, steering=None, model_id: str | None = None, api_key: str | None = None) -> FastAPI:
    """The FastAPI app serving `model` (a ServingModel or LoadedModel) with `steering` (anything with
    `apply(model)`) if given."""
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
        if first.get("type") == "json_invalid":
            return ApiError(400, f"the request body is not valid JSON: {first.get('msg')}", None, "invalid_json").response()
        return ApiError(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}", where or None).response()

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1/"):
            if request.headers.get("authorization") != f"Bearer {api_key}":
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
        max_tokens = req.max_tokens if req.max_tokens is not None else 256
        if not 1 <= max_tokens <= MAX_TOKENS:
            raise ApiError(400, f"max_tokens must be between 1 and {MAX_TOKENS}, got {max_tokens}", "max_tokens")
        choice = _tool_choice(req)
        tools = [t.model_dump() for t in req.tools or []] if choice != "none" else []
        try:
            prompt = render_messages(model.tokenizer, normalise_messages([m.model_dump(exclude_none=True)
                                                                          for m in req.messages]), tools)
        except RenderError as e:
            raise ApiError(400, f"the model's chat template rejected these messages: {e}", "messages",
                           "template_error") from e
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
            raise ApiError(400, f"messages could not be rendered: {e}", "messages") from e
        n_prompt = len(model.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if n_prompt + max_tokens > context_limit:
            raise ApiError(400, f"this model's context is {context_limit} tokens; the prompt has {n_prompt} and "
                                f"max_tokens asks for {max_tokens} more", "messages", "context_length_exceeded")
        async with lock:
            text, n_new, hit_limit = await run_in_threadpool(_generate, model, steering, prompt, max_tokens,
                                                             req.temperature, req.seed)
        message, finish = {"role": "assistant", "content": text}, "length" if hit_limit else "stop"
        parsed = parse_reply(text) if choice != "none" else None
        if parsed and parsed.calls:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}} for c in parsed.calls]}
            finish = "tool_calls"
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": model_id, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_new, "total_tokens": n_prompt + n_new}}

    return app


@torch.no_grad()
def _generate(model, steering, prompt: str, max_tokens: int, temperature: float, seed: int | None):
    """Reply text, number of new tokens, and whether it stopped at max_tokens."""
    hf, tok = model.hf, model.tokenizer
    batch = encode_batch(tok, [prompt], model.device)
    eos = stop_token_ids(tok, hf)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0} if temperature > 0 else \
        {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    if seed is not None:
        torch.manual_seed(seed)
    with steering.apply(model) if steering is not None else nullcontext():
        out = hf.generate(**batch, max_new_tokens=max_tokens, eos_token_id=eos, pad_token_id=tok.pad_token_id,
                          **sampling)
    ids = out[0, batch["input_ids"].shape[1]:].tolist()
    cut = next((j for j, t in enumerate(ids) if t in eos), None)
    new = ids if cut is None else ids[:cut]
    return tok.decode(new, skip_special_tokens=True), len(new), cut is None and len(ids) >= max_tokens
