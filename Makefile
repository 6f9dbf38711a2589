# The Makefile is the project's public interface: every command in README.md is a target here.
# `make help` lists them.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Folder laid out like the project's data mirror (poly/, fsdd/); empty means download.
export DATA_MIRROR ?=
# Two roots. What you run and build goes to OUT, by default outputs/ (git-ignored, where single
# runs of `python -m gru_repro.train` go too): quick protocol, samples, bench, Table 1. The
# committed results/ change only through the targets `make help` marks [results/], for the
# maintainers: `make reproduce` and `make reports` (the committed full sweep in results/runs)
# and publish-quick, publish-samples, publish-bench, publish-table1 (the target of the same
# name with OUT=results).
OUT ?= outputs
# Runs a target reads or trains. Empty: `make reproduce` / `make reports` use the committed full
# sweep (results/runs; RUNS=outputs/runs trains your own), `make samples` / `make tensorboard`
# everything under OUT. Reports go to the folder holding RUNS (results/runs -> results/).
RUNS ?=
FULL_RUNS = $(or $(RUNS),results/runs)
FULL_OUT = $(patsubst %/,%,$(dir $(FULL_RUNS)))
# Extra flags for scripts/reproduce.py, e.g. REPRODUCE_FLAGS="--launcher slurm".
REPRODUCE_FLAGS ?=
# Speech data of the full protocol: subset (the reduced CPU sizes) or whole (all of FSDD).
SPEECH ?= subset
# Extra flags for `make reports`, e.g. REPORT_FLAGS=--allow-incomplete for a partial sweep.
REPORT_FLAGS ?=

.DEFAULT_GOAL := help
.PHONY: help install lock test test-fast data smoke table1 bench reproduce reproduce-released reproduce-released-exact reproduce-speech-whole reproduce-quick reports reports-released reports-quick ablations chain reproduce-chain samples tensorboard lint format clean publish-quick publish-samples publish-bench publish-table1

help: ## List the targets with one line each
	@echo "Targets write to OUT=$(OUT)/ (git-ignored) unless their line names results/: those rewrite the committed results/ (for maintainers)."
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

# The markers are declared in pyproject.toml; real_data is set by tests/conftest.py.
test-fast: install ## The fast tests: no subprocess, slow or install test (under a minute)
	$(PY) -m pytest -q -m "not slow and not subprocess and not install"

data: install ## Fetch, verify (SHA-256) and preprocess every data set into data/
	$(PY) -m gru_repro.data.fetch --all

smoke: install ## Train all three units for a few epochs on JSB Chorales (< 2 minutes)
	$(PY) scripts/smoke.py

table1: install ## Write OUT/table1.md (parameter counts, paper beside ours)
	$(PY) scripts/table1.py --out $(OUT)/table1.md

bench: install ## Speed of our units vs torch.nn (writes OUT/bench.md, OUT/bench.json)
	$(PY) scripts/bench.py --out-dir $(OUT)

reproduce: install data table1 ## [results/] Full protocol, continuing the committed sweep in results/runs; RUNS=outputs/runs for yours (days of CPU; resumable)
	$(PY) scripts/reproduce.py --protocol full --speech $(SPEECH) --skip-data --runs $(FULL_RUNS) --out $(FULL_OUT) $(REPRODUCE_FLAGS)

# The music sets again with the released code's optimizer (OPTIMIZERS in reports/protocol.py),
# in the same runs root: run folders name the optimizer and the run's identity hash.
# Their reports go to OUT/ (outputs/): results/released/ is published by `make reports` from the
# committed runs, and shows the exact released training once all its runs have finished.
reproduce-released: install data ## Music sets with the released code's optimizer, in results/runs; reports in OUT/released_optim (resumable)
	$(PY) scripts/reproduce.py --protocol full --optim released --skip-data --runs $(FULL_RUNS) --out $(OUT)/released_optim $(REPRODUCE_FLAGS)

reproduce-released-exact: install data ## The released code's training exactly (batch 1, 500 epochs, populations), music sets, in results/runs; reports in OUT/released_exact (days of CPU; resumable)
	$(PY) scripts/reproduce.py --protocol full --optim released-exact --skip-data --runs $(FULL_RUNS) --out $(OUT)/released_exact $(REPRODUCE_FLAGS)

# The full protocol's speech search on all of FSDD (--speech whole) in a runs root of its own
# (the run folders do not name the data size). Single runs, two at a time: a population gives
# no speed-up at the speech sizes (results/bench.md), and a single run (under an hour on a core,
# results/speech_whole_cost.md) finishes within a working session where a population of 10 would not.
SPEECH_WHOLE_RUNS = $(FULL_OUT)/speech_whole/runs
# the experiments that root trains and reports (its protocol file lists the whole grid)
SPEECH_WHOLE_ONLY = --only speech/a --only speech/b
reproduce-speech-whole: install data ## [results/] Speech A and B on all of FSDD, continuing results/speech_whole/runs; reports in OUT/speech_whole (days of CPU on 2 cores; resumable)
	$(PY) scripts/reproduce.py --protocol full --speech whole $(SPEECH_WHOLE_ONLY) --no-population --skip-data --runs $(SPEECH_WHOLE_RUNS) --out $(OUT)/speech_whole $(REPRODUCE_FLAGS)

reproduce-quick: install data ## Quick protocol on real data: trains into OUT/quick/runs, reports in OUT/quick (~10-15 min on 2 cores)
	$(PY) scripts/reproduce.py --protocol quick --skip-data --runs $(OUT)/quick/runs --out $(OUT)/quick $(REPRODUCE_FLAGS)

# Each report set (REPORT_SETS in reports/protocol.py) shows the preferred protocol of its set
# whose runs have all finished (reports/report_sets.py): results/released/ shows the released
# code's exact training (every run of it is committed); the batch-8 released-optimizer protocol
# it replaced keeps its runs in results/runs (the chain and fit.md read them) and its reports in
# results/released_optim/ (no README block), so that the README's comparisons with it stay checkable.
REPORTS_RELEASED = $(PY) scripts/make_reports.py --runs $(FULL_RUNS) --report-set released --out $(FULL_OUT)/released $(REPORT_FLAGS)
REPORTS_RELEASED_OPTIM = $(PY) scripts/make_reports.py --runs $(FULL_RUNS) --protocol full-released-optim --out $(FULL_OUT)/released_optim $(REPORT_FLAGS)
# the speech search on all of FSDD, as far as it has got (marked incomplete until it finishes)
REPORTS_SPEECH_WHOLE = if [ -f $(SPEECH_WHOLE_RUNS)/protocols/full.json ]; then $(PY) scripts/make_reports.py --runs $(SPEECH_WHOLE_RUNS) $(SPEECH_WHOLE_ONLY) --allow-incomplete --out $(FULL_OUT)/speech_whole; fi
reports: install ## [results/] Rebuild results/, results/released/, results/released_optim/, results/speech_whole/, results/chain/ and results/fit.md (Table 2, Figure 3, LR search, README) from the committed runs
	$(PY) scripts/make_reports.py --runs $(FULL_RUNS) --report-set full --out $(FULL_OUT) $(REPORT_FLAGS)
	$(REPORTS_RELEASED)
	$(REPORTS_RELEASED_OPTIM)
	$(REPORTS_SPEECH_WHOLE)
	$(PY) scripts/chain_summary.py --runs $(FULL_RUNS) --out $(FULL_OUT)/chain
	$(PY) scripts/fit_summary.py --runs $(FULL_RUNS) --out $(FULL_OUT)/fit.md

CHAIN_STEPS = 1_sum_objective 2_update_cap 3_no_clipping 4_batch_1 5_500_epochs
reproduce-chain: install data ## [results/] Train the Nottingham GRU chain's steps into results/runs (one population of 10 each; step 5 = the released protocol's GRU runs), then rebuild results/chain/ (hours on 2 cores; resumable)
	for step in $(CHAIN_STEPS); do $(PY) -m gru_repro.train -m experiment=chain/nottingham_gru_$$step paths.output_root=$(abspath $(FULL_RUNS)) || exit 1; done
	$(PY) scripts/chain_summary.py --runs $(FULL_RUNS) --out $(FULL_OUT)/chain

chain: install ## [results/] Rebuild results/chain/ (our protocol to the released code's, one change per step) from the committed runs
	$(PY) scripts/chain_summary.py --runs $(FULL_RUNS) --out $(FULL_OUT)/chain

ablations: install ## [results/] Rebuild results/ablations/README.md from the ablation runs there
	$(PY) scripts/ablation_summary.py

reports-released: install ## [results/] Rebuild results/released/ (the released code's exact training) and results/released_optim/ (batch 8, the released optimizer only) from the committed runs in results/runs
	$(REPORTS_RELEASED)
	$(REPORTS_RELEASED_OPTIM)

reports-quick: install ## Rebuild OUT/quick/ from the quick protocol's runs in OUT/quick/runs
	$(PY) scripts/make_reports.py --runs $(OUT)/quick/runs --out $(OUT)/quick $(REPORT_FLAGS)

samples: install ## MIDI/WAV samples of the best runs under OUT (or RUNS) -> OUT/samples/
	$(PY) scripts/make_samples.py --runs $(or $(RUNS),$(OUT)) --out $(OUT)/samples

# Committed runs keep no event files (metrics.json and curves.csv only): refuse with one line.
TB_LOGDIR = $(or $(RUNS),$(OUT))
tensorboard: install ## TensorBoard on the runs under OUT (or RUNS)
	@find $(TB_LOGDIR) -name 'events.out.tfevents.*' -print -quit 2>/dev/null | grep -q . || { echo "tensorboard: no event files under $(TB_LOGDIR) (committed runs keep only metrics.json and curves.csv): train runs first, e.g. make reproduce-quick, or pass RUNS=FOLDER" >&2; exit 2; }
	$(VENV)/bin/tensorboard --logdir $(TB_LOGDIR)

publish-quick: ## [results/] Continue the committed quick runs (results/quick/runs) and rebuild results/quick/
	$(MAKE) reproduce-quick OUT=results

publish-samples: ## [results/] Rebuild the committed gallery results/samples/ (needs the runs' checkpoints)
	$(MAKE) samples OUT=results RUNS="results/runs results/quick/runs"

publish-bench: ## [results/] Rerun the speed comparison into results/bench.md, results/bench.json
	$(MAKE) bench OUT=results

publish-table1: ## [results/] Rewrite results/table1.md
	$(MAKE) table1 OUT=results

lint: install ## Check formatting and lint with ruff
	$(VENV)/bin/ruff check src scripts tests
	$(VENV)/bin/ruff format --check src scripts tests

format: install ## Format the code with ruff
	$(VENV)/bin/ruff format src scripts tests
	$(VENV)/bin/ruff check --fix src scripts tests

clean: ## Remove caches (keeps data/ and outputs/)
	rm -rf .pytest_cache .ruff_cache $(shell find src tests scripts -name __pycache__)
