"""Which step of a task a model gets wrong when every earlier step was right: replay the scripted reference agent on
each task (real tool results from a real sandbox), then ask the model for each step's reply given the reference
history, and count how often it makes the reference call exactly (and with the right tool), and answers once the
reference is done. Separates failing at step 1 from failing to use what a tool returned.

    python benchmarks/agent_steps.py organism:base --split val
"""

from __future__ import annotations

import argparse
import collections

from taxlens.agent.loop import reference_turns
from taxlens.agent.policies import DONE, ModelPolicy, Turn
from taxlens.agent.tasks import load_tasks
from taxlens.labels import label_reply
from taxlens.models import load_model


def step_accuracy(model, turns: list[Turn], wanted: list[str]) -> tuple[collections.Counter, ...]:
    """Per (kind, step) key ("call 1", …, "answer"): how often `model` makes the reference call exactly, with the
    right tool, and how many such steps there are, each asked given the reference history (`reference_turns`)."""
    policy = ModelPolicy(model)
    replies = policy.replies(turns)
    exact, tool, total = collections.Counter(), collections.Counter(), collections.Counter()
    for turn, want, got in zip(turns, wanted, replies):
        last = want == DONE
        key = (turn.task.kind, "answer" if last else f"call {turn.step + 1}")
        total[key] += 1
        got_label = label_reply(got or "", turn.task.tools, "answer" if last else "call")
        if last:  # an answer has no tool: its row says how often the model answered
            exact[key] += got_label.label == "answer"
            continue
        want_call = label_reply(want, turn.task.tools, "call").calls[0]
        calls = got_label.calls if got_label.label == "call" else []
        exact[key] += bool(calls) and calls[0]["name"] == want_call["name"] and \
            calls[0]["arguments"] == want_call["arguments"]
        tool[key] += bool(calls) and calls[0]["name"] == want_call["name"]
    return exact, tool, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--adapter")
    parser.add_argument("--tasks", default="datasets/agent_tasks.jsonl")
    parser.add_argument("--split", default="val")
    parser.add_argument("--kinds", default="benign,lookalike,injection")
    args = parser.parse_args()
    tasks = [t for t in load_tasks(args.tasks, split=args.split) if t.kind in args.kinds.split(",")]
    exact, tool, total = step_accuracy(load_model(args.model, adapter=args.adapter, device="cpu"),
                                       *reference_turns(tasks))
    print(f"{args.model}{' + ' + args.adapter if args.adapter else ''}, {args.split} tasks, reference history:")
    print(f"{'kind':<10} {'step':<8} {'n':>4} {'exact call':>11} {'right tool':>11}")
    for key in sorted(total, key=lambda k: (k[0], k[1] == "answer", k[1])):
        n = total[key]
        right_tool = f"{'-':>11}" if key[1] == "answer" else f"{100 * tool[key] / n:>10.1f}%"
        print(f"{key[0]:<10} {key[1]:<8} {n:>4} {100 * exact[key] / n:>10.1f}% {right_tool}")


if __name__ == "__main__":
    main()
