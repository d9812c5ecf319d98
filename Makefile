# SEER -- every target sets itself up on a fresh Debian machine (Python 3.11).
#   make demo    controller + daemons on 127.0.0.1, one command, per-node outcomes
#   make test    the whole test suite
#   make dashboard-screenshot   docs/img/dashboard.png from the demo testbed (root, chromium)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench setup system-packages clean dashboard-screenshot

$(STAMP): setup.cfg pyproject.toml
	@scripts/setup-machine
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m seer.demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

dashboard-screenshot: $(STAMP)
	$(PY) scripts/dashboard-screenshot docs/img/dashboard.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
