# Every target works on a fresh clone: install creates .venv when it is missing
# or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test bench demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

test: install
	@bash scripts/ensure_softhsm.sh >/dev/null 2>&1 || echo "SoftHSM2 unavailable: the PKCS#11 tests will skip"
	$(BIN)/pytest -q tests

bench: install
	$(BIN)/pytest -q benchmarks --benchmark-only --benchmark-columns=min,median,mean,ops

demo: install
	$(BIN)/bridgeca demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .benchmarks
