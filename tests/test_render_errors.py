"""A chat template that raises on a record is the user's error: one line naming the record, a skip option, a 400."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import DATA

from taxlens.chat import RenderError, render_prompt
from taxlens.cli import main
from taxlens.contract import load_records

# Mistral's templates accept only tool-call ids of 9 letters and digits, and say so by raising.
MISTRAL_IDS = (
    "{% for m in messages %}{% for tc in m.tool_calls or [] %}{% if tc.id | length != 9 %}"
    "{{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}{% endif %}"
    "[TOOL_CALLS]{{ tc.function.name }}{% endfor %}"
    "{% if m.role == 'tool' %}{% if m.tool_call_id | length != 9 %}"
    "{{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}{% endif %}"
    "[TOOL_RESULTS]{{ m.tool_call_id }}{{ m.content }}[/TOOL_RESULTS]"
    "{% else %}[INST]{{ m.content }}[/INST]{% endif %}{% endfor %}"
)
NO_TOOL_ROLE = ("{% for m in messages %}{% if m.role == 'tool' %}"
                "{{ raise_exception('this template has no tool role') }}{% endif %}"
                "<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>")

# Qwen 2.5's template, like others, renders the roles it knows and skips any other without a word.
KNOWN_ROLES = ("{% for m in messages %}{% if m.role in ['system', 'user', 'assistant', 'tool'] %}"
               "<|{{ m.role }}|>{{ m.content }}{% endif %}{% endfor %}<|assistant|>")


def _with_template(tiny_model_dir, out, template):
    from transformers import AutoTokenizer

    shutil.copytree(tiny_model_dir, out)
    tok = AutoTokenizer.from_pretrained(out)
    tok.chat_template = template
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def injections():
    return load_records(DATA, split="test", kinds=("injection",))


def test_a_template_that_drops_the_tools_is_told_from_one_that_renders_them(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from taxlens.chat import drops_tools

    assert not drops_tools(AutoTokenizer.from_pretrained(tiny_model_dir))
    assert drops_tools(AutoTokenizer.from_pretrained(_with_template(tiny_model_dir, tmp_path / "m", NO_TOOL_ROLE)))


def test_tool_call_ids_are_mapped_for_a_template_that_checks_their_shape(tiny_model_dir, tmp_path, injections):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(_with_template(tiny_model_dir, tmp_path / "m", MISTRAL_IDS))
    record = injections[0]
    turn = next(i for i, m in enumerate(record.messages) if m.get("tool_calls"))
    assert record.messages[turn]["tool_calls"][0]["id"].startswith("call_")
    prompt = render_prompt(tok, record)
    assert "[TOOL_RESULTS]call00000" in prompt and record.messages[turn + 1]["content"][:20] in prompt


def test_eval_stops_with_one_line_naming_the_record_or_skips_and_counts(tiny_model_dir, tmp_path, capsys,
                                                                        injections):
    model = _with_template(tiny_model_dir, tmp_path / "m", NO_TOOL_ROLE)
    args = ["eval", "--model", model, "--data", str(DATA), "--split", "test", "--max-new-tokens", "2",
            "--out", str(tmp_path / "r.json")]
    assert main(args) == 2
    err = capsys.readouterr().err
    first = injections[0]
    assert "Traceback" not in err and len([line for line in err.splitlines() if "error" in line]) == 1
    assert f"line {first.line}, record {first.id!r}: the chat template raised: this template has no tool role" in err
    assert str(DATA) in err and "--skip-unrenderable" in err
    assert main(args + ["--skip-unrenderable", "--limit", "400"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    skipped = report["meta"]["unrenderable"]
    assert {s["id"] for s in skipped} == {r.id for r in load_records(DATA, split="test")[:400] if r.kind == "injection"}
    assert "injection" not in report["by_kind"] and report["by_kind"]["benign"]["n"] > 0
    assert any("renders no tools" in w for w in report["warnings"])  # the template drops `tools=` too
    assert "skipped" in capsys.readouterr().out


def test_eval_stops_on_a_prompt_past_the_context_or_skips_it(tiny_model_dir, tmp_path, capsys):
    short, = [r.to_json() for r in load_records(DATA, split="test", kinds=("benign",))[:1]]
    long = {**short, "id": "long-system-prompt",
            "messages": [{"role": "system", "content": "The agent serves the ops team. " * 200}] + short["messages"]}
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in (short, long)))
    args = ["eval", "--model", str(tiny_model_dir), "--data", str(data), "--max-new-tokens", "4",
            "--out", str(tmp_path / "r.json")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "line 2, record 'long-system-prompt': its prompt is" in err
    assert "over the 1020 the model takes (1024 of context less 4 kept for the reply)" in err
    assert main(args + ["--skip-unrenderable"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [s["id"] for s in report["meta"]["unrenderable"]] == ["long-system-prompt"]
    assert [r["id"] for r in report["records"]] == [short["id"]]
    assert main(args[:-4] + ["--max-new-tokens", "1024", "--out", str(tmp_path / "r.json")]) == 2
    assert "--max-new-tokens 1024 leaves no room for a prompt in the model's context of 1024" in capsys.readouterr().err


def test_probe_and_steer_stop_on_an_unrenderable_record_before_caching(tiny_model_dir, tmp_path, capsys):
    model = _with_template(tiny_model_dir, tmp_path / "m", NO_TOOL_ROLE)
    for command in (["probe", "--base", model, "--defended", model],
                    ["steer", "--base", model, "--model", model, "--quick"]):
        out = tmp_path / command[0]
        assert main(command + ["--data", str(DATA), "--out", str(out)]) == 2
        assert "the chat template raised: this template has no tool role" in capsys.readouterr().err
        assert not (out / "cache").exists()


def test_serve_answers_a_template_error_with_400_in_openais_shape(tiny_model_dir, tmp_path, injections):
    from fastapi.testclient import TestClient

    from steering.serve import create_app
    from taxlens.models import load_serving_model

    app = create_app(load_serving_model(_with_template(tiny_model_dir, tmp_path / "m", NO_TOOL_ROLE)))
    client = TestClient(app)
    record = injections[0]
    body = {"model": str(tmp_path / "m"), "messages": record.messages, "max_tokens": 2}
    reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "template_error" and error["type"] == "invalid_request_error"
    assert "this template has no tool role" in error["message"]
    with pytest.raises(RenderError, match="no tool role"):
        render_prompt(load_serving_model(str(tmp_path / "m")).tokenizer, record)


def test_tool_results_render_in_the_role_the_template_reserves_for_untrusted_data(tiny_model_dir, tmp_path,
                                                                                  injections):
    from fastapi.testclient import TestClient

    from steering.serve import create_app
    from taxlens.models import load_serving_model

    model = _with_template(tiny_model_dir, tmp_path / "m", NO_TOOL_ROLE)  # it knows no `tool` role; `input` renders
    out = tmp_path / "r.json"
    assert main(["eval", "--model", model, "--data", str(DATA), "--split", "test", "--max-new-tokens", "2",
                 "--tool-role", "input", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["meta"]["tool_role"] == "input" and not report["meta"]["unrenderable"]
    assert report["by_kind"]["injection"]["n"] > 0
    served = load_serving_model(model)
    body = {"model": model, "messages": injections[0].messages, "max_tokens": 2}
    assert TestClient(create_app(served)).post("/v1/chat/completions", json=body).status_code == 400
    assert TestClient(create_app(served, tool_role="input")).post("/v1/chat/completions", json=body).status_code == 200


def test_a_tool_role_the_template_skips_is_named_before_anything_runs(tiny_model_dir, tmp_path, capsys):
    from steering.serve import create_app
    from taxlens.agent import ModelPolicy
    from taxlens.models import load_serving_model

    model = _with_template(tiny_model_dir, tmp_path / "m", KNOWN_ROLES)
    out = tmp_path / "r.json"
    assert main(["eval", "--model", model, "--data", str(DATA), "--split", "test", "--max-new-tokens", "2",
                 "--tool-role", "input", "--out", str(out)]) == 2
    assert "renders nothing of a message in role 'input'" in capsys.readouterr().err and not out.exists()
    served = load_serving_model(model)
    for start in (lambda: create_app(served, tool_role="input"), lambda: ModelPolicy(served, tool_role="input")):
        with pytest.raises(ValueError, match="tool results .* would never reach the model"):
            start()
    create_app(served), ModelPolicy(served)  # its own `tool` role renders
    raising = load_serving_model(_with_template(tiny_model_dir, tmp_path / "r", NO_TOOL_ROLE))
    with pytest.raises(ValueError, match="cannot render a tool result in role 'tool' .*no tool role"):
        ModelPolicy(raising)  # an agent's second step would stop the run there
    create_app(raising), ModelPolicy(raising, tool_role="input")  # served, each such request is a 400
    assert main(["eval", "--model", model, "--data", str(DATA), "--split", "test", "--max-new-tokens", "2",
                 "--out", str(out)]) == 0
