# The README's two quickstart commands, and a few conveniences.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: demo test install install-dev lint

install:
	$(PIP) install -e .

install-dev:
	$(PIP) install -e ".[dev]"

demo: install
	medlens demo

test: install-dev
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check src tests benchmarks
