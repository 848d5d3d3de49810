# The two commands of the README:
#   make speak   set up .venv and speak TEXT in the voice of PROMPT with the shipped model
#   make test    set up .venv (with the dev extras) and run the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
TEXT ?= The birch canoe slid on the smooth planks.
PROMPT ?= examples/prompt.wav
OUT ?= out.wav

.PHONY: speak test test-fast setup demo bench

speak: $(VENV)/.installed
	$(VENV)/bin/ns2-tts --text "$(TEXT)" --prompt "$(PROMPT)" --out "$(OUT)"

# one pytest worker per core (at most 4), each test file on one worker: its module fixtures (a trained chain of
# models, a loaded pipeline) are built once; the tests themselves run torch on one thread (tests/conftest.py)
PYTEST := $(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile

test: $(VENV)/.installed
	$(PYTEST) tests

# skip the slow end-to-end tests (CI runs them)
test-fast: $(VENV)/.installed
	$(PYTEST) -m "not slow" tests

demo: $(VENV)/.installed
	$(PY) demo/app.py

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_startup.py
	$(PY) benchmarks/bench_threads.py
	$(PY) benchmarks/bench_long_form.py
	$(PY) benchmarks/bench_codec.py
	$(PY) benchmarks/bench_ns2.py
	$(PY) benchmarks/bench_training_input.py

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $@
