"""Every built page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, which `.ci/run` installs) loads it from a local server and checks that
MathJax typeset every formula, every image loaded, results are HTML tables and the console
stayed clean; a screenshot of each page lands in _build/screenshots/ for a person to look at.

Skipped when the book is not built or Chromium is absent. Selenium is given the driver's path,
so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from clipcore import book
from clipcore.book.scorecard import NO_CLAIM_PAGES

pytestmark = pytest.mark.browser
HTML = book.ROOT / "_build" / "html"
SHOTS = book.ROOT / "_build" / "screenshots"
# Pages that show no result table: the references.
NO_TABLE_PAGES = {"references"}
MAX_SHOT_HEIGHT = 12000  # px; a longer page is cut there
CHAPTERS = {p.name for p in book.executable_pages()} - set(NO_CLAIM_PAGES)


def _find(env: str, names, paths) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        if found := shutil.which(name):
            return found
    return next((p for p in paths if Path(p).exists()), None)


BROWSER = _find("CHROMIUM", ["chromium", "chromium-browser", "google-chrome"], ["/usr/lib/chromium/chromium"])
DRIVER = _find(
    "CHROMEDRIVER",
    ["chromedriver"],
    [
        "/usr/lib/chromium/chromedriver",
        os.path.join(os.environ.get("CHROMEWEBDRIVER", "/nonexistent"), "chromedriver"),
    ],
)

if not (HTML / "index.html").exists():
    pytest.skip("the book has not been built (run `make book`)", allow_module_level=True)
if not (BROWSER and DRIVER):
    pytest.skip(
        "Chromium or its driver is absent (apt-get install chromium chromium-driver, or `make chromium`)",
        allow_module_level=True,
    )
selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")


def _pages() -> list[str]:
    """Every page of the book, by its path under _build/html without .html."""
    pages = ["book/intro"] + [f"book/{p.name}" for p in book.executable_pages() if p.name != "intro"]
    return pages + ["book/references"]


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, if ever consulted, stays offline
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield drv
    drv.quit()


# Waits for MathJax (when the page loads it) to finish typesetting, then reports what a reader
# would see: formulas left as TeX, images that did not load, tables in the article.
_INSPECT = r"""
const done = arguments[arguments.length - 1];
const report = () => {
  const article = document.querySelector("main") || document.body;
  const math = [...article.querySelectorAll(".math")];
  const untypeset = math.filter(e => !e.querySelector("mjx-container")).map(e => e.textContent.slice(0, 80));
  const clone = article.cloneNode(true);
  clone.querySelectorAll("pre, code, .highlight, mjx-container, script, style").forEach(e => e.remove());
  const text = clone.textContent;
  const tex = [...text.matchAll(/\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$]{0,80}\$|\\(frac|mathrm|sqrt|le|ge|mathbb|nabla|min|max)\b/g)]
    .map(m => text.slice(Math.max(0, m.index - 40), m.index + 40));
  const images = [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0}));
  const figures = [...article.querySelectorAll("img")].filter(i => i.complete && i.naturalWidth > 0).length;
  const tables = article.querySelectorAll("table").length;
  done({mathjax: typeof MathJax !== "undefined", math: math.length, untypeset, tex, images, figures, tables,
        height: Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)});
};
if (typeof MathJax !== "undefined" && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(report, e => done({error: String(e)}));
} else {
  setTimeout(report, 500);
}
"""


def _screenshot(drv, path: Path, height: int) -> None:
    import base64

    height = min(max(height, 600), MAX_SHOT_HEIGHT)
    shot = drv.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.parametrize("page", _pages())
def test_page_in_the_browser(page, server, driver):
    driver.get_log("browser")  # drop what an earlier page left
    driver.get(f"{server}/{page}.html")
    found = driver.execute_async_script(_INSPECT)
    assert "error" not in found, f"MathJax failed: {found.get('error')}"
    name = page.rsplit("/", 1)[-1]
    _screenshot(driver, SHOTS / f"{name}.png", found["height"])

    if found["math"]:
        assert found["mathjax"], "the page has math but no MathJax"
    assert not found["untypeset"], f"formulas left as TeX: {found['untypeset'][:5]}"
    assert not found["tex"], f"raw TeX in the text: {found['tex'][:5]}"
    broken = [i["src"][:120] for i in found["images"] if not i["ok"]]
    assert not broken, f"images that did not load: {broken}"
    if name not in NO_TABLE_PAGES:
        assert found["tables"] > 0, "no HTML table on a page that shows results"
    if name in CHAPTERS:
        assert found["figures"] > 0, "a chapter without a figure"
    # The browser asks the server's root for /favicon.ico; the book has none and needs none.
    errors = [
        e
        for e in driver.get_log("browser")
        if e.get("level") == "SEVERE" and "/favicon.ico" not in e["message"]
    ]
    assert not errors, f"console errors: {[e['message'][:200] for e in errors]}"
