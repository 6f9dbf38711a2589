# The Makefile is the project's public interface: every command in README.md is a target here.
# `make help` lists them.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Folder laid out like the project's data mirror (poly/, fsdd/); empty means download.
export DATA_MIRROR ?=
# Hydra output folder for single runs (python -m gru_repro.train ...).
OUTPUTS ?= outputs
# Runs root of the full protocol: finished runs' summaries are committed here, so
# `make reproduce` continues the published sweep; RUNS=outputs/my-runs starts afresh.
RUNS ?= results/runs
# Speech data of the full protocol: subset (the reduced CPU sizes) or whole (all of FSDD).
SPEECH ?= subset
# Extra flags for `make reports`, e.g. REPORT_FLAGS=--allow-incomplete for a partial sweep.
REPORT_FLAGS ?=

.DEFAULT_GOAL := help
.PHONY: help install lock test data smoke table1 bench reproduce reproduce-released reproduce-quick reports reports-released reports-quick ablations samples tensorboard lint format clean

help: ## List the targets with one line each
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

# editable_mode=compat: a plain path entry for src/, so Hydra's plugin scan finds the keep_going
# sweeper in src/hydra_plugins (setuptools' default editable finder hides it from that scan).
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
	@touch $(STAMP)

# Compiles the C++ loops of the recurrent units on the first run (about 30 s), then finds them in
# torch's extension cache (about 3 s); GRU_REPRO_KERNELS=python skips it (docs/ARCHITECTURE.md).
install: $(STAMP) ## Create .venv/, install the pinned versions of requirements.lock, build the C++ loops
	$(PY) -c "from gru_repro.models import kernels; kernels.main(['--build'])"

lock: ## Re-pin requirements.lock from the current .venv (after changing pyproject.toml)
	$(PY) -m pip freeze --all --exclude-editable | grep -v '^pip==' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock

test: install ## Run the test suite (fast tests plus real-data tests read from DATA_MIRROR)
	$(PY) -m pytest -q

data: install ## Fetch, verify (SHA-256) and preprocess every data set into data/
	$(PY) -m gru_repro.data.fetch --all

smoke: install ## Train all three units for a few epochs on JSB Chorales (< 2 minutes)
	$(PY) scripts/smoke.py

table1: install ## Write results/table1.md (parameter counts, paper beside ours)
	$(PY) scripts/table1.py

bench: install ## Speed of our units vs torch.nn (writes results/bench.md, results/bench.json)
	$(PY) scripts/bench.py

reproduce: install data table1 ## Full protocol: LR search, seeds, Table 2, Figure 3 (days of CPU; resumable)
	$(PY) scripts/reproduce.py --protocol full --speech $(SPEECH) --skip-data --runs $(RUNS) --out results

# The music sets again with the released code's optimizer (OPTIMIZERS in reports/protocol.py),
# in the same runs root: run folders name the optimizer and the run's identity hash.
reproduce-released: install data ## Music sets with the released code's optimizer -> results/released/ (resumable)
	$(PY) scripts/reproduce.py --protocol full --optim released --skip-data --runs $(RUNS) --out results/released

reproduce-quick: install data table1 ## Reduced protocol on real data (~10-15 minutes on 2 cores)
	$(PY) scripts/reproduce.py --protocol quick --skip-data --runs results/quick/runs --out results/quick

reports: install ## Rebuild results/ (Table 2, Figure 3, LR search) from the runs in RUNS
	$(PY) scripts/make_reports.py --runs $(RUNS) --protocol full --out results $(REPORT_FLAGS)

ablations: install ## Rebuild results/ablations/README.md from the ablation runs there
	$(PY) scripts/ablation_summary.py

reports-released: install ## Rebuild results/released/ from the released-optimizer runs in RUNS
	$(PY) scripts/make_reports.py --runs $(RUNS) --protocol full-released-optim --out results/released $(REPORT_FLAGS)

reports-quick: install ## Rebuild results/quick/ from the quick protocol's runs
	$(PY) scripts/make_reports.py --runs results/quick/runs --out results/quick $(REPORT_FLAGS)

samples: install ## Write MIDI/WAV samples from the best runs into results/samples/
	$(PY) scripts/make_samples.py --runs $(RUNS) results/quick/runs

tensorboard: install ## Open TensorBoard on the run outputs
	$(VENV)/bin/tensorboard --logdir $(OUTPUTS)

lint: install ## Check formatting and lint with ruff
	$(VENV)/bin/ruff check src scripts tests
	$(VENV)/bin/ruff format --check src scripts tests

format: install ## Format the code with ruff
	$(VENV)/bin/ruff format src scripts tests
	$(VENV)/bin/ruff check --fix src scripts tests

clean: ## Remove caches (keeps data/ and outputs/)
	rm -rf .pytest_cache .ruff_cache $(shell find src tests scripts -name __pycache__)
