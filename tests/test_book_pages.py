"""Every page of the book executes under the smoke profile, with figures and no errors.

The notebooks are written to a temporary directory, so the ones the book renders are untouched.
"""

import subprocess
import sys

import nbformat
import pytest

from clipcore import book

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
    if page.name != "status":
        assert any("image/png" in o.get("data", {}) for o in outputs), "page drew no figure"
    # the injected parameters are the smoke profile's
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'profile = "smoke"' in injected[0].source
