# Every target works on a fresh clone: install creates .venv when it is missing
# or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The verification core's hot modules, compiled to C by mypyc (part of mypy,
# installed with the test extra): a new leaf's own work beside its signature
# costs about half (benchmarks/README.md). Built in place, imported instead of the sources;
# pki/__init__.py refuses compiled modules older than their sources (by the
# stamp pki/.compiled). Where no C
# compiler works, pki runs from the sources, as it always can.
COMPILED := pki/der.py pki/certificate.py pki/parse_cache.py pki/loading.py pki/validation.py pki/verifier.py \
	pki/known_chains.py pki/building.py pki/signatures.py pki/profile.py pki/budget.py pki/algorithms.py \
	pki/names.py pki/policy.py pki/indication.py
COMPILED_STAMP := pki/.compiled

.PHONY: install test lint bench demo clean constraints screenshots compile uncompile

install: $(STAMP) $(COMPILED_STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

compile: $(COMPILED_STAMP)

# scripts/compile_pki.py: mypyc with the modules' shared code inside pki/.
$(COMPILED_STAMP): $(STAMP) $(COMPILED) scripts/compile_pki.py
	rm -f pki/*.so
	$(BIN)/python scripts/compile_pki.py $(COMPILED) >build-mypyc.log 2>&1 || { rm -f pki/*.so; echo "mypyc failed (build-mypyc.log): pki runs from its sources"; }
	touch $@

uncompile:
	rm -f pki/*.so $(COMPILED_STAMP)

# ruff and mypy, configured in pyproject.toml.
lint: install
	$(BIN)/ruff check pki bridge api tests benchmarks
	$(BIN)/mypy

# The pinned versions of every dependency, resolved afresh from pyproject.toml.
constraints:
	rm -rf build/constraints-venv
	$(PYTHON) -m venv build/constraints-venv
	build/constraints-venv/bin/pip install -q --upgrade pip
	build/constraints-venv/bin/pip install -q '.[test]'
	{ head -n 2 constraints.txt; build/constraints-venv/bin/pip freeze --exclude-editable | grep -v '^bridgeca'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf build/constraints-venv

# Lint first, then the suite on 3 worker processes (pytest-xdist): its time
# is mostly real bridgeca servers starting, which overlap well.
test: install lint compile
	@bash scripts/ensure_softhsm.sh >/dev/null 2>&1 || echo "SoftHSM2 unavailable: the PKCS#11 tests will skip"
	$(BIN)/pytest -q -n 3 tests

bench: install compile
	$(BIN)/pytest -q benchmarks --benchmark-only --benchmark-columns=min,median,mean,ops

demo: install compile
	$(BIN)/bridgeca demo

# The console's pictures in the README (docs/screenshots/): real servers, signed in, by Debian's
# chromium (scripts/screenshots.py). Installs what is missing: chromium, a CJK font (the page's
# 中文 switch), pngquant (keeps each PNG small).
screenshots: install
	@missing=""; [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	fc-list :lang=zh | grep -q . || missing="$$missing fonts-wqy-microhei"; \
	command -v pngquant >/dev/null || missing="$$missing pngquant"; \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .benchmarks pki/*.so $(COMPILED_STAMP) build-mypyc.log
