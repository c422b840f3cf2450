# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench torture clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "kode-sdk needs Python 3.11+"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m kode_sdk.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src

test: lint
	$(VENV)/bin/pytest

# Every workload on every backend and peer it can reach (PostgreSQL ones when
# KODE_TEST_POSTGRES_URL or the local server answers), 3 repeats, medians, pictures.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	mkdir -p bench/results && rm -f bench/results/w1w3.json
	for i in 1 2 3; do $(PY) bench/run.py --workload W1,W2 --backend all --mode both --out bench/results/w1w3.json || [ $$? -eq 2 ] || exit 1; done
	for i in 1 2 3; do $(PY) bench/run.py --workload W3 --backend sqlite,sqlite-raw,postgres,postgres-raw --out bench/results/w1w3.json || [ $$? -eq 2 ] || exit 1; done
	# JSONStore answers queries by scanning files: W3 once, at 10,000 messages.
	$(PY) bench/run.py --workload W3 --backend json,sqlite,postgres --agents 100 --out bench/results/w1w3.json || [ $$? -eq 2 ]
	$(PY) bench/run.py --workload W1 --backend sqlite,sqlite-raw,postgres,postgres-raw --agents 3 --turns 200 --mode both --out bench/results/w1w3.json || [ $$? -eq 2 ]
	$(PY) bench/w4.py --backend all --repeat 3 --out bench/results/w4.json
	$(PY) bench/report.py bench/results/w1w3.json bench/results/w4.json --docs docs/benchmarks.md

# The long reliability run: 50 kills per backend, 30 s of contention, restarts, full disks.
torture: $(STAMP)
	KODE_TORTURE=1 $(VENV)/bin/pytest tests/reliability -m reliability

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
