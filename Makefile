# Two commands do the whole set-up on a fresh machine:
#   make lab    create .venv, install everything, open the course in JupyterLab
#   make test   create .venv, install everything, run every test (notebooks included)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install lab test clean-venv

$(INSTALLED): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(INSTALLED)

install: $(INSTALLED)

lab: install
	$(BIN)/jupyter lab notebooks

test: install
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
