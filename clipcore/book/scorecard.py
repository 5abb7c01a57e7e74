"""The claims the executed pages recorded (:func:`clipcore.pages.glue_claim`), gathered into
``_claims.json`` for the scorecard page.

Every chapter page must record at least one claim; the summary pages (:data:`SUMMARY_PAGES`)
read the gathered claims instead, so the runner executes them after every other page.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import claims as C
from .sources import BookError, Page

__all__ = ["SUMMARY_PAGES", "NO_CLAIM_PAGES", "CLAIMS_FILE", "page_claims", "gather_claims"]

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
