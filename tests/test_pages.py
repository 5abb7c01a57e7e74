"""Tests of clipcore.pages: each glue helper glues what the prose pastes, with the right types."""

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


def test_glue_claim_verdicts_glues_four_values_per_estimator(monkeypatch):
    glued = {}
    monkeypatch.setattr(pages, "_glue", lambda key, value: glued.__setitem__(key, value))
    pages.glue_claim_verdicts("xy", {"fixed": _verdict(True), "hessian": _verdict(False)})
    assert sorted(glued) == sorted(
        f"xy_{k}_{e}" for k in ("claim", "rho", "lo", "gap") for e in ("fixed", "hessian")
    )
    assert glued["xy_claim_fixed"].data == "**reproduced**"
    assert glued["xy_claim_hessian"].data == "**not reproduced**"
    assert (glued["xy_rho_fixed"], glued["xy_lo_fixed"], glued["xy_gap_fixed"]) == (0.9, 0.7, 0.8)
    assert (glued["xy_rho_hessian"], glued["xy_lo_hessian"], glued["xy_gap_hessian"]) == (0.1, -0.2, 0.0)
    assert all(type(glued[f"xy_{k}_fixed"]) is float for k in ("rho", "lo", "gap"))
