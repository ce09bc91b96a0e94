# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/reenact: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: on CPU-only machines this is the CPU build; the project accepts any 2.x.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/reenact

demo: setup
	mkdir -p out
	$(BIN)/reenact drive samples/source.jpg samples/driver.mp4 -o out/demo.mp4 --overwrite --report out/demo.json

test: setup
	$(BIN)/python -m pytest -q

.PHONY: setup demo test
