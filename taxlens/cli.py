"""The `taxlens` command's parser: every subcommand, its options and their help; `taxlens.commands` does the work.

>>> build_parser().parse_args(["data", "check", "datasets/toolcalls.jsonl"]).file
'datasets/toolcalls.jsonl'
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from taxlens import agent_commands, commands
from taxlens.cli_types import file_out, folder_out, port, positive


# a key given in the environment stays out of shell history and process lists; taxlens's own name, so that a key
# meant for another service is never sent to whatever endpoint is named
API_KEY_ENV = "TAXLENS_API_KEY"
CLIENT_KEY_HELP = f"with --endpoint: sent as Authorization: Bearer KEY (default: ${API_KEY_ENV}, if set)"


def _adapter_arguments(parser: argparse.ArgumentParser, of: str = "--model") -> None:
    parser.add_argument("--adapter", default=None,
                        help=f"a PEFT adapter folder loaded onto {of} and merged (an adapter folder may also be given "
                             f"as {of} itself: its adapter_config.json names the base)")
    parser.add_argument("--adapter-scale", type=float, default=None,
                        help="scale of the adapter's update: 0 = the base, 1 = the adapter as trained (default)")


def _openings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refusal-openings", nargs="+", default=None, metavar="PHRASE",
                        help="phrases this model's refusals open with (e.g. 'I cannot' 'Sorry'); default: read from "
                             "the defended model's own replies on the fitting split")


def _tool_role_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tool-role", default=None, metavar="ROLE",
                        help="render tool results in this role, the one the model's chat template reserves for "
                             "untrusted data (Meta-SecAlign: input); default: tool")


def _render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-unrenderable", action="store_true",
                        help="skip records the model cannot take (its chat template raises on them, or the prompt runs "
                             "past its context; counted in the output) instead of stopping at the first")


def _device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on a GPU, float32 on the CPU")


def _passing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--passed-to", default=None, metavar="MODEL",
                        help="with a gated --steer: this model (the defended model's base) answers what the gate "
                             "passes, instead of the ablated model")
    parser.add_argument("--gate-threshold", type=float, default=None, metavar="P",
                        help="with a gated --steer: pass (ablate, or hand to --passed-to) what its gate reads below "
                             "P, in place of the config's threshold")


def _agent_loop_arguments(parser: argparse.ArgumentParser) -> None:
    """How `agent run` and `agent sweep` drive the loop, and the model they load."""
    parser.add_argument("--max-steps", type=positive, default=8, help="step budget of a task that sets none")
    parser.add_argument("--max-new-tokens", type=positive, default=128)
    parser.add_argument("--batch-size", type=positive, default=16, help="tasks run side by side, one batch per turn")
    parser.add_argument("--limit", type=positive, default=None, help="run only the first N selected tasks")
    _adapter_arguments(parser)
    _tool_role_argument(parser)
    _device_arguments(parser)


def _command(sub, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand whose own --help opens with the line the parent's list gives it."""
    return sub.add_parser(name, help=help, description=help)


def build_parser() -> argparse.ArgumentParser:
    from taxlens.datagen import SEED

    parser = argparse.ArgumentParser(
        prog="taxlens", description="Find where a defended model's over-refusal of benign tool calls arises, against "
        "its base, and steer it away without removing the defense. Every subcommand takes --help.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = _command(sub, "data", "prompt sets: check a file against the contract, or regenerate the shipped one")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = _command(data_sub, "check", "validate FILE and print its counts by kind, domain and split")
    check.add_argument("file")
    check.set_defaults(func=commands.cmd_data_check)
    sample = _command(data_sub, "sample", "write a valid seeded subset of FILE (minimal pairs kept whole, or "
                                          "their links dropped)")
    sample.add_argument("file")
    sample.add_argument("--split", choices=("train", "val", "test"), default=None, help="default: every split")
    sample.add_argument("--n", type=positive, required=True, help="at most this many records")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--pairs", choices=("whole", "drop"), default="whole",
                        help="whole: draw minimal pairs as units of two; drop: draw records singly and remove links "
                             "to partners not drawn")
    sample.add_argument("--out", type=file_out, required=True, help="the subset's JSONL path")
    sample.set_defaults(func=commands.cmd_data_sample)
    leak = _command(data_sub, "leakage", "val and test records that the organism's training text can produce "
                                         "(4+ fixed words of a template, or 6 words shared); exit 1 if any")
    leak.add_argument("file")
    leak.add_argument("--examples", type=positive, default=5, help="most common witnesses to list per check")
    leak.add_argument("--out", type=file_out, default=None, help="also write the summary here (JSON)")
    leak.set_defaults(func=commands.cmd_data_leakage)
    gen = _command(data_sub, "generate", "regenerate toolcalls.jsonl and tools.json")
    gen.add_argument("--out", type=folder_out, default="datasets")
    gen.add_argument("--seed", type=int, default=SEED)
    gen.set_defaults(func=commands.cmd_data_generate)

    ev = _command(sub, "eval", "evaluate a model on a prompt set and write the contract's report")
    ev.add_argument("--model", required=True, help="HF id, local checkpoint folder, or organism:base|organism:defended "
                                                   "(with --endpoint: the model name the server serves)")
    ev.add_argument("--endpoint", default=None, metavar="URL",
                    help="evaluate a model served at this OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1)")
    ev.add_argument("--api-key", default=os.environ.get(API_KEY_ENV), help=CLIENT_KEY_HELP)
    ev.add_argument("--concurrency", type=positive, default=8, help="with --endpoint: requests in flight")
    ev.add_argument("--data", required=True, help="a JSONL prompt set in the contract's format")
    ev.add_argument("--split", choices=("train", "val", "test"), default=None)
    ev.add_argument("--out", type=file_out, required=True, help="report JSON path")
    ev.add_argument("--max-new-tokens", type=positive, default=128)
    ev.add_argument("--batch-size", type=positive, default=16)
    ev.add_argument("--limit", type=positive, default=None, help="evaluate only the first N selected records")
    _adapter_arguments(ev)
    _render_arguments(ev)
    _tool_role_argument(ev)
    _device_arguments(ev)
    ev.add_argument("--steer", default=None, help="a steering config (steer.json from `taxlens steer`) to apply")
    _passing_arguments(ev)
    ev.add_argument("--oracle-gate", action="store_true",
                    help="with a gated --steer: replace its gate by each record's kind (ablate benign and lookalike "
                         "records, add on harmful ones, leave injections alone): what the intervention does with a "
                         "perfect gate")
    ev.add_argument("--reply-prefix", default=None,
                    help="force every reply to open with this text, e.g. '<tool_call>': what the model does once "
                         "it does not refuse (the ceiling of any first-token intervention)")
    ev.set_defaults(func=commands.cmd_eval)

    st = _command(sub, "steer", "fit a steering method on train, search its settings on val, write steer.json")
    st.add_argument("--base", required=True, help="the undefended model, for reference figures")
    st.add_argument("--model", required=True, help="the defended model to steer")
    st.add_argument("--data", required=True, help="a JSONL prompt set with train and val splits")
    st.add_argument("--method", choices=("global", "false_refusal", "gated", "all"), default="gated")
    st.add_argument("--out", type=folder_out, required=True,
                    help="output folder (with --method all, one sub-folder per method)")
    st.add_argument("--shortlist", type=positive, default=3,
                    help="screened settings evaluated with generation, per positions value "
                         "(and, gated, per gate layer)")
    st.add_argument("--batch-size", type=positive, default=32)
    st.add_argument("--max-new-tokens", type=positive, default=128)
    st.add_argument("--positions", nargs="+", choices=("prompt", "last", "all"), default=["prompt", "last"],
                    help="which positions the steering may edit (export needs prompt or all)")
    st.add_argument("--quick", action="store_true",
                    help="a reduced grid chosen on the first reply token alone, no generation on val (the demo)")
    st.add_argument("--agent-tasks", default=None, metavar="FILE",
                    help="agent tasks (datasets/agent_tasks.jsonl) whose train split's reference runs also fit the "
                         "gate, so it reads a turn after a tool result as it will when the model runs as an agent")
    _adapter_arguments(st)
    _render_arguments(st)
    _openings_arguments(st)
    _device_arguments(st)
    st.set_defaults(func=commands.cmd_steer)

    sw = _command(sub, "sweep", "a gated config's figures at every gate threshold, from one run per gate decision")
    sw.add_argument("--model", required=True, help="the defended model the config steers")
    sw.add_argument("--steer", required=True, help="a gated steering config (steer.json, or organism:gated)")
    sw.add_argument("--data", required=True, help="a JSONL prompt set in the contract's format")
    sw.add_argument("--split", choices=("train", "val", "test"), default="val")
    sw.add_argument("--out", type=folder_out, required=True, help="output folder: sweep.json, sweep.md, sweep.png")
    sw.add_argument("--thresholds", type=float, nargs="+", default=None, metavar="T",
                    help="ablation thresholds to try (default: the steering search's grid; the config's own is added)")
    sw.add_argument("--add-thresholds", type=float, nargs="+", default=None, metavar="A",
                    help="add thresholds to try, each at or above a threshold (default: the search's grid)")
    sw.add_argument("--limit", type=positive, default=None, help="only the first N selected records")
    sw.add_argument("--max-new-tokens", type=positive, default=128)
    sw.add_argument("--batch-size", type=positive, default=16)
    _adapter_arguments(sw)
    _device_arguments(sw)
    sw.set_defaults(func=commands.cmd_sweep)

    sv = _command(sub, "serve", "an OpenAI-compatible chat-completions server, optionally steered")
    sv.add_argument("--model", required=True)
    sv.add_argument("--steer", default=None, help="a steering config applied per request (gated: per request/turn)")
    _passing_arguments(sv)
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=port, default=8000)
    sv.add_argument("--engine", choices=("transformers", "bridge"), default="transformers",
                    help="generate with plain transformers (default; about twice as fast on the organism) or "
                         "inside the TransformerLens bridge")
    sv.add_argument("--served-model-name", default=None, metavar="NAME",
                    help="the model id clients send and /v1/models lists (as vLLM's flag; default: the model's "
                         "label, e.g. 'BASE + ADAPTER' for an adapter)")
    sv.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                    help=f"require Authorization: Bearer <key> on /v1/ routes (default: ${API_KEY_ENV}, if set)")
    _adapter_arguments(sv)
    _tool_role_argument(sv)
    _device_arguments(sv)
    sv.set_defaults(func=commands.cmd_serve)

    ex = _command(sub, "export", "bake a static steering config (global, false_refusal) into HF weights")
    ex.add_argument("--model", required=True)
    ex.add_argument("--steer", required=True, help="steer.json")
    ex.add_argument("--out", type=folder_out, required=True, help="folder for the HF checkpoint")
    ex.add_argument("--dtype", default="float32", help="saved dtype (float32 keeps logits equal to the hooks')")
    _adapter_arguments(ex)
    ex.set_defaults(func=commands.cmd_export)

    pr = _command(sub, "probe", "locate where a defended model's over-refusal arises, against its base")
    pr.add_argument("--base", required=True, help="the undefended model (HF id, folder or organism:base)")
    pr.add_argument("--defended", required=True, help="its defended twin (same tokenizer and widths)")
    pr.add_argument("--data", required=True, help="a JSONL prompt set in the contract's format")
    pr.add_argument("--out", type=folder_out, required=True,
                    help="output folder: summary.json, summary.md, plots, directions, cache")
    pr.add_argument("--split", choices=("train", "val", "test"), default="test", help="split the results are scored on")
    pr.add_argument("--fit-split", choices=("train", "val", "test"), default="train",
                    help="split the directions are fitted on")
    pr.add_argument("--fit-data", default=None,
                    help="fit on this file's --fit-split instead of --data's (e.g. score a held-out set that has no "
                         "train split with directions from datasets/toolcalls.jsonl)")
    pr.add_argument("--batch-size", type=positive, default=32)
    _adapter_arguments(pr, of="--defended")
    _render_arguments(pr)
    _openings_arguments(pr)
    _device_arguments(pr)
    pr.set_defaults(func=commands.cmd_probe)

    org = _command(sub, "organism", "the shipped model organism")
    org_sub = org.add_subparsers(dest="organism_command", required=True)
    train = _command(org_sub, "train", "train the base agent and its defended twin from fixed seeds")
    train.add_argument("--out", type=folder_out, required=True, help="folder for base/, defended/ and train_log.jsonl")
    train.add_argument("--quick", action="store_true", help="a reduced pair in about a minute, for tests")
    train.add_argument("--recipe", default=None, metavar="FILE",
                       help="another recipe: a JSON object of Recipe fields (the rest keep the shipped recipe's, "
                            "e.g. {\"d_model\": 320, \"n_heads\": 5, \"d_mlp\": 880}), or a trained folder's "
                            "organism.json (or the folder) to train its recipe again; --seed and the options below "
                            "still apply")
    train.add_argument("--seed", type=int, default=None, help="default: the recipe's (the shipped pair's)")
    train.add_argument("--defended-seed", type=int, default=None,
                       help="the defended twin's own seed (its set, adapter start and batch order); default: it "
                            "follows --seed")
    train.add_argument("--defended-lora", type=int, default=None, metavar="RANK",
                       help="rank of the defended twin's LoRA adapter on the base (default: the recipe's 16, as "
                            "shipped; 0 fine-tunes every weight instead)")
    train.add_argument("--base", default=None, metavar="FOLDER",
                       help="train only the defended adapter, on this base (a base/ folder this command wrote, "
                            "e.g. taxlens/organism/checkpoints/base); it is copied to OUT/base")
    train.add_argument("--device", default="cpu",
                       help="where the models train: cpu or cuda (the same seed gives a different pair on each; "
                            "organism.json records which)")
    train.set_defaults(func=commands.cmd_organism_train)
    check = _command(org_sub, "check", "how well a checkpoint fits its own recipe: exact replies on chats it "
                                       "trained on vs fresh ones, token errors on copied arguments")
    check.add_argument("--model", default="organism:base", help="organism:base|organism:defended or a folder "
                                                                "written by `organism train`")
    check.add_argument("--n", type=positive, default=256, help="chats per set")
    check.add_argument("--out", type=file_out, default=None, help="also write the figures here (JSON)")
    check.add_argument("--device", default=None)
    check.set_defaults(func=commands.cmd_organism_check)

    rp = _command(sub, "report", "one markdown page from a run folder's eval, probe, steer and agent outputs")
    rp.add_argument("run", help="the run folder (base.json, defended.json, steered.json, probe/, steer/, "
                                "agent_base.json, agent_defended.json, agent_steered.json, agent.png)")
    rp.set_defaults(func=commands.cmd_report)

    cmp_ = _command(sub, "compare", "autonomy tax (and, with --steered, tax recovered) from eval or agent reports")
    cmp_.add_argument("base", help="the base model's report: `taxlens eval` or `taxlens agent run` JSON")
    cmp_.add_argument("defended", help="the defended model's report, of the same kind and prompt set")
    cmp_.add_argument("--steered", default=None, help="the steered model's report: adds tax recovered and defense "
                                                       "retained")
    cmp_.add_argument("--oracle", default=None, metavar="JSON",
                      help="with --steered: the same config run with --oracle-gate; with --ceiling, sorts the tax "
                           "records the steered run leaves by cause (gate, intervention, after the first token)")
    cmp_.add_argument("--ceiling", default=None, metavar="JSON",
                      help="with --oracle: the defended model run with --reply-prefix '<tool_call>'")
    cmp_.add_argument("--plot", default=None, metavar="PNG",
                      help="agent reports: draw task success, step-1 failure, step-1 refusal and timeout "
                           "per model on lookalike tasks")
    cmp_.set_defaults(func=commands.cmd_compare)

    agent = _command(sub, "agent", "run a model as an agent on multi-step tasks in real sandboxes")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)
    run = _command(agent_sub, "run", "run every selected task to its end and score the final state")
    run.add_argument("--model", required=True, help="HF id, local folder, adapter folder or organism:base|"
                                                    "organism:defended (with --endpoint: the served model's name)")
    run.add_argument("--tasks", required=True, help="a JSONL file of agent tasks (datasets/agent_tasks.jsonl)")
    run.add_argument("--split", choices=("train", "val", "test"), default=None)
    run.add_argument("--kinds", nargs="+", choices=("benign", "lookalike", "harmful", "injection"), default=None)
    run.add_argument("--out", type=file_out, required=True, help="report JSON path (figures and every trajectory)")
    run.add_argument("--steer", default=None, help="a steering config; a gated one decides afresh at every turn")
    _passing_arguments(run)
    run.add_argument("--endpoint", default=None, metavar="URL",
                     help="drive a model served at this OpenAI-compatible base URL instead of loading one")
    run.add_argument("--api-key", default=os.environ.get(API_KEY_ENV), help=CLIENT_KEY_HELP)
    run.add_argument("--concurrency", type=positive, default=8, help="with --endpoint: requests in flight")
    _agent_loop_arguments(run)
    run.set_defaults(func=agent_commands.cmd_agent_run)

    sweep = _command(agent_sub, "sweep", "a gated config's agent-task figures at every gate threshold, and the "
                                         "threshold to run agents at")
    sweep.add_argument("--model", required=True, help="the defended model the config steers")
    sweep.add_argument("--steer", required=True, help="a gated steering config (steer.json or its folder)")
    sweep.add_argument("--passed-to", default=None, metavar="MODEL",
                       help="this model (the defended model's base) answers the turns the gate passes, instead of "
                            "the ablated model; it is also run alone, for the gap recovered")
    sweep.add_argument("--tasks", required=True, help="a JSONL file of agent tasks (datasets/agent_tasks.jsonl)")
    sweep.add_argument("--split", choices=("train", "val", "test"), default="val",
                       help="the split the threshold is chosen on (default: val)")
    sweep.add_argument("--thresholds", type=float, nargs="+", default=None, metavar="P",
                       help="gate thresholds to run (default: the ones `taxlens steer` searches), besides the "
                            "config's own")
    sweep.add_argument("--out", type=folder_out, required=True,
                       help="output folder: sweep.json, sweep.md, sweep.png, the agent reports, and steer.json at "
                            "the chosen threshold")
    _agent_loop_arguments(sweep)
    sweep.set_defaults(func=agent_commands.cmd_agent_sweep)
    return parser


class Terminated(BaseException):
    """SIGTERM (`kill`, a job scheduler's time limit) raised in the main thread as Ctrl-C raises KeyboardInterrupt, so
    that what a command holds (sandboxes and their servers, a cache being written) is closed on the way out."""


def _terminated(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    from taxlens.contract import ContractError

    args = build_parser().parse_args(argv)
    in_main = threading.current_thread() is threading.main_thread()  # only the main thread may set a handler
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main else None
    try:
        return args.func(args)
    except (ContractError, OSError, ValueError) as e:  # OSError: a file that is missing, unreadable, not writable
        print(f"taxlens: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("taxlens: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("taxlens: terminated", file=sys.stderr)
        return 143
    except RuntimeError as e:  # torch.OutOfMemoryError, and the CPU allocator's own words
        if "out of memory" not in str(e).lower() and "can't allocate memory" not in str(e).lower():
            raise
        hint = "give a smaller --batch-size" if getattr(args, "batch_size", None) else "free the device's memory"
        print(f"taxlens: error: {str(e).splitlines()[0]}\n  the model and its work do not fit: {hint}",
              file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
