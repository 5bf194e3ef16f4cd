"""`make lab` for real, with a fake venv whose `jupyter` prints what it was started with: the venv's bin/ first on
PATH (kernels inherit it: `%tensorboard` finds the venv's tensorboard), --allow-root as root, --no-browser headless."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.notebook_io import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which('make') is None or os.name == 'nt', reason='needs make and a POSIX shell')

# Prints its arguments, PATH and which tensorboard a kernel started from it would run
FAKE_JUPYTER = '''#!/bin/sh
printf 'ARGS=%s\\n' "$*"
printf 'PATH=%s\\n' "$PATH"
printf 'TENSORBOARD=%s\\n' "$(command -v tensorboard)"
'''
DISPLAY_VARS = ('DISPLAY', 'WAYLAND_DISPLAY', 'BROWSER')
ROOT_NOTE = 'Running as root: passing --allow-root'
HEADLESS_NOTE = 'No display: passing --no-browser; open the URL JupyterLab prints below.'


def _MakeFakeVenv(venvDir: Path) -> Path:
    binDir = venvDir / 'bin'
    binDir.mkdir(parents=True)
    for name, text in [('jupyter', FAKE_JUPYTER), ('tensorboard', '#!/bin/sh\nexit 0\n')]:
        (binDir / name).write_text(text)
        (binDir / name).chmod(0o755)
    (venvDir / '.installed').touch()
    return binDir


@pytest.fixture
def labDir(tmp_path: Path) -> Path:
    """A copy of the Makefile with its install inputs, older than a pre-touched `.venv/.installed`."""
    shutil.copy(REPO_ROOT / 'Makefile', tmp_path / 'Makefile')
    for name in ('requirements.txt', 'pyproject.toml'):
        (tmp_path / name).write_text('')
        os.utime(tmp_path / name, (1_000_000_000, 1_000_000_000))  #<! Long before .installed: nothing to install
    _MakeFakeVenv(tmp_path / '.venv')
    return tmp_path


def _Env(**dExtra: str) -> dict[str, str]:
    """This process' environment without a display and without the make variables of an enclosing `make test`."""
    dEnv = {key: val for key, val in os.environ.items()
            if key not in {*DISPLAY_VARS, 'MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'IS_ROOT', 'HEADLESS', 'VENV'}}
    return dEnv | dExtra


def _RunLab(labDir: Path, *lVars: str, dEnv: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Run `make lab`; return its output lines and the fake jupyter's ARGS / PATH / TENSORBOARD."""
    oProc = subprocess.run(['make', '-C', str(labDir), '--no-print-directory', 'lab', *lVars],
                           env=_Env() if dEnv is None else dEnv, capture_output=True, text=True, timeout=60)
    assert oProc.returncode == 0, oProc.stdout + oProc.stderr
    lLines = oProc.stdout.splitlines()
    assert not any('pip' in line for line in lLines), 'nothing must be installed: .installed is up to date'
    dOut = dict(line.split('=', 1) for line in lLines if line.split('=', 1)[0] in {'ARGS', 'PATH', 'TENSORBOARD'})
    return lLines, dOut


def test_lab_puts_the_venv_bin_first_on_path(labDir: Path) -> None:
    _, dOut = _RunLab(labDir)
    binDir = (labDir / '.venv' / 'bin').resolve()
    assert dOut['PATH'].split(':')[0] == str(binDir)  #<! Absolute, although VENV is the relative `.venv`
    assert dOut['TENSORBOARD'] == str(binDir / 'tensorboard')
    assert dOut['ARGS'].split()[0] == 'lab' and dOut['ARGS'].split()[-1] == 'notebooks'


def test_lab_with_another_venv(labDir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    otherVenv = tmp_path_factory.mktemp('elsewhere') / 'venv'
    binDir = _MakeFakeVenv(otherVenv)
    _, dOut = _RunLab(labDir, f'VENV={otherVenv}')
    assert dOut['PATH'].split(':')[0] == str(binDir)
    assert dOut['TENSORBOARD'] == str(binDir / 'tensorboard')


def test_lab_detects_root(labDir: Path) -> None:
    lLines, dOut = _RunLab(labDir)
    isRoot = os.geteuid() == 0
    assert ('--allow-root' in dOut['ARGS'].split()) == isRoot
    assert any(ROOT_NOTE in line for line in lLines) == isRoot


@pytest.mark.parametrize('isRoot', ['0', '1'])
def test_lab_allow_root_exactly_as_root(labDir: Path, isRoot: str) -> None:
    lLines, dOut = _RunLab(labDir, f'IS_ROOT={isRoot}')
    assert dOut['ARGS'].split().count('--allow-root') == int(isRoot)
    assert any(ROOT_NOTE in line for line in lLines) == (isRoot == '1')


@pytest.mark.skipif(sys.platform == 'darwin', reason='macOS always has a browser to open')
def test_lab_without_a_display_does_not_open_a_browser(labDir: Path) -> None:
    lLines, dOut = _RunLab(labDir)
    assert dOut['ARGS'].split().count('--no-browser') == 1
    assert HEADLESS_NOTE in lLines


@pytest.mark.parametrize('displayVar', DISPLAY_VARS)
def test_lab_with_a_display_opens_the_browser(labDir: Path, displayVar: str) -> None:
    lLines, dOut = _RunLab(labDir, dEnv=_Env(**{displayVar: ':0' if 'DISPLAY' in displayVar else 'firefox'}))
    assert '--no-browser' not in dOut['ARGS'].split()
    assert HEADLESS_NOTE not in lLines


def test_headless_can_be_set_by_hand(labDir: Path) -> None:
    _, dOut = _RunLab(labDir, 'HEADLESS=0')
    assert '--no-browser' not in dOut['ARGS'].split()
    _, dOut = _RunLab(labDir, 'HEADLESS=1', dEnv=_Env(DISPLAY=':0'))
    assert '--no-browser' in dOut['ARGS'].split()


def test_other_targets_are_unchanged(labDir: Path) -> None:
    oProc = subprocess.run(['make', '-C', str(labDir), '--no-print-directory', '-n', 'test', 'check'],
                           env=_Env(), capture_output=True, text=True, timeout=60)
    assert oProc.returncode == 0, oProc.stderr
    executedDir, buildDir = labDir / 'build' / 'executed', labDir / 'build'
    assert oProc.stdout.splitlines() == [
        f'COURSE_EXECUTED_DIR={executedDir} .venv/bin/python -m pytest',  #<! Every test; the executed lessons kept
        f'.venv/bin/python -m tools.site --executed {executedDir}',  #<! The site from those same executions
        f'COURSE_SITE_REQUIRED=1 .venv/bin/python -m pytest tests/test_site.py -n 0 '
        f'--junitxml={buildDir}/test-report-site.xml',  #<! Then checked in a browser
        '.venv/bin/python -m tools.colab --check', '.venv/bin/python -m tools.exercises --check']


def test_site_full_builds_in_full_mode(labDir: Path) -> None:
    oProc = subprocess.run(['make', '-C', str(labDir), '--no-print-directory', '-n', 'site', 'FULL=1'],
                           env=_Env(), capture_output=True, text=True, timeout=60)
    assert oProc.returncode == 0, oProc.stderr
    assert oProc.stdout.splitlines() == [
        f'.venv/bin/python -m tools.site --executed {labDir / "build" / "executed"} --full']
