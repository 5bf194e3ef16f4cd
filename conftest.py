"""Root conftest: loaded for every pytest run of the repository, notebooks alone included (``pytest notebooks/...``).

With ``COURSE_EXECUTED_DIR`` set (``make test`` sets it), nbmake's executed lessons are kept there for the website.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

EXECUTED_DIR_ENV = 'COURSE_EXECUTED_DIR'  #<! Set (by make test): nbmake's executed lessons are kept there for the site


def pytest_configure(config: pytest.Config) -> None:
    executedDir = os.environ.get(EXECUTED_DIR_ENV, '')
    if executedDir:
        from tools.site import KeepExecutedNotebooks
        KeepExecutedNotebooks(Path(executedDir))
