"""The README's commands are the ones that exist: each `taxlens` line parses, and the quick ones run as written."""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import ROOT

from taxlens.cli import build_parser, main

README = (ROOT / "README.md").read_text()


def _commands() -> list[list[str]]:
    """Every `taxlens …` line of the README's bash blocks, continuation lines joined, comments and `&` dropped."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.DOTALL):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.split(" #")[0].strip().rstrip("&").strip()
            if line.startswith("taxlens "):
                out.append(shlex.split(line)[1:])
    return out


COMMANDS = _commands()


def test_the_readme_is_short_and_shows_the_path():
    assert len(README.encode()) <= 15_000
    assert {c[0] for c in COMMANDS} >= {"data", "eval", "compare", "probe", "steer", "serve", "export"}


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_every_readme_command_parses(argv):
    build_parser().parse_args(argv)


def test_every_readme_export_bakes_a_config_that_weights_can_hold():
    from steering.export import check_exportable

    exports = [build_parser().parse_args(c) for c in COMMANDS if c[0] == "export"]
    steers = {a.out: a for a in (build_parser().parse_args(c) for c in COMMANDS if c[0] == "steer")}
    assert exports
    for export in exports:
        if export.steer.startswith("organism:"):
            check_exportable(export.steer)
        else:  # written by a README steer line that searches only what export can bake
            made = steers[export.steer]
            assert made.method in ("global", "false_refusal") and set(made.positions) <= {"prompt", "all"}, made


def test_the_quick_readme_commands_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "datasets").symlink_to(ROOT / "datasets")
    quick = [c for c in COMMANDS if c[0] == "data"]
    assert len(quick) >= 2
    for argv in quick:
        assert main(argv) == 0, argv
    assert (tmp_path / "runs" / "small.jsonl").is_file()


def test_the_readme_python_path_runs_as_written(tmp_path, monkeypatch):
    import taxlens

    monkeypatch.chdir(tmp_path)
    (tmp_path / "datasets").symlink_to(ROOT / "datasets")
    # on half of what the block loads (records 0, 1, 4, 5, …: minimal pairs stay together), for time
    load = taxlens.load_records
    monkeypatch.setattr(taxlens, "load_records", lambda *a, **k: [r for i, r in enumerate(load(*a, **k)) if i % 4 < 2])
    (block,) = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["report"].meta["n"] == 8 and (tmp_path / "runs" / "cache" / "index.json").is_file()
