"""The chat-completions wire format as real clients speak it: the request schema, OpenAI-shaped errors, and the
streamed chunk format. `steering.serve` builds the app on these.

What clients send (the `openai` SDK, AgentDojo's local-server provider): the system prompt as `role: "developer"`;
`content` as a string or a list of `{"type": "text", "text": ...}` parts; tool results with `tool_call_id` and `name`;
`max_completion_tokens` or `max_tokens` (or neither); `parallel_tool_calls`, `stop`, `n`, `seed`, `stream`,
`top_p`. Parameters that would change the reply in a way this server does not honour (`logprobs`, `top_logprobs`, a
`response_format` other than text, `logit_bias`, a presence or frequency penalty) are refused by name when set to
anything but their default; other fields it does not know (`user`, `metadata`, …) do not change a reply and are
ignored.

>>> ChatRequest(model="m", messages=[{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]}]).n
1
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from taxlens.chat import normalise_messages
from taxlens.contract import NotTextPart, joined_text

MAX_TOKENS = 1024
DEFAULT_MAX_TOKENS = 256  # when a request names no limit: at most this, and never past the context


class ApiError(Exception):
    """A 4xx with OpenAI's error body: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, param: str | None, code: str, kind: str = "invalid_request_error"):
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
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict] | None = None
    tool_calls: list[dict] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model: str
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | dict | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    parallel_tool_calls: bool | None = None
    # Accepted only at their defaults (`check_request`): a client that sets them expects a reply this server does
    # not make, and would otherwise take an unconstrained, unpenalised reply without logprobs for one honouring them.
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict | None = None
    logit_bias: dict | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    def token_limit(self) -> tuple[int | None, str]:
        """The asked-for limit on new tokens (None: none asked) and the parameter it came from."""
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens, "max_completion_tokens"
        return self.max_tokens, "max_tokens"

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop or [] if s]


def check_request(req: ChatRequest) -> None:
    """What the schema alone can't say, as OpenAI-shaped 400s."""
    if req.n != 1:
        raise ApiError(400, f"n must be 1 (one greedy or sampled reply per request), got {req.n}", "n",
                       "unsupported_value")
    limit, param = req.token_limit()
    if limit is not None and not 1 <= limit <= MAX_TOKENS:
        raise ApiError(400, f"{param} must be between 1 and {MAX_TOKENS}, got {limit}", param, "invalid_value")
    if len(req.stops()) > 4:
        raise ApiError(400, f"stop takes at most 4 sequences, got {len(req.stops())}", "stop", "invalid_value")
    unhonoured = {"logprobs": bool(req.logprobs), "top_logprobs": bool(req.top_logprobs),
                  "response_format": (req.response_format or {}).get("type", "text") != "text",
                  "logit_bias": bool(req.logit_bias), "presence_penalty": bool(req.presence_penalty),
                  "frequency_penalty": bool(req.frequency_penalty)}
    for param, is_set in unhonoured.items():
        if is_set:
            raise ApiError(400, f"{param} is not supported by this server (replies are decoded greedily or by "
                                f"temperature and top_p, unconstrained); leave it out or at its default",
                           param, "unsupported_parameter")


def tool_choice(req: ChatRequest) -> str:
    """'auto' or 'none'; 'required' and a named function (which must be one of the request's tools) are served as
    'auto': decoding is not constrained, since whether the model calls or refuses is what is being studied.
    As in OpenAI's API, the default is 'none' when the request offers no tools: a client that offered none cannot
    take a tool call back."""
    choice = req.tool_choice or ("auto" if req.tools else "none")
    if choice == "required":
        if not req.tools:
            raise ApiError(400, "tool_choice 'required' needs tools to call; the request offers none", "tool_choice",
                           "invalid_value")
        return "auto"
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        offered = [t.function.name for t in req.tools or []]
        if choice.get("type") != "function" or not isinstance(name, str):
            raise ApiError(400, "tool_choice must be 'auto', 'none', 'required' or {'type': 'function', 'function': "
                                "{'name': …}}", "tool_choice", "invalid_value")
        if name not in offered:
            raise ApiError(400, f"tool_choice names the tool {name!r}, which is not in tools ({offered})",
                           "tool_choice", "invalid_value")
        return "auto"
    return choice


def template_messages(req: ChatRequest, tool_role: str | None = None) -> list[dict]:
    """The request's messages as chat templates take them: `developer` as `system`, text parts joined, tool results
    in `tool_role` when the model's template reserves another role for untrusted data."""
    out = []
    for i, message in enumerate(req.messages):
        m = message.model_dump(exclude_none=True)
        m["role"] = {"developer": "system", "tool": tool_role or "tool"}.get(message.role, message.role)
        m["content"] = _text(message.content, i)
        out.append(m)
    return normalise_messages(out)


def _text(content: str | list[dict] | None, i: int) -> str | None:
    if not isinstance(content, list):
        return content
    try:
        return joined_text(content)
    except NotTextPart as e:
        raise ApiError(400, f"messages[{i}].content[{e.index}] is a part of type {e.kind!r}; this server reads text "
                            f"parts only", f"messages[{i}].content[{e.index}].type", "unsupported_content_type") from None


def completion(model_id: str, message: dict, finish: str, usage: dict) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model_id, "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}


def stream_events(model_id: str, message: dict, finish: str, usage: dict | None):
    """The reply as server-sent events of `chat.completion.chunk`s, then `data: [DONE]`: the role, then the text in
    pieces or each tool call (id and name first, its arguments in two pieces, as engines split them), then the
    finish reason; with `usage`, a last chunk carrying it."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict | None, finish_reason: str | None = None, **extra) -> str:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_id,
                "choices": choices, **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    text = message.get("content") or ""
    for start in range(0, len(text), 16):
        yield chunk({"content": text[start:start + 16]})
    for k, call in enumerate(message.get("tool_calls") or []):
        yield chunk({"tool_calls": [{"index": k, "id": call["id"], "type": "function",
                                     "function": {"name": call["function"]["name"], "arguments": ""}}]})
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            yield chunk({"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
    yield chunk({}, finish)
    if usage is not None:
        yield chunk(None, usage=usage)
    yield "data: [DONE]\n\n"
