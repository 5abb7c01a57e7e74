"""Tests of clipcore.pages: each glue helper glues what the prose pastes, with the right types."""

import json

from clipcore import pages


def _verdict(ok):
    return dict(
        ok=ok,
        lower_ok=ok,
        gap_ok=ok,
        rho=0.9 if ok else 0.1,
        lo=0.7 if ok else -0.2,
        max_weak=0.1,
        gap=0.8 if ok else 0.0,
    )


def test_glue_number_and_verdict(monkeypatch):
    glued = {}
    monkeypatch.setattr(pages, "_glue", lambda key, value: glued.__setitem__(key, value))
    assert pages.glue_number("n", 3) == 3.0 and type(glued["n"]) is float
    assert pages.glue_verdict("v", 0, "holds", "fails") is False
    assert glued["v"].data == "**fails**"
    assert pages.glue_verdict("w", True, "holds", "fails") is True
    assert glued["w"].data == "**holds**"


def _study_verdict(status):
    v = {"n_min": 40}
    for suffix in ("", "_detrended"):
        v.update(
            {name + suffix: 0.1 * k for k, name in enumerate(("rho", "lo", "hi", "gap", "gap_lo", "gap_hi"))}
        )
        v["status" + suffix] = status
    return v


def test_glue_claim_verdicts_records_two_claims_and_twelve_numbers_per_estimator(monkeypatch):
    glued = {}
    monkeypatch.setattr(pages, "_glue", lambda key, value: glued.__setitem__(key, value))
    pages.glue_claim_verdicts(
        "xy",
        {"fixed": _study_verdict("holds"), "hessian": _study_verdict("inconclusive")},
        paper="zhang2020",
        where="Fig. 2",
        statement="strong correlation in (a)",
        profile="smoke",
    )
    assert glued["xy_corr_fixed"].data == "**holds**"
    assert glued["xy_corr_detrended_hessian"].data == "**inconclusive**"
    rec = json.loads(glued["claim__xy_corr_fixed"].data)
    assert rec["status"] == "holds" and rec["profile"] == "smoke" and rec["evidence"]["n_min"] == 40
    numbers = [k for k, v in glued.items() if type(v) is float]
    assert len(numbers) == 2 * 12 and glued["xy_gap_lo_detrended_fixed"] == 0.4


def test_glue_claim_records_a_valid_claim_and_glues_its_status(monkeypatch):
    glued = {}
    monkeypatch.setattr(pages, "_glue", lambda key, value: glued.__setitem__(key, value))
    pages.glue_claim("p_x", paper="qian2021", where="C1", statement="s", status="fails", kind="identity")
    assert glued["p_x"].data == "**identity fails**"
    assert json.loads(glued["claim__p_x"].data)["kind"] == "identity"
    import pytest

    with pytest.raises(ValueError, match="Invalid status: 'maybe'"):
        pages.glue_claim("p_y", paper="qian2021", where="C1", statement="s", status="maybe")


def test_show_table_displays_one_html_table(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    assert pages.show_table([{"a": 1.23456}], caption="c") is None
    (obj,) = shown
    assert "<table" in obj.data and "<caption>c</caption>" in obj.data and "1.23" in obj.data


def test_show_figure_writes_the_csv_glues_figure_and_link(monkeypatch, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import pytest

    glued = {}
    monkeypatch.setattr(pages, "_glue", lambda key, value: glued.__setitem__(key, value))
    monkeypatch.setenv(pages.PAGE_ENV, "mypage")
    monkeypatch.setenv(pages.PAGE_DIR_ENV, str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    assert pages.show_figure("fig_a", fig, {"x": [1, 2], "y": [3, 4]}) is None
    csv = tmp_path / "_data" / "mypage" / "fig_a.csv"
    assert pd.read_csv(csv).to_dict("list") == {"x": [1, 2], "y": [3, 4]}
    assert (tmp_path / "_data" / ".gitignore").read_text().strip().endswith("*")
    assert glued["fig_a"] is fig and not plt.fignum_exists(fig.number), "the figure is glued, then closed"
    assert glued["fig_a_csv"].data == "{download}`Data (CSV) <_data/mypage/fig_a.csv>`"
    with pytest.raises(ValueError, match="no rows"):
        pages.show_figure("empty", plt.figure(), {"x": []})
