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

# A local PACS (Debian's orthanc + orthanc-dicomweb) on 127.0.0.1, for trying DICOMweb and
# for the end-to-end tests: `make pacs` prints MEDLENS_TEST_PACS=...; `make pacs-stop` ends it.
PACS_STATE ?= /tmp/medlens-pacs
.PHONY: pacs pacs-stop

pacs:
	PYTHONPATH=src $(PYTHON) -m medlens.hospital.pacs start --state $(PACS_STATE)

pacs-stop:
	PYTHONPATH=src $(PYTHON) -m medlens.hospital.pacs stop --state $(PACS_STATE)
