"""Tests for clipcore.plots: the scatter grid and the text tables of the experiment pages."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np

from clipcore.plots import format_table, scatter_grid


def _pts(g, L, step=None):
    g, L = np.asarray(g, float), np.asarray(L, float)
    return {"step": np.arange(g.size, dtype=float) if step is None else step, "grad_norm": g, "smoothness": L}


def test_format_table_aligns_columns():
    s = format_table([dict(run="a", rho=0.123456), dict(run="bbb", rho=float("nan"))], ["run", "rho"])
    lines = s.splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1 and "0.123" in s and "nan" in s


def test_scatter_grid_draws_one_panel_per_run_and_estimator():
    import matplotlib.pyplot as plt

    pts = {
        r: {e: _pts([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) for e in ("faithful", "fixed")} for r in ("a", "b", "c")
    }
    fig = scatter_grid(pts, {"a": "(a)"}, envelopes={("a", "fixed"): (0.5, 1.0)}, title="t")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 6 and panels[0].get_xscale() == "log"
    plt.close(fig)
    fig = scatter_grid(pts, {}, log=False)
    assert fig.axes[0].get_xscale() == "linear"
    plt.close(fig)


def test_table_html_formats_cells_and_typesets_headers():
    from clipcore.plots import table_html

    rows = [
        dict(run="a<b", rho=0.123456, n=12345, ok=True, bad=float("nan"), big=float("inf")),
        dict(run="c", rho=2.0, n=3, ok=False, bad=None, big=1.5),
    ]
    html = table_html(
        rows,
        {"run": "run", "rho": r"$\rho$", "n": "points", "ok": "ok", "bad": "bad", "big": "big"},
        formats={"rho": ".2f"},
        caption="Spearman's $\\rho$ per run",
    )
    assert html.startswith('<table class="clipcore-table tex2jax_process">')
    assert (
        "<caption>Spearman&#x27;s \\(\\rho\\) per run</caption>" in html
        or "<caption>Spearman's \\(\\rho\\) per run</caption>" in html
    )
    assert '<th class="num">\\(\\rho\\)</th>' in html and "<td>a&lt;b</td>" in html
    assert '<td class="num">0.12</td>' in html and '<td class="num">12,345</td>' in html
    assert "<td>yes</td>" in html and "<td>no</td>" in html and "–" in html and "∞" in html
    assert html.count("<tr>") == 3


def test_table_html_names_bad_columns_and_keeps_raw_cells():
    import pytest

    from clipcore.plots import table_html

    assert '<td><a href="x.html">x</a></td>' in table_html([{"link": '<a href="x.html">x</a>'}], raw=["link"])
    with pytest.raises(ValueError, match="Invalid columns"):
        table_html([{"a": 1}], ["b"])
    with pytest.raises(ValueError, match="Invalid formats"):
        table_html([{"a": 1}], formats={"b": ".3g"})


def test_format_cell_defaults():
    from clipcore.plots import format_cell

    assert format_cell(0.000123456) == "0.000123" and format_cell(1234567) == "1,234,567"
    assert format_cell(1e308 * 10) == "∞" and format_cell(-float("inf")) == "−∞"
    assert format_cell(3.14159, lambda v: f"{v:.1f} s") == "3.1 s" and format_cell("x") == "x"


def test_thin_keeps_at_most_about_the_asked_points():
    from clipcore.plots import thin

    x = np.arange(200001)
    assert 1000 <= x[thin(x.size)].size <= 2000 and np.arange(10)[thin(10)].size == 10
