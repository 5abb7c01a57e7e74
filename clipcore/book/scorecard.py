"""The claims the executed pages recorded (:func:`clipcore.pages.glue_claim`), gathered into
``_claims.json`` for the scorecard page.

Every chapter page must record at least one claim; the summary pages (:data:`SUMMARY_PAGES`)
read the gathered claims instead, so the runner executes them after every other page.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .. import claims as C
from .sources import BookError, Page

__all__ = [
    "SUMMARY_PAGES",
    "NO_CLAIM_PAGES",
    "CLAIMS_FILE",
    "page_claims",
    "gather_claims",
    "page_titles",
    "chapter_summary_html",
]

# Pages that read the gathered claims: executed last.
SUMMARY_PAGES = ("scorecard",)
# Pages that record no claim of their own.
NO_CLAIM_PAGES = ("scorecard", "status")
CLAIMS_FILE = "_claims.json"
_RECORD_MIME = "application/papermill.record/text/markdown"


def page_claims(notebook: Path) -> list[dict]:
    """The claim records glued in an executed notebook, in the order they were glued."""
    nb = json.loads(Path(notebook).read_text())
    out = []
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name", "")
            if name.startswith(C.RECORD_PREFIX):
                text = o.get("data", {}).get(_RECORD_MIME)
                out.append(json.loads("".join(text) if isinstance(text, list) else text))
    return out


def gather_claims(pages: list[Page], notebook_dir: Path | None, executed: set[str], path: Path) -> list[dict]:
    """Write ``path`` (``_claims.json``): the claims of every page whose executed notebook
    exists (in ``notebook_dir``, default beside its source), validated. A page executed in
    this run (``executed``) that is a chapter and recorded no claim is a :class:`BookError`."""
    records = {}
    for page in pages:
        nb = (notebook_dir / f"{page.name}.ipynb") if notebook_dir else page.output
        if page.name in SUMMARY_PAGES or not nb.exists():
            continue
        found = page_claims(nb)
        if not found and page.name in executed and page.name not in NO_CLAIM_PAGES:
            raise BookError(f"page {page.name!r} recorded no claim ({nb}); every chapter page records one")
        records[page.name] = found
    try:
        claims = C.collect(records)
    except ValueError as err:
        raise BookError(str(err)) from None
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(claims, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return claims


_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _plain_math(text: str) -> str:
    """``$(L_0, L_1)$`` -> ``(L₀, L₁)``: inline math as plain text."""

    def plain(m):
        t = re.sub(r"_\{?(\d+)\}?", lambda d: d[1].translate(_SUB), m[1])
        t = re.sub(r"\^\{?(\d+)\}?", lambda d: d[1].translate(_SUP), t)
        return t.replace("\\", "")

    return re.sub(r"\$([^$]+)\$", plain, text)


def page_titles(pages: list[Page]) -> dict[str, str]:
    """``{page: title}``: the first level-1 heading of each page's source, as plain text (its
    ``$...$`` math without the dollars, digit sub- and superscripts as Unicode): the tables that
    show titles are HTML, on pages that may load no MathJax."""
    titles = {}
    for page in pages:
        for line in page.source.read_text().splitlines():
            text = line.removeprefix("# ").strip() if page.source.suffix == ".py" else line
            if text.startswith("# "):
                titles[page.name] = _plain_math(text[2:].strip())
                break
    return titles


def chapter_summary_html(claims: list[dict], titles: dict[str, str]) -> str:
    """What reproduced, chapter by chapter: an HTML table with one row per page that records
    findings -- its title linked, and how many of its findings hold, fail, are inconclusive or
    not testable -- then a row of totals. Identity checks are counted apart."""
    import html

    order = list(dict.fromkeys(c["page"] for c in claims))
    head = ["chapter", *C.STATUSES, "identity checks"]
    rows = []
    totals = {k: 0 for k in head[1:]}
    for page in order:
        mine = [c for c in claims if c["page"] == page]
        counts = {s: sum(c["kind"] != "identity" and c["status"] == s for c in mine) for s in C.STATUSES}
        counts["identity checks"] = sum(c["kind"] == "identity" for c in mine)
        for k, v in counts.items():
            totals[k] += v
        link = f'<a href="{html.escape(page)}.html">{html.escape(titles.get(page, page))}</a>'
        rows.append([link, *(counts[k] for k in head[1:])])
    rows.append(["<strong>all chapters</strong>", *(totals[k] for k in head[1:])])

    def cell(v, k):
        if isinstance(v, str):
            return f"<td>{v}</td>"
        cls = f' class="num status-{k}"' if v and k in C.STATUSES else ' class="num"'
        return f"<td{cls}>{v if v else '–'}</td>"

    num = ' class="num"'
    return (
        '<table class="clipcore-table chapter-summary">\n<thead><tr>'
        + "".join(f"<th{'' if h == 'chapter' else num}>{h}</th>" for h in head)
        + "</tr></thead>\n<tbody>\n"
        + "\n".join("<tr>" + "".join(cell(v, k) for v, k in zip(r, head)) + "</tr>" for r in rows)
        + "\n</tbody>\n</table>"
    )
