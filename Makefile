# Two entry points: `make quickstart` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install system-deps quickstart test test-all lint bench

# Tesseract with its English, Chinese, Japanese, Korean and Hindi packs, the Noto/DejaVu
# fonts the text suite renders with, chromium (the HTML report's headless-browser test) and pdflatex with booktabs (the paper table compiles)
# (Debian/Ubuntu; skipped when already present).
SYSTEM_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-jpn tesseract-ocr-kor tesseract-ocr-hin \
	fonts-noto-core fonts-noto-cjk fonts-dejavu-core chromium texlive-latex-base texlive-latex-recommended
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

system-deps:
	@if dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then echo "system packages present"; \
	else $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch and torchvision must come as a matched pair; the check fails early if they do not.
install: $(BIN)/python system-deps
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	$(BIN)/python -c "import torch, torchvision.ops; print(\"torch\", torch.__version__, \"torchvision\", torchvision.__version__)"

quickstart: install
	$(BIN)/vtbench run recipes/quickstart.yaml --out results/quickstart
	$(BIN)/vtbench leaderboard results/quickstart --format md --out results/quickstart/leaderboard.md

lint: install
	$(BIN)/ruff check vtbench tests examples benchmarks
	$(BIN)/ruff format --check vtbench tests examples benchmarks

# `make test`: lint and every test but the slow ones (the README's commands as processes);
# `make test-all`: those too.
test: lint
	$(BIN)/python -m pytest -m "not slow" --durations=15

test-all: lint
	$(BIN)/python -m pytest --durations=15

bench: install
	$(BIN)/python benchmarks/pipeline_overhead.py
	$(BIN)/python benchmarks/vtbench_flow.py
	$(BIN)/python benchmarks/finish_step.py
	$(BIN)/python benchmarks/distributed_ocr.py
	$(BIN)/python benchmarks/memory_scaling.py
	$(BIN)/python benchmarks/quickstart_time.py
	$(BIN)/python benchmarks/reference_cache.py
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/ocr_speed.py
	$(BIN)/python benchmarks/tokenizer_speed.py
