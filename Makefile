# `make test` and `make demo` set up .venv on a fresh machine, then run.
PY      := .venv/bin/python
STAMP   := .venv/.installed
DATA    := datasets/toolcalls.jsonl
TASKS   := datasets/agent_tasks.jsonl

.PHONY: setup test demo data clean

setup: $(STAMP)

# CPU torch first where there is no CUDA, so the dependency resolver never pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q torch; \
	else $(PY) -m pip install -q torch==2.13.0; fi
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

# One worker per core (pytest-xdist), each file's tests on one worker so module fixtures are built once; files in
# the order tests/conftest.py gives them, the longest first.
test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder

# The main job on the shipped organism: measure the tax, locate it, steer it away, measure again; then the same
# pair and config as agents on multi-step tasks in sandboxes.
TL := .venv/bin/taxlens
demo: $(STAMP)
	$(TL) eval --model organism:base --data $(DATA) --split test --out runs/demo/base.json
	$(TL) eval --model organism:defended --data $(DATA) --split test --out runs/demo/defended.json
	$(TL) probe --base organism:base --defended organism:defended --data $(DATA) --out runs/demo/probe
	$(TL) steer --base organism:base --model organism:defended --data $(DATA) --method gated --quick --out runs/demo/steer
	$(TL) eval --model organism:defended --steer runs/demo/steer --data $(DATA) --split test --out runs/demo/steered.json
	$(TL) agent run --model organism:base --tasks $(TASKS) --split test --out runs/demo/agent_base.json
	$(TL) agent run --model organism:defended --tasks $(TASKS) --split test --out runs/demo/agent_defended.json
	$(TL) agent run --model organism:defended --steer runs/demo/steer --tasks $(TASKS) --split test \
	    --out runs/demo/agent_steered.json
	$(TL) compare runs/demo/agent_base.json runs/demo/agent_defended.json --steered runs/demo/agent_steered.json \
	    --plot runs/demo/agent.png
	$(TL) report runs/demo
	@echo "Look at runs/demo/report.md (tables and plots, the agent runs included), runs/demo/probe/summary.md"
	@echo "and runs/demo/steer/pareto.md."

data: $(STAMP)
	.venv/bin/taxlens data generate --out datasets

clean:
	rm -rf .venv runs .pytest_cache
