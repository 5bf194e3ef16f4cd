# Two commands do the whole set-up on a fresh machine:
#   make lab    create .venv, install everything, open the course in JupyterLab
#   make test   create .venv, install everything, run every test (notebooks included)
# Instructor tools (run after editing a solution notebook):
#   make exercises   regenerate notebooks/exercises/ from the solutions
#   make colab       stamp the Colab badge and set-up cell (after changing the repository location in pyproject.toml)
#   make check       exit non-zero when a badge, set-up cell or exercise notebook is out of date
# Dependencies:
#   make test-oldest  the unit tests and one notebook with the lowest versions pyproject.toml admits (.venv-oldest)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

OLDEST_VENV ?= .venv-oldest
OLDEST_NOTEBOOK ?= notebooks/04_Cifar10Training.ipynb

.PHONY: install lab test test-oldest exercises colab check clean-venv

$(INSTALLED): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e ".[test,lab]"
	touch $(INSTALLED)

install: $(INSTALLED)

lab: install
	$(BIN)/jupyter lab notebooks

test: install
	$(BIN)/python -m pytest

colab: install
	$(BIN)/python -m tools.colab

exercises: install
	$(BIN)/python -m tools.exercises

check: install
	$(BIN)/python -m tools.colab --check
	$(BIN)/python -m tools.exercises --check

$(OLDEST_VENV)/.installed: constraints-oldest.txt pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet -c constraints-oldest.txt -e ".[test]"
	touch $@

test-oldest: $(OLDEST_VENV)/.installed
	$(OLDEST_VENV)/bin/python -m pytest tests $(OLDEST_NOTEBOOK)

clean-venv:
	rm -rf $(VENV) $(OLDEST_VENV)
