# Set-up and everyday commands. `make test` and `make demo` work on a fresh machine: they create .venv,
# install torch (a CPU build where there is no NVIDIA GPU) and this package with its dev extras.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# Without an NVIDIA driver, pin the CPU build that pip finds locally instead of a multi-GB CUDA build.
TORCH_SPEC := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo "torch" || echo "torch==$(TORCH_VERSION)")
STAMP := $(VENV)/.installed
# Debian's Chromium drives the demo app's browser test (Playwright cannot download its own browsers offline).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# The browser test's screenshot of the demo app lands here.
export DDRNET_TEST_ARTIFACTS ?= $(abspath outputs/test-artifacts)

.PHONY: install browser test lint wheel-check demo benchmark gpu-check clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

browser:
	command -v chromium >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium)

test: install browser wheel-check
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m pytest -q tests

# The built wheel, installed non-editable into a fresh environment, runs every script (what Docker users get).
wheel-check: install
	bash .ci/check_wheel_install.sh $(BIN)/python "$(TORCH_SPEC)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/ruff format --check modeling_ddrnet ddrnet_toolkit dataset_builders scripts tests

demo: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python scripts/demo.py

benchmark: install
	$(BIN)/python scripts/benchmark.py --device auto

# The GPU check (README, "GPU check"); QUICK=1 runs it at tiny sizes, GPU_CHECK_ARGS adds options. It does not
# install anything: on a machine without .venv (a GPU machine with its own torch) it runs $(PYTHON) on this checkout.
GPU_CHECK_PYTHON := $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-check:
	PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" $(GPU_CHECK_PYTHON) scripts/gpu_check.py \
		$(if $(QUICK),--quick) $(GPU_CHECK_ARGS)

clean:
	rm -rf outputs build .pytest_cache
