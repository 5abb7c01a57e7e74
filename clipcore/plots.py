"""Figures and tables the pages show: the book's figure style, the gradient-norm-against-
smoothness scatter grid (Zhang et al., ICLR 2020, Figs. 1-3 and 5) and result tables, as HTML
(:func:`table_html`, what the book renders) or fixed-width text (:func:`format_table`)."""

from __future__ import annotations

import html
import math
import re
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "BOOK_STYLE",
    "use_book_style",
    "scatter_grid",
    "table_html",
    "table_frame",
    "format_cell",
    "format_table",
]

# Read at the book's content width (about 7 inches at 110 dpi): labels no smaller than the prose's
# footnotes, light grids, no top/right spines.
BOOK_STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9,
    "legend.framealpha": 0.85,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.markersize": 5,
}


def thin(n: int, at_most: int = 2000) -> slice:
    """A slice keeping at most about ``at_most`` of ``n`` evenly spaced points (and the last
    one's neighbourhood): what a dense curve needs to be drawn, and its CSV to stay small."""
    return slice(None, None, max(1, -(-n // at_most)))


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to matplotlib (a page calls it once, in its imports cell)."""
    import matplotlib as mpl

    mpl.rcParams.update(BOOK_STYLE)


def scatter_grid(
    points: Mapping[str, Mapping[str, dict]],
    row_labels: Mapping[str, str],
    *,
    log: bool = True,
    envelopes: Mapping | None = None,
    title: str = "",
    panel_size=(4.2, 3.3),
):
    """Rows = runs, columns = estimators: gradient norm (x) against smoothness (y), coloured
    by iteration, with the envelope line :math:`L_0 + L_1 g` where ``envelopes[(run, est)]``
    gives ``(L0, L1)``. Log-log axes, or linear ones (``log=False``, Fig. 5). Returns the
    figure, sized to be read at the book's full width (tag its cell ``full-width``)."""
    import matplotlib.pyplot as plt

    with plt.rc_context(BOOK_STYLE):
        return _scatter_grid(points, row_labels, log, envelopes, title, panel_size)


def _scatter_grid(points, row_labels, log, envelopes, title, panel_size):
    import matplotlib.pyplot as plt

    runs = list(points)
    ests = list(dict.fromkeys(e for r in runs for e in points[r]))
    steps = [p["step"] for r in runs for p in points[r].values() if p["step"].size]
    smax = max((float(s.max()) for s in steps), default=1.0)
    # Fixed margins rather than a layout engine: constrained layout doubles the render time.
    fig, axes = plt.subplots(
        len(runs), len(ests), squeeze=False, figsize=(panel_size[0] * len(ests), panel_size[1] * len(runs))
    )
    fig.subplots_adjust(
        left=0.1, right=0.88, bottom=0.08, top=0.9 if title else 0.94, wspace=0.32, hspace=0.38
    )
    sc = None
    for i, run in enumerate(runs):
        for j, est in enumerate(ests):
            ax = axes[i, j]
            p = points[run].get(est)
            if p is None or p["step"].size == 0:
                ax.text(0.5, 0.5, "no finite points", ha="center", transform=ax.transAxes)
                continue
            sc = ax.scatter(
                p["grad_norm"], p["smoothness"], c=p["step"], cmap="viridis", s=22, vmin=0, vmax=smax
            )
            env = (envelopes or {}).get((run, est))
            if env is not None and np.all(np.isfinite(env)):
                g = p["grad_norm"]
                gx = np.geomspace(g.min(), g.max(), 100) if log else np.linspace(0, g.max(), 100)
                ax.plot(
                    gx, env[0] + env[1] * gx, "r-", lw=1, label=f"$L_0 + L_1 g$: ({env[0]:.2g}, {env[1]:.2g})"
                )
                ax.legend(fontsize=9, loc="upper left")
            if log:
                _log_axes(ax, p["grad_norm"], p["smoothness"])
            if i == 0:
                ax.set_title(f"estimator: {est}")
            if i == len(runs) - 1:
                ax.set_xlabel("gradient norm")
            if j == 0:
                ax.set_ylabel(f"{row_labels.get(run, run)}\nsmoothness")
    if sc is not None:
        cax = fig.add_axes([0.91, 0.25, 0.015, 0.5], label="<colorbar>")
        fig.colorbar(sc, cax=cax, label="iteration")
    if title:
        fig.suptitle(title)
    return fig


def _log_axes(ax, x, y) -> None:
    """Log scales with three readable ticks per axis (default log ticks pile up unreadably
    when the data span less than a decade)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    for axis, v, set_scale in ((ax.xaxis, x, ax.set_xscale), (ax.yaxis, y, ax.set_yscale)):
        set_scale("log")
        lo, hi = float(np.min(v)), float(np.max(v))
        ticks = np.unique([float(f"{t:.2g}") for t in np.geomspace(lo, hi, 3)]) if hi > lo else [lo]
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:.2g}"))
        axis.set_minor_formatter(NullFormatter())


def format_table(rows: Sequence[dict], columns: Sequence[str], fmt: str = ".3g") -> str:
    """A fixed-width text table of ``rows`` (numbers formatted with ``fmt``)."""

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return format(float(v), fmt)
        return str(v)

    cells = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


_NUM = ' class="num"'
_MATH = re.compile(r"\$([^$]+)\$")


def _inline(text) -> str:
    """``text`` escaped for HTML, with ``$...$`` turned into MathJax's ``\\(...\\)``."""
    return _MATH.sub(lambda m: f"\\({m[1]}\\)", html.escape(str(text), quote=False))


def format_cell(value, fmt: str | Callable | None = None) -> str:
    """``value`` as table text: ``fmt`` (a format spec such as ``".3g"`` or ``",.0f"``, or a
    callable) for numbers; by default floats to 3 significant digits and ints with thousands
    separators. NaN and None read "–", infinities "∞", bools "yes" / "no"."""
    if callable(fmt):
        return str(fmt(value))
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return format(int(value), fmt or ",d")
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return format(v, fmt or ".3g")
    return str(value)


def table_frame(data, columns: Sequence[str] | Mapping[str, str] | None = None):
    """``data`` (a DataFrame, a list of row dicts or a dict of columns) as a
    :class:`pandas.DataFrame` with ``columns`` (names, or ``{name: header}``) in order."""
    import pandas as pd

    df = data.copy() if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if columns is not None:
        names = list(columns)
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise ValueError(f"Invalid columns: {missing} not in the table (it has {list(df.columns)})")
        df = df[names]
        if isinstance(columns, Mapping):
            df = df.rename(columns=dict(columns))
    return df


def table_html(
    data,
    columns: Sequence[str] | Mapping[str, str] | None = None,
    *,
    formats: Mapping[str, str | Callable] | None = None,
    caption: str = "",
    raw: Sequence[str] = (),
) -> str:
    """An HTML table of ``data`` (see :func:`table_frame`; ``columns`` may rename them as
    ``{name: header}``), every cell formatted by :func:`format_cell` with ``formats[name]``,
    numeric columns right-aligned, an optional ``caption``. Headers and the caption are
    escaped, with ``$...$`` typeset by MathJax; cells of the ``raw`` columns are inserted as
    HTML (links, emphasis)."""
    frame = table_frame(data, None if columns is None else list(columns))
    headers = dict(columns) if isinstance(columns, Mapping) else {c: c for c in frame.columns}
    formats = dict(formats or {})
    unknown = set(formats) - set(frame.columns)
    if unknown:
        raise ValueError(f"Invalid formats: no column {sorted(unknown)}")
    numeric = {
        c
        for c in frame.columns
        if frame[c].map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool)).all()
    }
    lines = ['<table class="clipcore-table tex2jax_process">']
    if caption:
        lines.append(f"<caption>{_inline(caption)}</caption>")
    lines.append(
        "<thead><tr>"
        + "".join(
            f"<th{_NUM if c in numeric else ''}>{_inline(headers.get(c, c))}</th>" for c in frame.columns
        )
        + "</tr></thead>"
    )
    lines.append("<tbody>")
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for c, v in zip(frame.columns, row):
            text = str(v) if c in raw else _inline(format_cell(v, formats.get(c)))
            cells.append(f"<td{_NUM if c in numeric else ''}>{text}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)
