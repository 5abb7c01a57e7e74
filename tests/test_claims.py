"""Tests of clipcore.claims: the four outcomes, the interval rules, gathering and the scorecard."""

import json
import math

import pytest

from clipcore import claims as C


def test_decide_and_the_interval_rules():
    assert C.decide(True) == "holds" and C.decide(False) == "fails"
    assert C.decide(True, decidable=False) == "inconclusive" and C.decide(None) == "inconclusive"
    assert C.decide(math.nan) == "inconclusive" and C.decide(True, testable=False) == "not-testable"
    assert C.from_interval(0.6, 0.9, 0.5) == "holds"
    assert C.from_interval(0.1, 0.5, 0.5) == "fails"
    assert C.from_interval(0.4, 0.9, 0.5) == "inconclusive"
    assert C.from_interval(-0.3, -0.1, 0.0, above=False) == "holds"
    assert C.from_interval(0.1, 0.3, 0.0, above=False) == "fails"
    assert C.from_interval(math.nan, 1.0, 0.0) == "inconclusive"
    assert C.within(-0.01, 0.015, 0.02) == "holds"
    assert C.within(-0.1, -0.05, 0.02) == "fails" and C.within(0.03, 0.1, 0.02) == "fails"
    assert C.within(-0.1, 0.01, 0.02) == "inconclusive"


def test_a_claim_is_validated_and_its_evidence_made_json_safe():
    c = C.Claim("x_1", "zhang2020", "Thm 3", "s", "holds", {"a": math.inf, "b": [1.0, math.nan]})
    assert json.loads(c.to_json())["evidence"] == {"a": None, "b": [1.0, None]}
    for bad, match in (
        (dict(status="maybe"), "Invalid status: 'maybe'"),
        (dict(paper="nobody"), "Invalid paper"),
        (dict(kind="guess"), "Invalid kind"),
        (dict(id="a b"), "Invalid id"),
    ):
        kw = dict(id="x", paper="zhang2020", where="w", statement="s", status="holds") | bad
        with pytest.raises(ValueError, match=match):
            C.Claim(**kw)


def test_collect_sets_pages_and_refuses_duplicate_ids():
    rec = dict(id="a", paper="qian2021", where="C1", statement="s", status="fails", evidence={})
    got = C.collect({"p1": [rec], "p2": [dict(rec, id="b", kind="identity")]})
    assert [(c["id"], c["page"]) for c in got] == [("a", "p1"), ("b", "p2")]
    with pytest.raises(ValueError, match="id 'a' used on pages 'p1' and 'p2'"):
        C.collect({"p1": [rec], "p2": [rec]})
    with pytest.raises(ValueError, match="Invalid status"):
        C.collect({"p1": [dict(rec, status="")]})


def test_summary_sentence_and_table():
    base = dict(paper="zhang2020", where="Fig. 2", evidence={"rho": 0.51234}, profile="ci", page="lstm")
    cl = [
        dict(base, id="a", statement="s <a>", status="holds", kind="finding"),
        dict(base, id="b", statement="t", status="inconclusive", kind="finding"),
        dict(base, id="c", statement="u", status="holds", kind="identity"),
    ]
    assert C.summary(cl) == {
        "holds": 1,
        "fails": 0,
        "inconclusive": 1,
        "not-testable": 0,
        "identity": 1,
        "total": 3,
    }
    assert C.summary_sentence(cl).startswith(
        "Of the 2 findings checked, 1 hold, 0 fail, 1 are inconclusive and 0 are not-testable; 1 further"
    )
    html = C.html_table(cl)
    assert html.count("<tr>") == 4 and "s &lt;a&gt;" in html and 'href="lstm.html"' in html
    assert "rho = 0.512" in html and "identity check" in html


def test_band_status_and_combine():
    assert C.band_status(0.2, 0.4, 0.1, 0.5) == "holds"
    assert C.band_status(0.6, 0.7, 0.1, 0.5) == "fails" and C.band_status(-1, 0.1, 0.1, 0.5) == "fails"
    assert (
        C.band_status(0.05, 0.2, 0.1, 0.5) == "inconclusive"
        and C.band_status(0.2, 0.6, 0.1, 0.5) == "inconclusive"
    )
    assert C.band_status(math.nan, 0.2, 0.1, 0.5) == "inconclusive"
    assert C.band_status(-1.0, 0.0, -math.inf, 0.5) == "holds"
    assert C.combine_statuses(["holds", "holds"]) == "holds"
    assert C.combine_statuses(["holds", "inconclusive"]) == "inconclusive"
    assert C.combine_statuses(["inconclusive", "fails", "holds"]) == "fails"
    assert C.combine_statuses(["not-testable", "holds"]) == "inconclusive"
    assert C.combine_statuses(["not-testable"]) == "not-testable" == C.combine_statuses([])
    with pytest.raises(ValueError, match="status"):
        C.combine_statuses(["true"])
