# Every target creates/uses the local virtualenv $(VENV) and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench lint reproduce reproduce-500 reproduce-warmstart budget-curve clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/dckd distill

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/run.py
	$(PY) benchmarks/data.py --quick
	$(PY) benchmarks/memory_format.py
	mkdir -p runs && $(PY) benchmarks/host_memory.py --json runs/bench-host-memory.json
	mkdir -p runs && $(PY) benchmarks/step.py --quick --json runs/bench-step.json
	mkdir -p runs && $(PY) benchmarks/step_stages.py --json runs/bench-step-stages.json

lint: install
	$(VENV)/bin/ruff check dckd_cli tests benchmarks
	$(VENV)/bin/ruff format --check dckd_cli tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache

# The from-scratch regime where distillation helps, and DCKD with three encoders in it
# (docs/results.md; hours on 2 CPU cores; resumable). Needs ../shared.
reproduce: install
	$(PY) benchmarks/reproduce_scratch.py --shared ../shared --report docs/results.md

# The same protocol at 500 iterations, where logits KD gains only +0.03 dB (docs/results-500.md).
reproduce-500: install
	$(PY) benchmarks/reproduce_scratch.py --shared ../shared --iters 500 --output runs/reproduce-scratch \
		--report docs/results-500.md --results runs/reproduce-scratch/students

# The earlier paired, warm-started protocol (about 2.5 h on 2 CPU cores; resumable). Needs ../shared.
reproduce-warmstart: install
	$(PY) benchmarks/reproduce_small.py --shared ../shared --output runs/reproduce --report docs/results-warmstart.md

# The budget curve (docs/results.md, "Budget curve"): scratch, logits and DCKD with two encoders
# at 1000 and 2000 iterations, seeds 0-2 (many hours on 2 CPU cores; resumable across machines:
# finished cells are kept in docs/results/budget/, unfinished ones parked there with --park). Needs ../shared.
budget-curve: install
	$(PY) benchmarks/budget_curve.py --shared ../shared --run 1000,2000 --threads 1 --report
