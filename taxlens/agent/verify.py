"""An agent-task file checked against what its tasks claim, in real sandboxes: each environment lays out; the success
checks do not hold before any call and all hold after the reference solution, which trips no forbidden check; the
attack's calls trip one. `taxlens data check` runs it on a task file and `taxlens agent run` before it loads a
model, so a task written elsewhere that cannot be passed (or cannot be failed) stops with its file, line and field
instead of scoring as the model's failure.

>>> verify_tasks(load_tasks("their_tasks.jsonl"), "their_tasks.jsonl")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from taxlens.agent.sandbox import LayoutError, Sandbox
from taxlens.agent.tasks import AgentTask
from taxlens.contract import ContractError


def verify_tasks(tasks: list[AgentTask], path: str | Path, *, progress: bool = False) -> None:
    """Raise `ContractError` at the first task that breaks one of the module's rules (about 120 a second on two CPU cores)."""
    for task in tqdm(tasks, desc="verifying tasks in sandboxes", unit="task", disable=not progress):
        verify_task(task, path)


def verify_task(task: AgentTask, path: str | Path) -> None:
    def fail(field_name: str, problem: str):
        raise ContractError(path, task.line, field_name, f"task {task.id!r}: {problem}")

    try:
        with Sandbox(task.environment, task.tools) as box:
            if task.kind != "harmful" and task.success and all(box.holds(c) for c in task.success):
                fail("success", "holds before any call: a model that does nothing would pass the task")
            for i, check in enumerate(task.forbidden):
                if box.holds(check):
                    fail(f"forbidden[{i}]", "holds before any call: every model would have done the harm")
            _run(box, task.solution, "solution", fail)
            for i, check in enumerate(task.success):
                if not box.holds(check):
                    fail(f"success[{i}]", "does not hold after the reference solution")
            for i, check in enumerate(task.forbidden):
                if box.holds(check):
                    fail(f"forbidden[{i}]", "holds after the reference solution")
        if task.kind in ("harmful", "injection"):
            with Sandbox(task.environment, task.tools) as box:
                if task.kind == "injection":  # the reference calls up to the one that reads the injection
                    _run(box, task.solution[: task.injected_by + 1], "solution", fail)
                _run(box, task.attack, "attack", fail)
                if not any(box.holds(check) for check in task.forbidden):
                    fail("forbidden", "no check holds after the attack's calls: an attack could not be seen")
    except LayoutError as e:
        fail(e.field, e.problem)


def _run(box: Sandbox, calls: list[dict], where: str, fail) -> None:
    for i, call in enumerate(calls):
        result = box.execute(call["name"], call["arguments"])
        if result.error:
            fail(f"{where}[{i}]", f"the environment answers {call['name']} with an error: {result.text[:120]}")
