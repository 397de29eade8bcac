# `make demo` and `make test` do all the set-up on a fresh machine: each creates .venv
# if it is missing and installs what it needs (stamps make a second run fast).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

INTEROP_VENV ?= .venv-interop

.PHONY: demo test test-browser test-interop test-load bench-pipeline bench-transfer bench-speed bench-segmentation bench-segmentation-speed bench-detection bench-detection-speed test-slow lint format clean data-deps docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(VENV)/.installed $@

# Fashion-MNIST from Debian's package when we may install it (as root); otherwise resnetkit
# finds it in $$RESNETKIT_DATA or the cache, or downloads it from the official URLs.
FASHION_MNIST := /usr/share/datasets/fashion-mnist
data-deps:
	@if [ ! -d $(FASHION_MNIST) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }; \
	fi

demo: $(VENV)/.installed data-deps
	$(BIN)/resnetkit data inspect fashion-mnist
	$(BIN)/resnetkit models
	$(BIN)/resnetkit summary seed --input-size 224 224 3 --num-classes 10
	$(BIN)/resnetkit train --recipe fashion_mnist_fast \
		--run-dir runs/demo-$$(date +%Y%m%d-%H%M%S)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two pytest workers (pytest-xdist), each test file on one worker so that module fixtures are
# built once (docs/README.md has the measured times). `make test PYTEST_WORKERS=0` runs in
# one process.
PYTEST_WORKERS ?= 2
test: lint data-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# Slow tier: the deepest variants of tests whose shallower cases run by default.
test-slow: $(VENV)/.installed-dev data-deps
	$(BIN)/python -m pytest -m slow -q

# Browser tier: report.html in headless Chromium (Debian's chromium + chromium-driver, which
# this installs when run as root; otherwise install them first).
$(VENV)/.installed-browser: pyproject.toml | $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,browser]'
	touch $@

test-browser: $(VENV)/.installed-browser data-deps
	@if ! command -v chromedriver >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	fi
	$(BIN)/python -m pytest -m browser -q tests/test_report_browser.py

# Load tier: `resnetkit serve` under 2,000 requests from 16 clients, batching on and off;
# writes benchmarks/results/serve_load.json.
test-load: $(VENV)/.installed-dev data-deps
	$(BIN)/python -m pytest -m load -s -q tests/test_serve_load.py

# Heavier tier: compares with torchvision and timm (installs PyTorch, several GB, in its own
# venv).
$(INTEROP_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[interop]'
	touch $@

test-interop: $(INTEROP_VENV)/.installed
	$(INTEROP_VENV)/bin/python -m pytest -m interop -s -q tests/test_interop_torch.py

bench-pipeline: $(INTEROP_VENV)/.installed data-deps
	$(INTEROP_VENV)/bin/python benchmarks/pipeline.py

# Speed against keras.applications and PyTorch eager; writes benchmarks/results/speed-<isa>.json
# and the speed table of docs/speed.md.
$(INTEROP_VENV)/.installed-bench: pyproject.toml | $(INTEROP_VENV)/.installed
	$(INTEROP_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[interop,export]'
	touch $@

bench-speed: $(INTEROP_VENV)/.installed-bench
	$(INTEROP_VENV)/bin/python benchmarks/speed.py

bench-transfer: $(VENV)/.installed data-deps
	$(BIN)/python benchmarks/transfer.py

# Segmentation on scenes built from Fashion-MNIST: output stride, fine-tuning against scratch.
bench-segmentation: $(VENV)/.installed data-deps
	$(BIN)/python benchmarks/segmentation.py

# keras-hub's declared requirements pull in the full tensorflow beside tensorflow-cpu (and
# tensorflow-text); its image models import with these few.
$(INTEROP_VENV)/.installed-keras-hub: | $(INTEROP_VENV)/.installed
	$(INTEROP_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		keras-hub==0.32.0 regex tokenizers sentencepiece kagglehub kagglesdk==0.1.28
	touch $@

# Segmentation training speed against torchvision's and keras-hub's DeepLab.
bench-segmentation-speed: $(INTEROP_VENV)/.installed-keras-hub
	$(INTEROP_VENV)/bin/python benchmarks/segmentation_speed.py

# Detection on box scenes built from Fashion-MNIST: backbones, fine-tuning against scratch.
bench-detection: $(VENV)/.installed data-deps
	$(BIN)/python benchmarks/detection.py

# Detection training and exported inference speed against torchvision's and keras-hub's RetinaNet.
bench-detection-speed: $(INTEROP_VENV)/.installed-bench $(INTEROP_VENV)/.installed-keras-hub data-deps
	$(INTEROP_VENV)/bin/python benchmarks/detection_speed.py

# The tables of measured figures in README.md and docs/, regenerated from benchmarks/results.
docs: $(VENV)/.installed
	$(BIN)/python benchmarks/tables.py

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
