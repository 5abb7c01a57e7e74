"""Every page of the book executes under the smoke profile, with figures and no errors.

The notebooks are written to a temporary directory, so the ones the book renders are untouched.
"""

import subprocess
import sys

import nbformat
import pytest

from clipcore import book
from clipcore.book.scorecard import NO_CLAIM_PAGES, page_claims
from clipcore.claims import STATUSES

pytestmark = pytest.mark.pages


@pytest.mark.parametrize("page", book.executable_pages(), ids=lambda p: p.name)
def test_page_executes_under_smoke(page, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "clipcore.book",
            "--profile",
            "smoke",
            "--page",
            page.name,
            "--output-dir",
            str(tmp_path),
            "--results-dir",
            str(tmp_path / "results"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=book.ROOT,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    nb = nbformat.read(tmp_path / f"{page.name}.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    if page.name not in NO_CLAIM_PAGES:  # the chapters: a figure and at least one claim
        # shown (plt.show) or glued for a {glue:figure} (clipcore.pages.show_figure)
        figure_mimes = ("image/png", "application/papermill.record/image/png")
        assert any(m in o.get("data", {}) for o in outputs for m in figure_mimes), "page drew no figure"
        claims = page_claims(tmp_path / f"{page.name}.ipynb")
        assert claims, "page recorded no claim"
        assert all(c["status"] in STATUSES and c["profile"] == "smoke" for c in claims), claims
    # no stray reprs: every displayed result is a table, a figure or text a page chose to show
    stray = [
        o["data"]["text/plain"][:80]
        for o in outputs
        if o.get("output_type") in ("execute_result", "display_data")
        and set(o.get("data", {})) == {"text/plain"}
        and "scrapbook" not in o.get("metadata", {})
    ]
    assert not stray, f"stray reprs in the outputs: {stray}"
    # the injected parameters are the smoke profile's
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'profile = "smoke"' in injected[0].source
    assert "hide-cell" in injected[0].metadata["tags"], "the injected parameters are collapsed"
    # beside the notebook: its clean source, and the data behind every glued figure
    assert (tmp_path / "_data" / page.name / f"{page.name}.ipynb").exists()
    glued = [
        o["metadata"]["scrapbook"]["name"]
        for o in outputs
        if "application/papermill.record/image/png" in o.get("data", {})
        and "scrapbook" in o.get("metadata", {})
    ]
    for name in glued:
        assert (tmp_path / "_data" / page.name / f"{name}.csv").exists(), f"figure {name} has no data file"
