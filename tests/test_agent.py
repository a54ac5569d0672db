"""Agent tasks: their contract and generator, scripted agents through the loop, the report's figures, and comparing
runs. The loop driving real models is in test_agent_models.py."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from taxlens.agent import AgentReport, ScriptedPolicy, agent_comparison, load_tasks, run_tasks
from taxlens.agent.loop import Step, departure
from taxlens.agent.policies import call_text
from taxlens.agent.report import markdown_section, miss_summary, tasks_lost, unoffered_summary
from taxlens.agent.tasks import validate_task
from taxlens.cli import main
from taxlens.contract import ContractError
from taxlens.datagen.agent_tasks import generate_tasks, write_tasks

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "datasets" / "agent_tasks.jsonl"


@pytest.fixture(scope="module")
def tasks():
    return load_tasks(TASKS)


def test_the_shipped_task_file_is_what_the_generator_writes(tmp_path):
    assert write_tasks(tmp_path).read_bytes() == TASKS.read_bytes()


def test_task_set_has_a_hundred_per_kind_three_domains_and_family_splits(tasks):
    for kind in ("benign", "lookalike", "harmful", "injection"):
        mine = [t for t in tasks if t.kind == kind]
        assert len(mine) >= 100, kind
        assert {t.domain for t in mine} == {"file", "api", "db"}
        assert {(t.domain, t.split) for t in mine} == {(d, s) for d in ("file", "api", "db")
                                                       for s in ("train", "val", "test")}
    split_of = {}
    for t in tasks:
        assert split_of.setdefault(t.family, t.split) == t.split, t.family
        assert 2 <= len(t.solution) <= 6 or t.kind == "harmful"
    by_id = {t.id: t for t in tasks}
    pairs = [t for t in tasks if t.pair]
    assert pairs and all(by_id[t.pair].pair == t.id and by_id[t.pair].split == t.split for t in pairs)
    assert all(not t.triggers for t in tasks if t.kind == "benign")
    assert all(t.triggers for t in tasks if t.kind == "lookalike")
    # an agent figure on val or test rests on six jobs a kind, two per domain, never on one job's families
    for split in ("val", "test"):
        held = [t for t in tasks if t.split == split and t.kind != "harmful"]
        scenes = {(t.domain, t.family.rsplit("-", 1)[0]) for t in held}
        assert len(scenes) == 6 and all(sum(d == domain for d, _ in scenes) == 2 for domain in ("file", "api", "db"))
        assert all(sum(t.kind == kind for t in held) == 54 for kind in ("benign", "lookalike", "injection"))


def test_held_out_targets_never_appear_in_train_tasks(tasks):
    train_text = " ".join(json.dumps(t.to_json()) for t in tasks if t.split == "train")
    for t in tasks:
        if t.split == "test" and t.kind != "injection":
            for call in t.solution or []:
                for value in call["arguments"].values():
                    if isinstance(value, str) and len(value) > 12:
                        assert value not in train_text, (t.id, value)


def test_the_reference_agent_succeeds_everywhere_and_does_no_harm(tasks):
    report = AgentReport.build("scripted", str(TASKS), None, None, run_tasks(ScriptedPolicy("solution"), tasks))
    for kind in ("benign", "lookalike", "harmful", "injection"):
        assert report.figure(kind, "task_success").rate == 1.0, kind
    assert report.figure("harmful", "harm_done").rate == 0.0
    assert report.figure("injection", "asr").rate == 0.0
    assert report.figure("benign", "step1_failure").rate == 0.0
    assert report.figure("harmful", "step1_failure").rate == 1.0  # it refuses at step 1


def test_an_agent_that_obeys_every_attack_succeeds_at_every_attack(tasks):
    report = AgentReport.build("obeys", str(TASKS), None, None, run_tasks(ScriptedPolicy("attack"), tasks))
    assert report.figure("injection", "asr").rate == 1.0
    assert report.figure("harmful", "harm_done").rate == 1.0
    assert report.figure("harmful", "task_success").rate == 0.0


def test_a_broken_task_is_rejected_naming_file_line_and_field(tasks):
    good = tasks[0].to_json()
    cases = [
        ({k: v for k, v in good.items() if k != "environment"}, "'environment': missing"),
        ({**good, "success": [{"check": "file_gone", "path": "x"}]}, "'success[0].check': unknown check"),
        ({**good, "solution": [{"name": "send_email", "arguments": {}}]}, "'solution[0].name': tool 'send_email' is "
                                                                          "not offered"),
        ({**good, "kind": "injection"}, "'forbidden'"),
        ({**good, "environment": {"disk": {}}}, "'environment': unknown field(s) ['disk']"),
        ({**good, "max_steps": True}, "'max_steps': must be a positive integer"),
        ({**good, "environment": {"home": "user"}}, "'environment.home': must be an absolute path"),
        ({**good, "environment": {"db": "CREATE TABLE t (x)"}}, "'environment.db': must be a list"),
        ({**good, "environment": {"accounts": [{"id": "A", "owner": "me", "balance": "lots"}]}},
         "'environment.accounts[0]': id and owner are text, balance a number"),
        ({**good, "environment": {"routes": [{"method": "GET", "url": "https://x.example/", "status": 999}]}},
         "'environment.routes[0].status': must be an HTTP status"),
    ]
    for obj, message in cases:
        with pytest.raises(ContractError) as err:
            validate_task(obj, "mine.jsonl", 7)
        assert str(err.value).startswith("mine.jsonl:7: field ") and message in str(err.value), str(err.value)


def test_data_check_reads_an_agent_task_file(capsys):
    assert main(["data", "check", str(TASKS)]) == 0
    assert f"{len(generate_tasks())} agent tasks, all valid" in " ".join(capsys.readouterr().out.split())


def test_data_check_knows_an_agent_task_file_saved_with_a_byte_order_mark(tmp_path, capsys):
    lines = TASKS.read_text(encoding="utf-8").splitlines(keepends=True)[:5]
    path = tmp_path / "tasks.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(lines).encode("utf-8"))
    assert main(["data", "check", str(path)]) == 0
    assert "5 agent tasks, all valid" in " ".join(capsys.readouterr().out.split())


def _broken_tasks() -> list[tuple[dict, str, str]]:
    """(task, field, problem) for one shipped task of each needed shape, broken one way each."""
    rows = [json.loads(line) for line in TASKS.read_text(encoding="utf-8").splitlines()]
    db = next(r for r in rows if r["kind"] == "benign" and r["environment"]["db"])
    harmful = next(r for r in rows if r["kind"] == "harmful" and r["forbidden"][0]["check"] == "sql")
    cases = []

    def case(row, change, field, problem):
        row = json.loads(json.dumps(row))
        change(row)
        cases.append((row, field, problem))

    case(db, lambda r: r["environment"]["db"].append("INSERT INTO nowhere VALUES (1)"),
         f"environment.db[{len(db['environment']['db'])}]", "no such table: nowhere")
    case(db, lambda r: r["environment"]["files"].update({"../../../etc/x": "y"}),
         "environment.files['../../../etc/x']", "leaves the filesystem's root")
    case(db, lambda r: r["success"][0].update(query="SELECT 1 FROM nowhere"), "success[0]",
         "does not hold after the reference solution")
    case(harmful, lambda r: r["forbidden"][0].update(rows=[["no such row"]]), "forbidden",
         "no check holds after the attack's calls")
    return cases


@pytest.mark.parametrize("task, field, problem", _broken_tasks(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_task_that_cannot_be_passed_or_failed_stops_data_check_and_agent_run(tmp_path, capsys, task, field,
                                                                               problem):
    path = tmp_path / "tasks.jsonl"
    path.write_text(TASKS.read_text(encoding="utf-8").splitlines()[0] + "\n" + json.dumps(task) + "\n")
    assert main(["data", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: field {field!r}: task {task['id']!r}" in err and problem in err and "Traceback" not in err
    assert main(["agent", "run", "--model", "organism:base", "--tasks", str(path), "--out", str(tmp_path / "r.json")])\
        == 2
    assert problem in capsys.readouterr().err and not (tmp_path / "r.json").exists()


def test_a_task_that_measures_less_than_it_claims_is_run_with_a_warning(tmp_path, capsys):
    rows = [json.loads(line) for line in TASKS.read_text(encoding="utf-8").splitlines()]
    db = next(r for r in rows if r["kind"] == "benign" and r["environment"]["db"])
    passes_idle = {**db, "id": "passes-idle", "success": [{"check": "file_absent", "path": "~/never.txt"}]}
    errs = json.loads(json.dumps({**db, "id": "reads-nowhere"}))
    errs["solution"].insert(0, {"name": "sql_query", "arguments": {"sql": "SELECT * FROM nowhere"}})
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (passes_idle, errs)))
    assert main(["data", "check", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "2 agent tasks, all valid" in out
    assert f"{path}:1: field 'success': task 'passes-idle': holds before any call" in out
    assert (f"{path}:2: field 'solution[0]': task 'reads-nowhere': the environment answers sql_query with an "
            f"error") in out


class _Refuser:
    name = "refuser"

    def replies(self, turns):
        return ["I can't help with that." for _ in turns]


class _FirstStepOnly:
    """Makes each task's first reference call, then refuses: a defence that wore down every later step."""

    name = "first-step-only"

    def replies(self, turns):
        first = ScriptedPolicy("solution").replies(turns)
        return [reply if t.step == 0 else "I can't help with that." for t, reply in zip(turns, first)]


def test_tasks_the_base_finishes_are_counted_by_the_step_another_model_loses_them_at(tasks):
    val = [t for t in tasks if t.split == "val" and t.kind in ("benign", "lookalike")]
    reports = {name: AgentReport.build(name, "t", "val", None, run_tasks(policy, val))
               for name, policy in (("base", ScriptedPolicy("solution")), ("defended", _Refuser()),
                                    ("worn", _FirstStepOnly()))}
    n = sum(t.kind == "lookalike" for t in val)
    refused = tasks_lost(reports["base"], reports["defended"])["lookalike"]
    assert refused == {"base_done": n, "lost": n, "step1_refusal": n, "step1_other": 0, "later_step": 0}
    worn = tasks_lost(reports["base"], reports["worn"])["lookalike"]
    assert worn == {"base_done": n, "lost": n, "step1_refusal": 0, "step1_other": 0, "later_step": n}
    assert tasks_lost(reports["base"], reports["base"])["benign"]["lost"] == 0
    out = agent_comparison(reports["base"], reports["defended"], reports["worn"])
    assert out["tasks_lost"] == {"defended": tasks_lost(reports["base"], reports["defended"]),
                                 "steered": tasks_lost(reports["base"], reports["worn"])}
    assert f"worn, lookalike: {n} of {n} (0 refused at step 1, 0 otherwise failed at step 1, {n} at a later step)" \
        in "\n".join(markdown_section(reports))


def test_comparison_gives_the_tax_its_recovery_and_the_defence_kept(tasks, tmp_path, capsys):
    val = [t for t in tasks if t.split == "val"]
    reports = {name: AgentReport.build(name, "t", "val", None, run_tasks(policy, val))
               for name, policy in (("base", ScriptedPolicy("solution")), ("defended", _Refuser()),
                                    ("steered", ScriptedPolicy("solution")))}
    out = agent_comparison(reports["base"], reports["defended"], reports["steered"])
    assert out["autonomy_tax_points"]["lookalike"]["task_success"]["diff"] == 100.0
    assert out["autonomy_tax_points"]["lookalike"]["step1_failure"]["diff"] == 100.0
    assert out["autonomy_tax_points"]["lookalike"]["step1_refusal"]["diff"] == 100.0  # every failure a refusal
    assert out["tax_recovered"]["lookalike"]["rate"] == 1.0
    assert out["step1_refusal_recovered"]["lookalike"]["rate"] == 1.0  # every step-1 refusal gone
    assert out["defense_retained"]["harm_done"]["steered"]["rate"] == 0.0
    lookalikes = sum(t.kind == "lookalike" for t in val)
    assert out["misses"]["defended"]["lookalike"] == {"no call": lookalikes}  # the tax, paid in refusals
    assert out["misses"]["base"]["lookalike"] == {} == out["misses"]["steered"]["lookalike"]
    family = sorted({t.family for t in val if t.kind == "lookalike"})[0]
    partly = AgentReport.build("partly", "t", "val", None, [  # the steered model still refuses one family
        replace(t, steps=reports["defended"].trajectories[i].steps) if t.family == family else t
        for i, t in enumerate(reports["steered"].trajectories)])
    removed = agent_comparison(reports["base"], reports["defended"], partly)["step1_refusal_recovered"]["lookalike"]
    refused = [t for t in partly.trajectories if t.kind == "lookalike" and t.steps[0].label == "refuse"]
    assert 0 < removed["rate"] < 1 and removed["rate"] == pytest.approx(1 - len(refused) / removed["n"])
    assert "step1_gate_on_tax" not in agent_comparison(reports["base"], reports["defended"], partly)
    gated = AgentReport.build("gated", "t", "val", None, [  # as if its gate gave the refused family the addition
        replace(t, steps=(replace(t.steps[0], gate="add" if t.steps[0].label == "refuse" else "ablate",
                                  gate_p_harmful=0.5), *t.steps[1:])) for t in partly.trajectories])
    on_tax = agent_comparison(reports["base"], reports["defended"], gated)["step1_gate_on_tax"]["lookalike"]
    ablated = lookalikes - len(refused)
    assert on_tax == {"tax": lookalikes, "ablate": ablated, "ablate_recovered": ablated, "add": len(refused),
                      "add_recovered": 0, "none": 0, "none_recovered": 0}
    paths = [reports[n].write(tmp_path / f"{n}.json") for n in ("base", "defended", "steered")]
    assert AgentReport.read(paths[1]).to_json() == json.loads(paths[1].read_text())
    assert main(["compare", str(paths[0]), str(paths[1]), "--steered", str(paths[2]),
                 "--plot", str(tmp_path / "cmp.png")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tax_recovered"]["lookalike"]["rate"] == 1.0 and (tmp_path / "cmp.png").stat().st_size > 5000


def test_a_run_folders_page_shows_its_agent_runs(tasks, tmp_path):
    from taxlens.metrics import wilson
    from taxlens.report import write_run_report

    val = [t for t in tasks if t.split == "val"]
    for name, policy in (("base", ScriptedPolicy("solution")), ("defended", _Refuser())):
        report = AgentReport.build(name, "tasks.jsonl", "val", None, run_tasks(policy, val))
        report.write(tmp_path / f"agent_{name}.json")
    page = write_run_report(tmp_path).read_text()
    lookalikes = sum(t.kind == "lookalike" for t in val)
    assert "## As agents" in page and "| figure | base: `base` | defended: `defended` |" in page
    assert f"| lookalike: task success | 100.0% [{100 * wilson(lookalikes, lookalikes)['lo']:.1f}, 100.0]" in page
    assert f"defended: benign {sum(t.kind == 'benign' for t in val)} (" in page  # where its refused tasks stopped
    assert "Not in this run: base.json, defended.json, steered.json" in page and "agent_steered.json" in page
    assert "Step-1 refusal gap removed" not in page  # that needs a steered run


def test_the_run_table_fits_an_80_column_terminal_without_cutting_a_figure(tasks):
    from rich.console import Console

    from taxlens.agent.report import report_table

    val = [t for t in tasks if t.split == "val"]
    report = AgentReport.build("organism:defended", "datasets/agent_tasks.jsonl", "val", "organism:gated",
                               run_tasks(_Refuser(), val))
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(report_table(report))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    refused = report.figure("lookalike", "step1_refusal")
    assert f"{100 * refused.rate:.1f}%" in text and f"[{100 * refused.lo:.1f}, {100 * refused.hi:.1f}]" in text


class _FirstReply:
    """Gives each task one fixed first reply, then answers."""

    name = "first-reply"

    def __init__(self, first: str):
        self.first = first

    def replies(self, turns):
        return [self.first if t.step == 0 else "Done." for t in turns]


def test_each_step1_failure_is_counted_by_its_cause(tasks, tmp_path):
    picked = [t for t in tasks if t.split == "val" and t.kind == "lookalike" and "list_dir" in t.tools][:3]
    assert picked and all("move_file" not in t.tools for t in picked)
    cases = {"I can't help with that.": "refusal", "Sure, that is done.": "answer",
             '<tool_call>{"name": "list_dir", "arguments": {"path": ': "unparsable",
             '<tool_call>{"name": "move_file", "arguments": {"src": "a", "dst": "b"}}</tool_call>': "not offered",
             '<tool_call>{"name": "list_dir", "arguments": {"folder": "a"}}</tool_call>': "bad arguments",
             '<tool_call>{"name": "list_dir", "arguments": {"path": "/no/such/dir"}}</tool_call>': "tool error"}
    for reply, cause in cases.items():
        report = AgentReport.build("p", "t", "val", None, run_tasks(_FirstReply(reply), picked))
        assert [t.step1_cause for t in report.trajectories] == [cause] * len(picked), reply
        assert report.kinds["lookalike"]["step1_causes"] == {cause: len(picked)}
        n, ended = len(picked), cause in ("refusal", "answer", "unparsable")  # the others go on to "Done."
        assert report.kinds["lookalike"]["step_causes"] == ({cause: n} if ended else {cause: n, "answer": n})
        assert unoffered_summary(report) == (f"lookalike {n} of {2 * n} steps" if cause == "not offered" else None)
        assert report.figure("lookalike", "step1_failure").rate == 1.0
        assert report.figure("lookalike", "step1_refusal").rate == (1.0 if cause == "refusal" else 0.0)
        again = AgentReport.read(report.write(tmp_path / "r.json"))  # the cause survives the round trip
        assert [t.steps[0].cause for t in again.trajectories] == [cause] * len(picked)
    solved = run_tasks(ScriptedPolicy("solution"), picked)
    assert all(t.step1_cause is None and t.steps[0].cause == "call" for t in solved)


class _Repeater:
    """Makes each task's first reference call at every step, never moving on."""

    name = "repeater"

    def replies(self, turns):
        return [call_text(t.task.solution[0]) for t in turns]


def test_an_agent_going_round_in_a_loop_is_counted_apart_from_one_that_moves_on(tasks, tmp_path):
    picked = [t for t in tasks if t.split == "val" and t.kind in ("benign", "lookalike")][:4]
    looping = AgentReport.build("p", "t", "val", None, run_tasks(_Repeater(), picked))
    for kind in {t.kind for t in picked}:
        assert looping.figure(kind, "repeated_call").rate == 1.0
        assert looping.figure(kind, "timeout").rate == 1.0
    solved = AgentReport.build("p", "t", "val", None, run_tasks(ScriptedPolicy("solution"), picked))
    assert all(solved.figure(kind, "repeated_call").rate == 0.0 for kind in {t.kind for t in picked})
    again = AgentReport.read(looping.write(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text())["trajectories"][0]["repeated_call"] is True
    assert again.figure(picked[0].kind, "repeated_call").rate == 1.0


class _Mistyper:
    """Follows each task's reference solution, but writes its second call's first argument wrong."""

    name = "mistyper"

    def replies(self, turns):
        out = []
        for t in turns:
            if t.step >= len(t.task.solution):
                out.append("Done.")
                continue
            call = t.task.solution[t.step]
            if t.step == 1:
                key = next(iter(call["arguments"]))
                call = {**call, "arguments": {**call["arguments"], key: "MISTYPED-0000"}}
            out.append(call_text(call))
        return out


def test_a_failed_task_names_where_it_first_left_the_reference_solution(tasks, tmp_path):
    picked = [t for t in tasks if t.split == "val" and t.kind in ("benign", "lookalike")][:6]
    solved = run_tasks(ScriptedPolicy("solution"), picked)
    assert all(t.success and t.miss_kind is None for t in solved)
    looping = AgentReport.build("p", "t", "val", None, run_tasks(_Repeater(), picked))
    assert {(t.miss_kind, t.miss.split(":")[0]) for t in looping.trajectories} == {("repeat", "step 2")}
    mistyped = AgentReport.build("p", "t", "val", None, run_tasks(_Mistyper(), picked))
    for t in mistyped.trajectories:
        key = next(iter(next(x for x in picked if x.id == t.task_id).solution[1]["arguments"]))
        assert not t.success and t.miss_kind == "wrong argument"
        assert t.miss.startswith(f"step 2: {key} 'MISTYPED-0000', not ")
    kinds = {t.kind for t in picked}
    assert sum(mistyped.kinds[k]["misses"]["wrong argument"] for k in kinds) == len(picked)
    assert "wrong argument" in miss_summary(mistyped) and miss_summary(
        AgentReport.build("p", "t", "val", None, solved)) is None
    again = AgentReport.read(mistyped.write(tmp_path / "r.json"))  # the departure survives the round trip
    assert [t.miss for t in again.trajectories] == [t.miss for t in mistyped.trajectories]


def test_a_departure_reads_calls_in_any_order_and_names_a_missing_or_extra_one():
    ref = [{"name": "read_file", "arguments": {"path": "/a"}}, {"name": "delete_file", "arguments": {"path": "/b"}}]

    def steps(*calls):
        return tuple(Step("", "call", [c], ["ok"], False) for c in calls)

    assert departure(ref, steps(ref[1], ref[0]), "answer") is None
    assert departure(ref, steps(ref[0]) + (Step("Done.", "answer", [], [], False, "answer"),), "answer") == (
        "no call", "step 2: answer where the reference calls delete_file")
    assert departure(ref, steps(ref[0]), "context")[0] == "no call"
    extra = {"name": "delete_file", "arguments": {"path": "/c"}}
    assert departure(ref, steps(*ref, extra), "answer") == (
        "extra call", "step 3: delete_file after the reference's 2 calls")
    assert departure(ref, steps(extra), "answer") == ("another tool", "step 1: called delete_file, not read_file")


def test_a_prompt_file_given_as_tasks_and_a_task_file_given_as_data_say_which_command_reads_them(tmp_path, capsys):
    from conftest import DATA

    out = str(tmp_path / "r.json")
    assert main(["agent", "run", "--model", "organism:base", "--tasks", str(DATA), "--out", out]) == 2
    assert f"{DATA} is a prompt file" in capsys.readouterr().err
    assert main(["eval", "--model", "organism:base", "--data", str(TASKS), "--out", out]) == 2
    assert f"`taxlens agent run --tasks {TASKS}`" in capsys.readouterr().err
