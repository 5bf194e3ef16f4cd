"""The website: how its source is assembled (always), and the built site in a real browser (after ``make site``).

The browser tests run in ``make test`` after the site is built from the lessons that the notebook tests executed
(``COURSE_SITE_REQUIRED=1``); there a missing site or browser fails. Elsewhere they skip. Chromium is Debian's
(``/usr/bin/chromium``, or ``$CHROMIUM_PATH``), driven headless by Playwright, offline.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import nbformat
import numpy as np
import pytest
from PIL import Image

from tools import site
from tools.notebook_io import REPO_ROOT, LessonNotebooks

LESSONS = [p.stem for p in LessonNotebooks(REPO_ROOT / 'notebooks')]
IS_REQUIRED = os.environ.get('COURSE_SITE_REQUIRED', '') == '1'
CHROMIUM = os.environ.get('CHROMIUM_PATH') or shutil.which('chromium') or '/usr/bin/chromium'
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync']
SCREENSHOT = site.BUILD_DIR / 'site-screenshot.png'


# ------------------------------------------------------------------------------------------------
# The source (no build, no browser)
# ------------------------------------------------------------------------------------------------
def test_readme_page_links_lessons_and_modules() -> None:
    page = site.ReadmePage((REPO_ROOT / 'README.md').read_text(encoding='utf-8'))
    for name in LESSONS:
        assert f'[{name}](lessons/{name}.ipynb)' in page
    assert '[`course_utils.training`](api/training.md)' in page
    assert '`notebooks/01_' not in page
    assert '[CI status](https://github.com/' in page and 'badge.svg' not in page  #<! No image from the internet
    # A repository file the site does not hold links to the repository, not to a page the site lacks
    assert '](benchmarks/results/cpu.md)' not in page
    assert f'({site.RepositoryUrl()}/blob/main/benchmarks/results/cpu.md)' in page


def test_api_pages_cover_every_module() -> None:
    setModules = {p.stem for p in (REPO_ROOT / 'course_utils').glob('*.py') if not p.stem.startswith('_')}
    assert set(site.API_MODULES) == setModules
    dPages = site.ApiPages()
    assert '.. automodule:: course_utils.training' in dPages['training.md']


def _TinyNotebook() -> nbformat.NotebookNode:
    oNotebook = nbformat.v4.new_notebook()
    oNotebook.cells = [nbformat.v4.new_markdown_cell('[![Open In Colab](https://colab/badge.svg)](https://colab/x.ipynb)'),
                       nbformat.v4.new_code_cell('# Set-up on Google Colab: installs course_utils\nimport sys'),
                       nbformat.v4.new_markdown_cell('# The Title\n\nGoal.'),
                       nbformat.v4.new_code_cell('print(1)')]
    oNotebook.cells[3].outputs = [
        nbformat.v4.new_output('display_data', data={site._WIDGET_MIME: {'model_id': 'a'}, 'text/plain': 'bar'}),
        nbformat.v4.new_output('display_data', data={site._WIDGET_MIME: {'model_id': 'b'}}),
        nbformat.v4.new_output('stream', text='1\n')]
    oNotebook.metadata['widgets'] = {'state': {}}
    return oNotebook


def test_widgets_are_dropped_and_their_text_kept() -> None:
    oNotebook = site.StripWidgets(_TinyNotebook())
    lOutputs = oNotebook.cells[3].outputs
    assert 'widgets' not in oNotebook.metadata
    assert [o.output_type for o in lOutputs] == ['display_data', 'stream']
    assert lOutputs[0].data == {'text/plain': 'bar'}


def test_the_badge_becomes_a_text_link_with_the_page_links() -> None:
    oNotebook = site.LinksCell(_TinyNotebook(), ['[Exercises](e.ipynb)'], 'Outputs: quick')
    assert [oCell.source.split('\n')[0] for oCell in oNotebook.cells] == [
        '# The Title', '[Open in Colab](https://colab/x.ipynb) · [Exercises](e.ipynb)', 'print(1)']  #<! Under the title
    assert oNotebook.cells[1].source.endswith('\n\nOutputs: quick') and 'badge.svg' not in json.dumps(oNotebook.cells)


def test_a_missing_site_extra_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(site, 'SITE_SRC', tmp_path / 'src')
    monkeypatch.setattr(site.sys, 'executable', str(tmp_path / 'bin' / 'python'))  #<! A venv without the tools
    with pytest.raises(SystemExit, match=r'jupyter-book, sphinx-build not found .*install the site extra'):
        site.Build(False, tmp_path / 'executed')


def test_toc_lists_every_page() -> None:
    toc = site.TocYaml(['01_A', '02_B'], ['01_A'])
    assert 'file: lessons/02_B' in toc and 'file: exercises/01_A' in toc and 'file: api/training' in toc


# ------------------------------------------------------------------------------------------------
# The built site, in a browser
# ------------------------------------------------------------------------------------------------
def _NeedSite() -> Path:
    if not IS_REQUIRED:
        pytest.skip('The site is tested by make test after it is built (or: make site, then '
                    'COURSE_SITE_REQUIRED=1 python -m pytest tests/test_site.py).')
    assert (site.SITE_HTML / 'index.html').is_file(), f'No built site at {site.SITE_HTML}: run make site first'
    return site.SITE_HTML


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lHrefs: list[str] = []
        self.setIds: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        dAttrs = dict(attrs)
        if dAttrs.get('id'):
            self.setIds.add(dAttrs['id'])
        for key in ('href', 'src'):
            if tag in ('a', 'img', 'link', 'script') and dAttrs.get(key):
                self.lHrefs.append(dAttrs[key])


def test_every_internal_link_resolves() -> None:
    htmlDir = _NeedSite()
    lBroken = []
    for pagePath in htmlDir.rglob('*.html'):
        if pagePath.relative_to(htmlDir).parts[0] in ('_static', '_sources'):
            continue  #<! The theme's own templates and assets, not pages
        oLinks = _Links()
        oLinks.feed(pagePath.read_text(encoding='utf-8', errors='replace'))
        for href in oLinks.lHrefs:
            oUrl = urlparse(href)
            if oUrl.scheme or oUrl.netloc or href.startswith(('#', 'mailto:', 'javascript:')):
                continue
            targetPath = (pagePath.parent / unquote(oUrl.path)).resolve()
            if oUrl.path and not targetPath.exists():
                lBroken.append(f'{pagePath.relative_to(htmlDir)} -> {href}')
    assert not lBroken, f'{len(lBroken)} broken internal links, e.g. {lBroken[:5]}'


@pytest.fixture(scope='module')
def siteUrl() -> str:
    htmlDir = _NeedSite()
    hHandler = functools.partial(_QuietHandler, directory=str(htmlDir))
    oServer = http.server.ThreadingHTTPServer(('127.0.0.1', 0), hHandler)
    oThread = threading.Thread(target=oServer.serve_forever, daemon=True)
    oThread.start()
    yield f'http://127.0.0.1:{oServer.server_address[1]}/'
    oServer.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  #<! No request log in the test output
        pass


@pytest.fixture(scope='module')
def browser(tmp_path_factory: pytest.TempPathFactory):
    _NeedSite()
    from playwright.sync_api import Error, sync_playwright
    with sync_playwright() as oPlaywright:
        try:  #<! Debian's Chromium (or $CHROMIUM_PATH); else the one `python -m playwright install chromium` fetched
            oContext = oPlaywright.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp('chromium-profile')),
                executable_path=CHROMIUM if Path(CHROMIUM).is_file() else None, headless=True, args=CHROMIUM_FLAGS,
                viewport={'width': 1280, 'height': 900})
        except Error as oErr:
            raise AssertionError(f'No browser for the site test: expected Chromium at {CHROMIUM}, got {oErr}. '
                                 'Install it (Debian: apt-get install chromium; elsewhere: python -m playwright '
                                 'install chromium) or set CHROMIUM_PATH.') from oErr
        yield oContext
        oContext.close()


def _Open(browser, url: str) -> tuple[object, list[str]]:
    oPage = browser.new_page()
    lErrors: list[str] = []
    oPage.on('console', lambda oMsg: lErrors.append(oMsg.text) if oMsg.type == 'error' else None)
    oPage.on('pageerror', lambda oErr: lErrors.append(str(oErr)))
    oPage.on('requestfailed', lambda oReq: lErrors.append(f'request failed: {oReq.url}'))
    oPage.goto(url, wait_until='load')
    return oPage, lErrors


def test_every_page_loads_without_a_console_error(browser, siteUrl: str) -> None:
    htmlDir = site.SITE_HTML
    dErrors = {}
    for pagePath in sorted(htmlDir.rglob('*.html')):
        relPath = pagePath.relative_to(htmlDir).as_posix()
        if relPath.startswith(('_static/', '_sources/')):
            continue
        oPage, lErrors = _Open(browser, urljoin(siteUrl, relPath))
        oPage.wait_for_timeout(50)
        oPage.close()
        if lErrors:
            dErrors[relPath] = lErrors[:3]
    assert not dErrors, f'Console errors on {len(dErrors)} pages: {dict(list(dErrors.items())[:4])}'


@pytest.mark.parametrize('lesson', LESSONS)
def test_lesson_page_shows_its_figures_and_math(browser, siteUrl: str, lesson: str) -> None:
    dSummary = json.loads((site.SITE_OUT / 'summary.json').read_text(encoding='utf-8'))
    numFigures = dSummary['figures'][lesson]
    oPage, lErrors = _Open(browser, urljoin(siteUrl, f'lessons/{lesson}.html'))
    oPage.wait_for_function('() => !window.MathJax || !MathJax.startup || MathJax.startup.promise', timeout=20000)
    oPage.evaluate('() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null')
    lWidths = oPage.eval_on_selector_all('article img', 'els => els.map(e => e.complete ? e.naturalWidth : 0)')
    numShown = sum(1 for width in lWidths if width > 0)
    assert numShown >= numFigures > 0, \
        f'{lesson}: expected at least the {numFigures} figures the lesson draws, got {numShown} rendered images'
    numMath = oPage.eval_on_selector_all('.math', 'els => els.length')
    numRendered = oPage.eval_on_selector_all('mjx-container', 'els => els.length')
    assert numMath == 0 or numRendered >= numMath, f'{lesson}: {numMath} math elements, {numRendered} rendered'
    textBody = oPage.inner_text('article')
    lRaw = [m for m in re.findall(r'\$\$?[^$\n]{1,80}\$\$?', textBody) if re.search(r'[\\^_{}]', m)]
    assert not lRaw, f'{lesson}: math left as raw TeX: {lRaw[:3]}'
    assert 'Outputs on this page' in textBody, f'{lesson}: the page must say which mode produced its outputs'
    if lesson.startswith('11_'):
        oPage.screenshot(path=str(SCREENSHOT), full_page=False)
    oPage.close()
    assert not lErrors, f'{lesson}: console errors {lErrors[:3]}'


def test_search_finds_batchnorm(browser, siteUrl: str) -> None:
    oPage, _ = _Open(browser, urljoin(siteUrl, 'search.html?q=BatchNorm'))
    oPage.wait_for_selector('#search-results ul li, ul.search li', timeout=20000)
    numHits = oPage.eval_on_selector_all('ul.search li', 'els => els.length')
    oPage.close()
    assert numHits > 0, 'The search page found nothing for BatchNorm'


def test_api_page_shows_the_signature_of_train_model(browser, siteUrl: str) -> None:
    oPage, lErrors = _Open(browser, urljoin(siteUrl, 'api/training.html'))
    signature = oPage.inner_text('[id="course_utils.training.TrainModel"]')
    oPage.close()
    assert 'TrainModel' in signature and 'oModel' in signature and 'numEpoch' in signature, signature
    assert not lErrors


def test_the_screenshot_of_a_lesson_page_is_not_blank(browser, siteUrl: str) -> None:
    if not SCREENSHOT.is_file():
        oPage, _ = _Open(browser, urljoin(siteUrl, f'lessons/{LESSONS[-1]}.html'))
        oPage.screenshot(path=str(SCREENSHOT))
        oPage.close()
    mImg = np.asarray(Image.open(SCREENSHOT).convert('L'), dtype=float)
    assert mImg.std() > 10, f'The screenshot {SCREENSHOT} is blank (std of its gray levels {mImg.std():.1f})'
    assert (mImg < 128).mean() > 0.005, 'The screenshot holds almost no dark pixels (no text)'


def test_the_workflows_are_valid() -> None:
    lWorkflows = sorted((REPO_ROOT / '.github' / 'workflows').glob('*.yml'))
    assert {p.name for p in lWorkflows} == {'ci.yml', 'site.yml'}
    oProc = subprocess.run([str(Path(site.sys.executable).parent / 'check-jsonschema'), '--builtin-schema',
                            'vendor.github-workflows', *map(str, lWorkflows)], capture_output=True, text=True)
    assert oProc.returncode == 0, oProc.stdout + oProc.stderr


def test_the_workflow_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    brokenPath = tmp_path / 'broken.yml'
    brokenPath.write_text('name: Broken\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    stepz: []\n')
    oProc = subprocess.run([str(Path(site.sys.executable).parent / 'check-jsonschema'), '--builtin-schema',
                            'vendor.github-workflows', str(brokenPath)], capture_output=True, text=True)
    assert oProc.returncode != 0, 'A job without steps (a misspelt key) must be refused'


def test_nbmake_keeps_the_executed_lesson_with_its_provenance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbmake import nb_run

    # nbmake's own execute (make test has already patched it to keep copies elsewhere); the patch is undone after
    monkeypatch.setattr(nb_run.NotebookRun, 'execute',
                        getattr(nb_run.NotebookRun.execute, 'original', nb_run.NotebookRun.execute))
    (tmp_path / 'notebooks').mkdir()
    lessonPath = tmp_path / 'notebooks' / '01_Tiny.ipynb'
    oNotebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('print(6 * 7)')])
    nbformat.write(oNotebook, lessonPath)
    site.KeepExecutedNotebooks(tmp_path / 'executed')
    oResult = nb_run.NotebookRun(lessonPath, 120).execute()
    assert oResult.error is None
    oKept = nbformat.read(tmp_path / 'executed' / '01_Tiny.ipynb', as_version=4)
    assert oKept.cells[0].outputs[0].text == '42\n'
    assert oKept.metadata[site.PROVENANCE_KEY]['mode'] in ('quick', 'full')
    assert not nbformat.read(lessonPath, as_version=4).cells[0].outputs, 'the lesson itself stays without outputs'
