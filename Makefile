# Two commands do the whole set-up on a fresh machine:
#   make lab    create .venv, install everything, open the course in JupyterLab
#   make test   create .venv, install everything, run every test (notebooks included)
# Instructor tools (run after editing a solution notebook):
#   make exercises   regenerate notebooks/exercises/ from the solutions
#   make colab       stamp the Colab badge, set-up cell and GPU runtime (after moving the repository: pyproject.toml)
#   make check       exit non-zero when a badge, set-up cell, GPU runtime or exercise notebook is out of date
#   make grade [GRADE_PATHS=folder-or-notebooks]  run exercise notebooks (quick mode), report each exercise
# The website (Jupyter Book 1), in build/site/_build/html/index.html:
#   make site          from the lessons make test executed (build/executed), executing the others (quick mode)
#   make site FULL=1   full-mode outputs, executed by Jupyter Book and cached (an unchanged lesson is not run again)
# Dependencies:
#   make test-oldest  the unit tests and one notebook with the lowest versions pyproject.toml admits (.venv-oldest)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# `make lab` on a cloud VM or in a container: detected, or set on the command line (make lab IS_ROOT=0 HEADLESS=0).
# IS_ROOT=1 passes --allow-root (JupyterLab refuses root without it). HEADLESS=1 passes --no-browser: Linux (and any
# system but macOS / Windows shells) with no $DISPLAY, $WAYLAND_DISPLAY or $BROWSER has no browser to open.
IS_ROOT ?= $(shell [ "$$(id -u)" = 0 ] && echo 1 || echo 0)
HEADLESS ?= $(shell if uname -s | grep -qE '^(Darwin|MINGW|MSYS|CYGWIN)' || \
	[ -n "$$DISPLAY$$WAYLAND_DISPLAY$$BROWSER" ]; then echo 0; else echo 1; fi)
LAB_FLAGS = $(if $(filter 1,$(IS_ROOT)),--allow-root) $(if $(filter 1,$(HEADLESS)),--no-browser)

GRADE_PATHS ?= notebooks/exercises

OLDEST_VENV ?= .venv-oldest
OLDEST_NOTEBOOK ?= notebooks/04_Cifar10Training.ipynb

EXECUTED_DIR := $(abspath build/executed)

.PHONY: install lab test test-oldest exercises colab check clean-venv grade site

$(INSTALLED): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e ".[test,lab,site]"
	touch $(INSTALLED)

install: $(INSTALLED)

# The venv's bin/ first on PATH: kernels inherit it, so `%tensorboard` and other venv executables are found
lab: install
	@if [ "$(IS_ROOT)" = 1 ]; then echo "Running as root: passing --allow-root to JupyterLab."; fi
	@if [ "$(HEADLESS)" = 1 ]; then echo "No display: passing --no-browser; open the URL JupyterLab prints below."; fi
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab $(LAB_FLAGS) notebooks

# Every test, notebooks included (nbmake keeps the executed lessons in build/executed), then the site built from those
# same executions and checked in a browser: CI executes every lesson once
test: install
	COURSE_EXECUTED_DIR=$(EXECUTED_DIR) $(BIN)/python -m pytest
	$(BIN)/python -m tools.site --executed $(EXECUTED_DIR)
	COURSE_SITE_REQUIRED=1 $(BIN)/python -m pytest tests/test_site.py -n 0 --junitxml=$(abspath build)/test-report-site.xml

site: install
	$(BIN)/python -m tools.site --executed $(EXECUTED_DIR) $(if $(filter 1,$(FULL)),--full)

colab: install
	$(BIN)/python -m tools.colab

exercises: install
	$(BIN)/python -m tools.exercises

grade: install
	$(BIN)/python -m tools.grade $(GRADE_PATHS)

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
