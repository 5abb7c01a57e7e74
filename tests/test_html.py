"""Checks on the built HTML book (skipped until `make book` has produced _build/html)."""

import json
import re

import pytest

from clipcore import book
from clipcore.book.scorecard import NO_CLAIM_PAGES

pytestmark = pytest.mark.html
HTML = book.ROOT / "_build" / "html"
if not (HTML / "index.html").exists():
    pytest.skip("the book has not been built (run `make book`)", allow_module_level=True)

PAGES = book.executable_pages()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_rendered_with_figures_and_no_traceback(page):
    path = HTML / "book" / f"{page.name}.html"
    assert path.exists(), f"{path} missing"
    text = path.read_text()
    assert "Traceback" not in text and "Error" not in re.findall(r'class="ansi-red-fg">(\w+)', text)
    if page.name not in NO_CLAIM_PAGES:
        images = re.findall(r'<img[^>]+src="([^"]+)"', text)
        figs = [s for s in images if s.endswith(".png") or s.startswith("data:image")]
        assert figs, f"{page.name}: no figure in the HTML"
        for src in figs:
            if not src.startswith("data:"):
                assert (path.parent / src).resolve().exists(), f"{page.name}: figure {src} missing"


def test_no_external_scripts_or_styles():
    bad = []
    for path in HTML.rglob("*.html"):
        for url in re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?:)?//([^"]+)"', path.read_text()):
            bad.append((path.name, url))
    assert not bad, f"external resources (math must render offline): {bad[:5]}"


def test_mathjax_served_locally():
    text = (HTML / "book" / "relaxed_smoothness.html").read_text()
    srcs = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', text, flags=re.I)
    assert srcs, "no MathJax script on a page with math"
    for src in srcs:
        assert not src.startswith(("http", "//"))
        assert (HTML / "book" / src.split("?")[0]).resolve().exists()


def test_glued_verdicts_were_pasted():
    text = (HTML / "book" / "relaxed_smoothness.html").read_text()
    assert "pasted-text" in text or "pasted-inline" in text
    # a claim's computed status, pasted as bold Markdown
    assert re.search(r"<strong>(identity )?(holds|fails|inconclusive|not-testable)</strong>", text)


def test_scorecard_lists_every_claim_and_the_intro_summarises_it():
    claims = json.loads((book.ROOT / "book" / "_claims.json").read_text())
    text = (HTML / "book" / "scorecard.html").read_text()
    assert text.count('class="claim-') == len(claims) > 0
    for c in claims:
        assert f'href="{c["page"]}.html"' in text
    intro = (HTML / "book" / "intro.html").read_text()
    assert re.search(r"Of the \d+ findings checked, \d+ hold, \d+ fail", intro), (
        "no scorecard summary on the intro"
    )
