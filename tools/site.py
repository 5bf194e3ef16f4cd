"""Build the course's website with Jupyter Book 1 (Sphinx, MyST-NB, sphinx-book-theme): the README as the front
page, every lesson with its outputs, the exercise versions, and an API reference of ``course_utils``.

    python -m tools.site          # quick-mode outputs: the executed copies nbmake left in build/executed (make test
                                  # writes them), else Jupyter Book executes the lesson (jupyter-cache, quick mode)
    python -m tools.site --full   # full-mode outputs: Jupyter Book executes every lesson in full mode, cached in
                                  # build/jupyter_cache, so an unchanged lesson is not run again

The book's source is generated into build/site-src (never edit it), the site into build/site/_build/html, and
build/site/summary.json says what was built (pages, images per lesson page, the build time).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from tools.colab import ReadRepoLocation
from tools.notebook_io import NOTEBOOKS_DIR, REPO_ROOT, LessonNotebooks, ReadNotebook

BUILD_DIR = REPO_ROOT / 'build'
EXECUTED_DIR = BUILD_DIR / 'executed'  #<! nbmake's executed copies (the root conftest.py keeps them under make test)
SITE_SRC = BUILD_DIR / 'site-src'
SITE_OUT = BUILD_DIR / 'site'
SITE_HTML = SITE_OUT / '_build' / 'html'
CACHE_DIR = BUILD_DIR / 'jupyter_cache'
PROVENANCE_KEY = 'course_provenance'  #<! Notebook metadata: how its outputs were produced
API_MODULES = ('config', 'data', 'fast_data', 'training', 'models', 'loops', 'metrics', 'plotting', 'convolution',
               'visualization', 'attribution', 'statistics', 'robustness', 'segmentation', 'shapes', 'speed', 'files',
               'progress')
_WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
_COLAB_SETUP = '# Set-up on Google Colab'  #<! The first line of the set-up cell tools/colab.py stamps
_IMAGE_LINK = re.compile(r'\[!\[(?P<alt>[^\]]*)\]\([^)]*\)\]\((?P<url>[^)]*)\)')  #<! [![alt](image)](url)
_BADGE = re.compile(r'\[!\[Open In Colab\]\([^)]*\)\]\((?P<url>[^)]*)\)')
_README_LESSON = re.compile(r'`notebooks/(?P<name>\d\d_\w+)\.ipynb`')
_README_MODULE = re.compile(r'\| `course_utils\.(?P<module>\w+)` \|')
# A link to a repository file the site does not hold (e.g. a benchmark's results)
_REPO_FILE_LINK = re.compile(r'\]\((?P<path>(?:benchmarks|tools|tests|course_utils|\.github)/[^)\s]+)\)')


def RepositoryUrl() -> str:
    """The repository's address, from pyproject.toml (the one place that says where the course lives)."""
    import tomllib
    return tomllib.loads((REPO_ROOT / 'pyproject.toml').read_text(encoding='utf-8'))['project']['urls']['Repository']


def Provenance(mode: str) -> dict[str, str]:
    """How outputs made here and now are produced: the mode, the device, the versions and the date."""
    import torch

    import course_utils
    return {'mode': mode, 'device': str(course_utils.GetDevice()), 'torch': torch.__version__,
            'course_utils': course_utils.__version__, 'python': platform.python_version(),
            'date': datetime.date.today().isoformat()}


def ProvenanceText(dProvenance: dict[str, str]) -> str:
    return (f"Outputs on this page: **{dProvenance['mode']} mode**, on `{dProvenance['device']}`, torch "
            f"{dProvenance['torch']}, course_utils {dProvenance['course_utils']}, Python {dProvenance['python']}, "
            f"{dProvenance['date']}.")


def KeepExecutedNotebooks(executedDir: Path) -> None:
    """Make nbmake also write each lesson it executed without an error, outputs included, to ``executedDir`` (never
    into notebooks/: committed notebooks stay without outputs), with how the outputs were made in its metadata. The
    website is built from these copies (Build), so CI executes every lesson once."""
    from nbmake import nb_run

    hExecute = nb_run.NotebookRun.execute
    if getattr(hExecute, 'keepsCopies', False):
        return

    def Execute(self, *args, **kwargs):
        oResult = hExecute(self, *args, **kwargs)
        notebookPath = Path(self.filename)
        if oResult.error is None and notebookPath.parent.name == 'notebooks' and notebookPath.name[:2].isdigit():
            oNotebook = oResult.nb
            oNotebook.metadata[PROVENANCE_KEY] = Provenance('quick' if os.environ.get('COURSE_QUICK') else 'full')
            executedDir.mkdir(parents=True, exist_ok=True)
            tmpPath = executedDir / f'{notebookPath.name}.tmp'
            nbformat.write(oNotebook, tmpPath)
            tmpPath.replace(executedDir / notebookPath.name)  #<! Atomic: the site never reads a half-written copy
        return oResult

    Execute.keepsCopies = True
    Execute.original = hExecute  #<! What nbmake runs without the copies
    nb_run.NotebookRun.execute = Execute


def StripWidgets(oNotebook: NotebookNode) -> NotebookNode:
    """Progress-bar widgets need a kernel and scripts from the internet: keep their plain-text form only."""
    oNotebook = copy.deepcopy(oNotebook)
    oNotebook.metadata.pop('widgets', None)
    for oCell in oNotebook.cells:
        for oOutput in oCell.get('outputs', []):
            if _WIDGET_MIME in oOutput.get('data', {}):
                del oOutput['data'][_WIDGET_MIME]
        if oCell.cell_type == 'code':
            oCell.outputs = [o for o in oCell.outputs if o.get('output_type') not in ('display_data',)
                             or o.get('data')]
    return oNotebook


def LinksCell(oNotebook: NotebookNode, lLinks: list[str], provenance: str) -> NotebookNode:
    """The page's links under its title: the Colab badge as a text link (an image from the internet would not load
    offline), the page's links and where its outputs come from. The Colab set-up cell does nothing on the web: gone."""
    oNotebook = copy.deepcopy(oNotebook)
    oMatch = None
    if oNotebook.cells and oNotebook.cells[0].cell_type == 'markdown':
        oMatch = _BADGE.search(oNotebook.cells[0].source)
    lCells = oNotebook.cells[1:] if oMatch else list(oNotebook.cells)
    lCells = [oCell for oCell in lCells if not (oCell.cell_type == 'code' and oCell.source.startswith(_COLAB_SETUP))]
    lParts = ([f'[Open in Colab]({oMatch["url"]})'] if oMatch else []) + lLinks
    oLinks = nbformat.v4.new_markdown_cell(' · '.join(lParts) + (f'\n\n{provenance}' if provenance else ''),
                                           id='site-links')
    idxTitle = next((ii for ii, oCell in enumerate(lCells) if oCell.cell_type == 'markdown'
                     and oCell.source.lstrip().startswith('# ')), -1)
    oNotebook.cells = lCells[:idxTitle + 1] + [oLinks] + lCells[idxTitle + 1:]
    return oNotebook


def _SetExecution(oNotebook: NotebookNode, mode: str) -> NotebookNode:
    oNotebook.metadata['mystnb'] = {'execution_mode': mode}
    return oNotebook


def ReadmePage(readme: str) -> str:
    """The README as the front page: lesson names link to their pages, module names to their API pages."""
    readme = _README_LESSON.sub(lambda m: f'[{m["name"]}](lessons/{m["name"]}.ipynb)', readme)
    readme = _README_MODULE.sub(lambda m: f'| [`course_utils.{m["module"]}`](api/{m["module"]}.md) |', readme)
    readme = _IMAGE_LINK.sub(lambda m: f'[{m["alt"]} status]({m["url"]})', readme)  #<! Badges: images from the web
    oRepo = RepositoryUrl()
    # A repository file the site does not hold (a benchmark's results): its page in the repository
    readme = _REPO_FILE_LINK.sub(lambda m: f']({oRepo}/blob/{ReadRepoLocation().ref}/{m["path"]})', readme)
    siteNote = (f'```{{note}}\nThis is the website of the course: every lesson with its outputs, the exercise versions '
                f'and the API reference. The notebooks themselves live in the [repository]({oRepo}).\n```\n\n')
    lLines = readme.split('\n')
    return '\n'.join(lLines[:1]) + '\n\n' + siteNote + '\n'.join(lLines[1:])


def ApiPages() -> dict[str, str]:
    """One page per module of course_utils (autodoc from the docstrings), and an index page."""
    dPages = {'index.md': '# API Reference: `course_utils`\n\n' + '\n'.join(
        f'* [`course_utils.{name}`]({name}.md)' for name in API_MODULES) + '\n\n'
        'Every name is also importable from the package itself: `from course_utils import TrainModel`.\n'}
    for name in API_MODULES:
        dPages[f'{name}.md'] = (f'# `course_utils.{name}`\n\n```{{eval-rst}}\n.. automodule:: course_utils.{name}\n'
                                '   :members:\n   :show-inheritance:\n```\n')
    return dPages


def ConfigYaml(isFull: bool, repoUrl: str) -> str:
    # Execution: only the lessons without an executed copy run, through jupyter-cache (skipped when unchanged)
    return f"""title: CNNs with PyTorch
author: The course's authors
copyright: "{datetime.date.today().year}"
only_build_toc_files: true
exclude_patterns: [downloads/*]
execute:
  execute_notebooks: cache
  cache: {CACHE_DIR / ('full' if isFull else 'quick')}
  timeout: {3600 if isFull else 600}
  allow_errors: false
  stderr_output: show
repository:
  url: {repoUrl}
  branch: main
html:
  use_repository_button: false
  use_issues_button: false
  use_edit_page_button: false
launch_buttons:
  thebe: false
  binderhub_url: ""
  colab_url: ""
  jupyterhub_url: ""
sphinx:
  extra_extensions:
    - sphinx.ext.autodoc
    - sphinx.ext.napoleon
    - sphinx-mathjax-offline  # the module is named with hyphens
  config:
    autodoc_member_order: bysource
    autodoc_typehints: signature
    autodoc_inherit_docstrings: false  # torchvision's transform docstrings link to its own gallery
    html_show_sourcelink: false
    nb_merge_streams: true
    suppress_warnings: ["mystnb.unknown_mime_type", "myst.header"]
"""


def TocYaml(lLessons: list[str], lExercises: list[str]) -> str:
    lLines = ['format: jb-book', 'root: intro', 'parts:', '  - caption: Lessons', '    chapters:']
    lLines += [f'      - file: lessons/{name}' for name in lLessons]
    lLines += ['  - caption: Exercises', '    chapters:'] + [f'      - file: exercises/{name}' for name in lExercises]
    lLines += ['  - caption: API Reference', '    chapters:', '      - file: api/index', '        sections:']
    lLines += [f'          - file: api/{name}' for name in API_MODULES]
    return '\n'.join(lLines) + '\n'


def AssembleSource(isFull: bool, executedDir: Path = EXECUTED_DIR, srcDir: Path = SITE_SRC) -> dict[str, str]:
    """Write the book's source. Returns, per lesson, where its outputs come from ('executed copy' / 'Jupyter Book')."""
    if srcDir.exists():
        shutil.rmtree(srcDir)  #<! Generated, never edited: rebuilt from the notebooks every time
    for subDir in ('lessons', 'exercises', 'api', 'downloads'):
        (srcDir / subDir).mkdir(parents=True)
    repoUrl = RepositoryUrl()
    (srcDir / 'intro.md').write_text(ReadmePage((REPO_ROOT / 'README.md').read_text(encoding='utf-8')), 'utf-8')
    for fileName, text in ApiPages().items():
        (srcDir / 'api' / fileName).write_text(text, encoding='utf-8')
    dSources, lLessons, lExercises = {}, [], []
    modeName = 'full' if isFull else 'quick'
    for lessonPath in LessonNotebooks(NOTEBOOKS_DIR):
        name = lessonPath.stem
        lLessons.append(name)
        shutil.copy(lessonPath, srcDir / 'downloads' / lessonPath.name)
        executedPath = executedDir / lessonPath.name
        if not isFull and executedPath.is_file():
            oNotebook = _SetExecution(StripWidgets(ReadNotebook(executedPath)), 'off')
            dProvenance = oNotebook.metadata.get(PROVENANCE_KEY) or Provenance(modeName)
            dSources[name] = 'executed copy'
        else:
            oNotebook = _SetExecution(ReadNotebook(lessonPath), 'cache')
            dProvenance = Provenance(modeName)
            dSources[name] = 'Jupyter Book'
        lLinks = [f'{{download}}`Download the notebook <../downloads/{lessonPath.name}>`']
        exercisePath = NOTEBOOKS_DIR / 'exercises' / lessonPath.name
        if exercisePath.is_file():
            lLinks.append(f'[The exercise version](../exercises/{name}.ipynb)')
        nbformat.write(LinksCell(oNotebook, lLinks, ProvenanceText(dProvenance)), srcDir / 'lessons' / lessonPath.name)
        if exercisePath.is_file():
            lExercises.append(name)
            oExercise = _SetExecution(ReadNotebook(exercisePath), 'off')
            shutil.copy(exercisePath, srcDir / 'downloads' / f'{name}_exercise.ipynb')
            nbformat.write(LinksCell(oExercise, [f'[The lesson with its solutions](../lessons/{name}.ipynb)',
                                                 f'{{download}}`Download the exercises <../downloads/{name}_exercise.ipynb>`'],
                                     ''), srcDir / 'exercises' / lessonPath.name)
    (srcDir / '_config.yml').write_text(ConfigYaml(isFull, repoUrl), encoding='utf-8')
    (srcDir / '_toc.yml').write_text(TocYaml(lLessons, lExercises), encoding='utf-8')
    return dSources


_DROPPED_EXTENSIONS = ('sphinx_thebe', 'sphinx_comments')  #<! Both load scripts from the internet


def PatchSphinxConf(confPath: Path) -> None:
    """Drop the extensions that fetch scripts from the internet, start the theme in light mode (an unset mode logs
    a console error), and give the site a favicon (a browser asks for one)."""
    text = confPath.read_text(encoding='utf-8')
    for name in _DROPPED_EXTENSIONS:
        text = text.replace(f"'{name}', ", '')
    text += ("\nhtml_context = {'default_mode': 'light'}\n"
             "html_favicon = '_static/favicon.png'\n"
             "html_static_path = ['_static']\n")
    confPath.write_text(text, encoding='utf-8')
    (confPath.parent / '_static').mkdir(exist_ok=True)
    _WriteFavicon(confPath.parent / '_static' / 'favicon.png')


def _WriteFavicon(filePath: Path) -> None:
    """A 32 x 32 icon drawn here: a 3 x 3 kernel over a feature map (no file to fetch, none to commit)."""
    import numpy as np
    from PIL import Image
    mIcon = np.full((32, 32, 3), 255, dtype=np.uint8)
    mIcon[4:28, 4:28] = (40, 90, 160)
    mIcon[8:20, 8:20] = (240, 170, 40)
    Image.fromarray(mIcon).save(filePath)


def CountFigures(notebookPath: Path) -> int:
    """The figures a notebook's outputs hold (PNG or SVG images)."""
    oNotebook = ReadNotebook(notebookPath)
    return sum(1 for oCell in oNotebook.cells for oOutput in oCell.get('outputs', [])
               if {'image/png', 'image/svg+xml'} & set(oOutput.get('data', {})))


def Build(isFull: bool, executedDir: Path = EXECUTED_DIR) -> dict:
    """Assemble the source, run Jupyter Book, write build/site/summary.json and return it."""
    timeStart = time.perf_counter()
    binDir = Path(sys.executable).parent
    lMissing = [name for name in ('jupyter-book', 'sphinx-build') if not (binDir / name).is_file()]
    if lMissing:
        raise SystemExit(f'{", ".join(lMissing)} not found in {binDir}: install the site extra '
                         '(pip install -e ".[site]"; make site does it).')
    dSources = AssembleSource(isFull, executedDir)
    dEnv = dict(os.environ)
    if isFull:
        dEnv.pop('COURSE_QUICK', None)
    else:
        dEnv['COURSE_QUICK'] = '1'
    dEnv.setdefault('MPLBACKEND', 'Agg')
    # Jupyter Book writes Sphinx's conf.py from _config.yml; Sphinx builds from it, without the scripts that would
    # fetch from the internet (Thebe), so that the site works offline and its pages log no console error
    oProc = subprocess.run([str(binDir / 'jupyter-book'), 'config', 'sphinx', str(SITE_SRC)], env=dEnv,
                           capture_output=True, text=True)
    if oProc.returncode != 0:
        raise SystemExit(f'jupyter-book config sphinx failed:\n{oProc.stdout[-4000:]}{oProc.stderr[-4000:]}')
    PatchSphinxConf(SITE_SRC / 'conf.py')
    if SITE_OUT.exists():
        shutil.rmtree(SITE_OUT)
    oProc = subprocess.run([str(binDir / 'sphinx-build'), '-b', 'html', '-d', str(SITE_OUT / '_build' / '.doctrees'),
                            str(SITE_SRC), str(SITE_HTML)], env=dEnv, capture_output=True, text=True)
    lWarnings = [line for line in (oProc.stdout + oProc.stderr).splitlines() if 'WARNING' in line or 'ERROR' in line]
    if oProc.returncode != 0 or not (SITE_HTML / 'index.html').is_file():
        sys.stderr.write(oProc.stdout[-6000:] + oProc.stderr[-6000:])
        raise SystemExit(f'sphinx-build failed (exit code {oProc.returncode}); its output is above.')
    # The front page is a bare redirect without a favicon link: the browser asks for /favicon.ico (a 404 otherwise)
    shutil.copy(SITE_SRC / '_static' / 'favicon.png', SITE_HTML / 'favicon.ico')
    dSummary = {'mode': 'full' if isFull else 'quick', 'seconds': round(time.perf_counter() - timeStart, 1),
                'pages': len(list(SITE_HTML.rglob('*.html'))), 'sources': dSources,
                'figures': {name: CountFigures(SITE_OUT / '_build' / 'jupyter_execute' / 'lessons' / f'{name}.ipynb')
                            if (SITE_OUT / '_build' / 'jupyter_execute' / 'lessons' / f'{name}.ipynb').is_file()
                            else CountFigures(SITE_SRC / 'lessons' / f'{name}.ipynb') for name in dSources},
                'warnings': lWarnings}
    (SITE_OUT / 'summary.json').write_text(json.dumps(dSummary, indent=1), encoding='utf-8')
    return dSummary


def main(lArgs: list[str] | None = None) -> int:
    oParser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    oParser.add_argument('--full', action='store_true', help='full-mode outputs, executed (and cached) by Jupyter Book')
    oParser.add_argument('--executed', type=Path, default=EXECUTED_DIR, help='folder of executed lesson notebooks')
    oArgs = oParser.parse_args(lArgs)
    dSummary = Build(oArgs.full, oArgs.executed)
    print(f"Built {dSummary['pages']} pages in {dSummary['seconds']} s ({dSummary['mode']} mode): "
          f"{SITE_HTML / 'index.html'}")
    for name, source in dSummary['sources'].items():
        print(f"  {name}: outputs from the {source}, {dSummary['figures'][name]} figures")
    if dSummary['warnings']:
        print(f"{len(dSummary['warnings'])} warnings, e.g. {dSummary['warnings'][0]}")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
