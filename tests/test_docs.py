"""The documentation site builds, and every page of it renders in headless Chromium with its figures and math,
and every local link on it resolves.

The site is built into a temporary folder by tools/build_docs.py, or taken from FACTORCL_DOCS_DIR when that
names an already built site (CI builds it once, then runs the tests). Chromium and its driver are the Debian
packages `chromium` and `chromium-driver` (.ci/run installs them); selenium drives them.
"""
import functools, http.server, importlib.util, json, os, shutil, tempfile, threading, urllib.error, urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path('/usr/bin/chromium'), Path('/usr/bin/chromedriver')
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--no-first-run', '--window-size=1280,1000']
spec = importlib.util.spec_from_file_location('build_docs', ROOT/'tools'/'build_docs.py')
build_docs = importlib.util.module_from_spec(spec); spec.loader.exec_module(build_docs)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The built site's folder."
    given = os.environ.get('FACTORCL_DOCS_DIR')
    if given:
        out = Path(given)
        assert (out/'index.html').is_file(), f"FACTORCL_DOCS_DIR={given} holds no built site (no index.html)"
        return out
    return build_docs.build(tmp_path_factory.mktemp('site')/'html')


@pytest.fixture(scope='module')
def server(site):
    "Base URL of a local HTTP server over the site (a missing file answers 404)."
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown()


@pytest.fixture(scope='module')
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing: pytest.fail(f"{missing} not found: apt-get install -y chromium chromium-driver (as .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix='factorcl-chromium-')
    for flag in CHROME_FLAGS + [f'--user-data-dir={profile}']: opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def pages(site):
    "Every HTML page a reader can reach (Sphinx's search page needs its index loaded by script: left out)."
    return sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html')
                  if not p.relative_to(site).parts[0].startswith(('_', '.')) and p.name != 'search.html')


RENDER = """
const done = arguments[arguments.length - 1];
const images = () => Array.from(document.images);
const settle = () => Promise.all(images().map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
const mathReady = (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise : Promise.resolve();
Promise.all([settle(), mathReady]).then(() => done({
  title: document.title,
  h1: Array.from(document.querySelectorAll('article h1, main h1')).map(h => h.textContent.trim()),
  text: (document.querySelector('article') || document.body).innerText.length,
  images: images().map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0, width: i.naturalWidth,
                              in_article: !!i.closest('article')})),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  math_total: document.querySelectorAll('.math').length,
  math_raw: Array.from(document.querySelectorAll('.math')).filter(e => !e.querySelector('mjx-container')).length,
}));
"""


def render(browser, url):
    browser.set_script_timeout(60)
    browser.get(url)
    return browser.execute_async_script(RENDER)


def status(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r: return r.status
    except urllib.error.HTTPError as e: return e.code


def image_outputs(nb_path):
    "How many figures a notebook's saved outputs hold (what its page must show)."
    nb = json.loads(nb_path.read_text())
    return sum(any(k.startswith('image/') for k in o.get('data', {}))
               for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []))


def test_site_pages_render_with_figures_and_links_resolve(site, server, browser, tmp_path_factory):
    all_pages = pages(site)
    notebooks = sorted(p.stem for p in (ROOT/'nbs').glob('*.ipynb'))
    for stem in notebooks:                                   # every notebook is a page of the site
        assert f'nbs/{stem}.html' in all_pages, f"nbs/{stem}.ipynb has no page in the site"
    for extra in ('docs/api.html', 'docs/data.html', 'docs/distributed.html', 'docs/results.html', 'CONTRIBUTING.html'):
        assert extra in all_pages, extra
    problems, checked = [], {}
    for page in all_pages:
        url = urljoin(server, page)
        info = render(browser, url)
        if not info['h1'] or info['text'] < 200: problems.append(f"{page}: renders no content ({info['h1']}, {info['text']} chars)")
        for img in info['images']:
            if not img['ok']: problems.append(f"{page}: image {img['src']} does not load")
        if info['math_raw']: problems.append(f"{page}: {info['math_raw']} of {info['math_total']} equations shown as LaTeX source")
        if page.startswith('nbs/'):
            want = image_outputs(ROOT/'nbs'/(Path(page).stem + '.ipynb'))
            shown = sum(i['ok'] and i['in_article'] for i in info['images'])
            if shown < want: problems.append(f"{page}: shows {shown} figures, its notebook carries {want}")
        for href in info['links']:
            target, _ = urldefrag(href)
            if urlparse(target).netloc != urlparse(server).netloc: continue
            if target not in checked: checked[target] = status(target)
            if checked[target] != 200: problems.append(f"{page}: link {href} answers {checked[target]}")
        if page in ('nbs/index.html', 'nbs/tutorial_factorcl.html'):
            shots = Path(os.environ.get('FACTORCL_DOCS_SCREENSHOTS') or tmp_path_factory.getbasetemp()/'screenshots')
            shots.mkdir(parents=True, exist_ok=True)      # screenshots to look at: FACTORCL_DOCS_SCREENSHOTS=/tmp/shots
            browser.save_screenshot(str(shots/page.replace('/', '_').replace('.html', '.png')))
    assert not problems, '\n'.join(problems[:40])
    assert len(checked) >= len(notebooks), f"only {len(checked)} local links checked"


def test_landing_page_shows_diagram_route_and_api(site, server, browser):
    info = render(browser, urljoin(server, 'index.html'))             # the site's root forwards to the landing page
    assert browser.current_url.endswith('nbs/index.html'), browser.current_url
    diagram = [i for i in info['images'] if 'information_diagram' in i['src']]
    assert diagram and diagram[0]['ok'] and diagram[0]['width'] > 300, diagram
    route = [l for l in info['links'] if l.endswith('.html') and '/nbs/' in l]
    assert any(l.endswith('/nbs/tutorial_factorcl.html') for l in route), route
    api = render(browser, urljoin(server, 'docs/api.html'))
    ids = set(browser.execute_script("return Array.from(document.querySelectorAll('dt[id]')).map(e => e.id)"))
    for name in ('factorcl_nb.models.FactorCL', 'factorcl_nb.train.fit', 'factorcl_nb.estimators.infonce_bound',
                 'factorcl_nb.evaluate.probe_mi', 'factorcl_nb.data.synthetic.make_synthetic'):
        assert name in ids, f"{name} is missing from the API reference"
    assert len(ids) > 50, len(ids)
    tutorial = render(browser, urljoin(server, 'nbs/tutorial_factorcl.html'))
    assert tutorial['math_total'] >= 6 and tutorial['math_raw'] == 0, tutorial   # the objective's equations typeset


def test_api_reference_covers_every_module():
    "docs/api.md documents every module of the package (a new module must be added there)."
    api = (ROOT/'docs'/'api.md').read_text()
    modules = ['factorcl_nb.' + '.'.join(p.relative_to(ROOT/'factorcl_nb').with_suffix('').parts)
               for p in (ROOT/'factorcl_nb').rglob('*.py') if not p.name.startswith('_')]
    missing = [m for m in modules if f'.. automodule:: {m}\n' not in api and not m.endswith('__init__')]
    missing = [m for m in missing if m != 'factorcl_nb.data']   # re-exports its submodules, documented one by one
    assert not missing, f"modules without an API section in docs/api.md: {missing}"


def test_results_experiments_and_report_are_on_the_site_with_full_size_figures(site, server, browser):
    "The report and every executed experiment notebook are pages; a figure opens at full size; no nbval marker shows."
    all_pages = pages(site)
    assert 'figures/REPORT.html' in all_pages
    executed = sorted(p.stem for p in (ROOT/'figures').glob('*.ipynb'))
    missing = [s for s in executed if f'figures/{s}.html' not in all_pages]
    assert executed and not missing, f"executed experiments without a page: {missing}"
    render(browser, urljoin(server, 'docs/results.html'))
    figures = browser.execute_script(
        "return Array.from(document.querySelectorAll('article img')).map(i => [i.src, i.closest('a') ? i.closest('a').href : null])")
    assert figures, 'the results page shows no figure'
    unlinked = [src for src, href in figures if href != src]
    assert not unlinked, f"figures that do not open at full size: {unlinked}"
    # the verdict table at the top is the committed claims, counted: one row per experiment that saved claims
    text = browser.execute_script("return document.querySelector('article').innerText")
    assert 'Does it reproduce?' in text
    rows = browser.execute_script("return Array.from(document.querySelectorAll('article table tr'))"
                                  ".map(r => Array.from(r.cells).map(c => c.innerText.trim()))")
    import pandas as pd
    for f in sorted((ROOT/'figures').glob('*.claims.csv')):
        c = pd.read_csv(f, keep_default_na=False, na_values=[''])
        name = f.name[:-len('.claims.csv')]
        row = [r for r in rows if r and r[0] == name and len(r) == 6]
        assert row, f"the results page has no verdict row for {f.name}"
        want = [str(len(c))] + [str((c.verdict == v).sum()) for v in ('holds', 'does not hold', 'inconclusive')]
        assert row[0][1:5] == want, (row[0], want)
    marked = [p for p in all_pages if 'NBVAL_' in (site/p).read_text(encoding='utf-8')]
    assert not marked, f"nbval markers shown to readers on {marked}"
