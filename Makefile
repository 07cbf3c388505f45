# transfer: `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed
SWEEP ?=
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile
GRID := -m model=llava,qwen,idefics source_task='glob(*)'
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: help install sweep science reduce dashboard test test-all lint bench bench-gpu browser slurm-up slurm-down sync \
	clean-outputs

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d .venv || python3 -m venv .venv
	.venv/bin/pip install -q torch==2.13.0
	.venv/bin/pip install -q -e '.[dev,dashboard]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (torch pinned, no torchvision)

sweep: install  ## run the embedded grid (3 families x 14 cells) and the reducer
	$(PY) -m transfer.run $(GRID) $(if $(SWEEP),sweep=$(SWEEP))

science: install  ## the 4-seed validation grid + reducer, then a report of its targets (missed ones xfail)
	$(PY) -m transfer.run $(GRID) seed=0,1,2,3 sweep=science
	$(PY) -m pytest -q -rxX -m slow tests/test_science.py

reduce: install  ## PGF matrices + report of the most recent sweep (SWEEP=NAME for another)
	$(PY) -m transfer.reduce $(if $(SWEEP),sweep=$(SWEEP))

dashboard: install  ## W&B workspace + report of the latest sweep (SWEEP=NAME); saved when logged in and WANDB_MODE=online
	$(PY) -m transfer.dashboard $(if $(SWEEP),sweep=$(SWEEP))

browser:  ## install headless Chromium for the report screenshot test (Debian, root)
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

test: install browser  ## the test suite (fast tests; slurm tests run when the loopback cluster is up)
	$(PYTEST) -m "not slow"

test-all: install browser  ## every test, the slow ones too
	$(PYTEST)

lint: install  ## ruff over the whole repository
	.venv/bin/ruff check .

bench: install  ## benchmarks: the full embedded grid, the reducer and partial-grid completion
	$(PY) bench/grid.py
	$(PY) bench/reduce.py
	$(PY) bench/completion.py

bench-gpu: install  ## GPU benchmark: LoRA step + evaluation of 7B-class models (needs CUDA)
	$(PY) bench/gpu.py

slurm-up:  ## start the single-node loopback SLURM cluster (root; installs Debian packages if missing)
	bash launch/slurm_up.sh

slurm-down:  ## stop the loopback SLURM cluster
	bash launch/slurm_down.sh

sync: install  ## upload the offline W&B runs, one W&B run per run id (SWEEP=NAME for one sweep, DRY_RUN=1: the plan only)
	WANDB_MODE=online $(PY) -m transfer.sync $(if $(SWEEP),sweep=$(SWEEP)) $(if $(DRY_RUN),dry_run=true)

clean-outputs:  ## delete all sweeps and caches under outputs/
	find outputs -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
