# SEER -- every target sets itself up on a fresh Debian machine (Python 3.11).
#   make demo    a real experiment on a namespace testbed (127.0.0.1 without root)
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
	# compat: the project folder on sys.path by a .pth line, instead of an
	# import hook that costs every `seer` command ~15 ms before it starts.
	$(PY) -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	# Bytecode for SEER's own modules, as a wheel install would have: where
	# PYTHONDONTWRITEBYTECODE is set Python never writes it, and every `seer`
	# command (and every daemon a test starts) compiled them again (~40 ms).
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m compileall -q seer backend agents bench > /dev/null
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
