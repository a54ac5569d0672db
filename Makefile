# `make test` and `make demo` set up .venv on a fresh machine, then run.
PY      := .venv/bin/python
STAMP   := .venv/.installed
DATA    := datasets/toolcalls.jsonl

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

test: $(STAMP)
	$(PY) -m pytest

# The main job on the shipped organism: the autonomy tax, measured.
demo: $(STAMP)
	.venv/bin/taxlens eval --model organism:base --data $(DATA) --split test --out runs/demo/base.json
	.venv/bin/taxlens eval --model organism:defended --data $(DATA) --split test --out runs/demo/defended.json
	.venv/bin/taxlens compare runs/demo/base.json runs/demo/defended.json

data: $(STAMP)
	.venv/bin/taxlens data generate --out datasets

clean:
	rm -rf .venv runs .pytest_cache
