# segbench: two commands do everything on a fresh Linux machine with Python 3.11.
#   make run    install (venv, pinned) and run the default study end to end, with the HTML report
#   make test   install and run the test suite (lint, format, workflow lint, pytest)
#   make quick  install and run paper 000's Drosophila 1/8-data cell on real data (~1 h, 2 CPU cores)
# CONFIG may contain spaces: make run CONFIG="my studies/a study.yaml" (every use is quoted).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
CORES ?= all
CONFIG ?= config/config.yaml
PYTEST_ARGS ?=
ESTIMATE_ARGS ?=

.PHONY: venv check-config run quick dry-run estimate test lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/lock.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $@

# Check a study the way the workflow does, naming file, line and key of any error.
check-config: venv
	$(PY) -m segbench.config "$(CONFIG)"

run: venv check-config
	$(SNAKEMAKE) --cores $(CORES) --configfile "$(CONFIG)"
	$(SNAKEMAKE) --cores 1 --configfile "$(CONFIG)" --report results/report.html
	@echo "Report: results/report.html  Tables: results/tables/  Figures: results/figures/"

# Paper 000 on real data on a laptop (config/studies/paper000_quick.yaml, docs/studies.md).
quick:
	$(MAKE) run CONFIG=config/studies/paper000_quick.yaml

dry-run: venv check-config
	$(SNAKEMAKE) --cores $(CORES) --configfile "$(CONFIG)" --dry-run

# Runs, jobs and expected GPU-hours of a study before running it.
estimate: venv check-config
	$(PY) scripts/estimate.py --configfile "$(CONFIG)" $(ESTIMATE_ARGS)

lint: venv
	$(VENV)/bin/ruff check src scripts tests benchmarks
	$(VENV)/bin/snakefmt --check Snakefile workflow
	$(SNAKEMAKE) --lint --configfile .test/config.yaml

test: venv lint
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf results logs .snakemake data/prepared/*.npz data/prepared/*.json
