"""What the two smoothness chapters (LSTM, ResNet) show from a
:class:`clipcore.studies.SmoothnessStudy`: the scatter figures of the dense ``step`` probe and
of the pinned-data estimators, the table of rank correlations, and the section of recorded
paper-scale runs (:class:`clipcore.studies.RecordedStudy`)."""

from __future__ import annotations

from .plots import scatter_grid
from .smoothness import ESTIMATORS, STEP_PROBE

__all__ = [
    "step_points",
    "pinned_points",
    "probe_figures",
    "correlation_rows",
    "show_correlations",
    "show_recorded",
]

CORRELATION_COLUMNS = {
    "run": "run",
    "estimator": "probe",
    "n": "points",
    "rho": "$\\rho$",
    "interval": "interval",
    "rho_detrended": "$\\rho$ given the step",
    "interval_detrended": "interval",
    "L0": "$L_0$",
    "L1": "$L_1$",
}


def step_points(study) -> dict:
    """``{run: {"step": points}}``: the dense probe alone (empty when the runs have none)."""
    return {r: {STEP_PROBE: p[STEP_PROBE]} for r, p in study.points.items() if STEP_PROBE in p}


def pinned_points(study) -> dict:
    """``{run: {estimator: points}}`` of the pinned-data estimators the runs recorded."""
    return {r: {e: p[e] for e in ESTIMATORS if e in p} for r, p in study.points.items()}


def probe_figures(study, title: str, log: bool = True) -> dict:
    """``{"step": figure, "pinned": figure}`` (``step`` only when recorded): rows are the runs;
    the step figure has one wide column, the pinned one a column per estimator."""
    figs = {}
    steps = step_points(study)
    axes = "" if log else " (linear axes)"
    if steps:
        figs["step"] = scatter_grid(
            steps,
            study.panel,
            log=log,
            envelopes=study.envelopes,
            title=f"{title}: the step probe{axes}",
            panel_size=(7.0, 2.9),
        )
    figs["pinned"] = scatter_grid(
        pinned_points(study),
        study.panel,
        log=log,
        envelopes=study.envelopes,
        title=f"{title}: pinned-data estimators{axes}",
    )
    return figs


def show_probe_figures(study, prefix: str, title: str) -> None:
    """Glue the page's three figures with their data (:func:`clipcore.pages.show_figure`):
    ``<prefix>_step`` and ``<prefix>_pinned`` (log-log) and ``<prefix>_step_linear``."""
    import matplotlib.pyplot as plt

    from .pages import show_figure

    rows = study.points_rows()
    figs = probe_figures(study, title)
    show_figure(f"{prefix}_step", figs["step"], rows)
    show_figure(f"{prefix}_pinned", figs["pinned"], rows)
    lin = probe_figures(study, title, log=False)
    show_figure(f"{prefix}_step_linear", lin["step"], rows)
    plt.close(lin["pinned"])


def correlation_rows(study) -> list[dict]:
    """One row per run and probe: points, Spearman's rho with its interval, the same given the
    step, and the envelope (L0, L1); the runs named by their panels."""
    rows = []
    for r in study.table:
        rows.append(
            dict(
                run=study.panel[r["run"]],
                estimator=r["estimator"],
                n=r["n"],
                rho=r["rho"],
                interval=f"[{r['lo']:.2f}, {r['hi']:.2f}]",
                rho_detrended=r["rho_detrended"],
                interval_detrended=f"[{r['lo_detrended']:.2f}, {r['hi_detrended']:.2f}]",
                L0=r["L0"],
                L1=r["L1"],
            )
        )
    return rows


def show_correlations(study, caption: str) -> None:
    """The rank-correlation table as HTML (:func:`clipcore.pages.show_table`)."""
    from .pages import show_table

    show_table(
        correlation_rows(study),
        CORRELATION_COLUMNS,
        formats={"rho": ".2f", "rho_detrended": ".2f", "L0": ".3g", "L1": ".3g"},
        caption=caption,
    )


def show_recorded(rec, title: str, *, claim_prefix: str, claim: dict) -> None:
    """The recorded section: the recording's status and provenance (``rec.note``), and when
    there is a study, its figures, correlation table and verdicts. Only a *current*
    recording's verdicts are recorded as claims (``claim``: ``paper``, ``where``,
    ``statement`` for :func:`clipcore.pages.glue_claim_verdicts`); a stale one is shown,
    labelled, and decides nothing."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    from .pages import glue_claim_verdicts

    display(Markdown(rec.note))
    if rec.study is None:
        return
    study = rec.study
    for fig in probe_figures(study, f"{title} ({rec.status} recording)").values():
        display(fig)
        plt.close(fig)
    show_correlations(study, caption=f"Rank correlations of the recorded runs ({rec.status}).")
    lines = "\n".join(
        f"- `{est}`: **{v['status']}** ($\\rho$ in the strong run {v['rho']:.2f} [{v['lo']:.2f}, {v['hi']:.2f}], "
        f"gap {v['gap']:.2f} [{v['gap_lo']:.2f}, {v['gap_hi']:.2f}]; given the step: **{v['status_detrended']}**)"
        for est, v in study.verdicts.items()
    )
    lead = (
        "Verdicts on the recorded runs:"
        if rec.status == "current"
        else "What the stale recording said (not a verdict):"
    )
    display(Markdown(f"{lead}\n\n{lines}"))
    if rec.status == "current":
        profile = rec.recordings[0].entry["profile"]
        glue_claim_verdicts(claim_prefix, study.verdicts, profile=f"{profile} (recorded)", **claim)
