# Two entry points: `make quickstart` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install quickstart test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch and torchvision must come as a matched pair; the check fails early if they do not.
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	$(BIN)/python -c "import torch, torchvision.ops; print(\"torch\", torch.__version__, \"torchvision\", torchvision.__version__)"

quickstart: install
	$(BIN)/vtbench run recipes/quickstart.yaml --out results/quickstart
	$(BIN)/vtbench leaderboard results/quickstart --format md --out results/quickstart/leaderboard.md

lint: install
	$(BIN)/ruff check vtbench tests examples benchmarks
	$(BIN)/ruff format --check vtbench tests examples benchmarks

test: lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/pipeline_overhead.py
	$(BIN)/python benchmarks/memory_scaling.py
	$(BIN)/python benchmarks/quickstart_time.py
	$(BIN)/python benchmarks/reference_cache.py
	$(BIN)/python benchmarks/accuracy.py
