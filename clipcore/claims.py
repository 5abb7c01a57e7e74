"""Claims of the papers and their verdicts: the four outcomes, identity checks, and the record
every page leaves for the scorecard.

Every claim check ends in one of :data:`STATUSES`:

``holds`` / ``fails``
    the data decide, by a criterion stated before the numbers;
``inconclusive``
    the data cannot decide at this scale (an interval too wide for the criterion, too few
    points, a horizon too short);
``not-testable``
    the check cannot be made at all here (e.g. a bound larger than any horizon we can run).

A check that is an algebraic identity (true by construction, e.g. a decomposition that the
tests prove) is recorded with ``kind="identity"``: the scorecard shows it as an identity
check, not a finding. A page records each claim with :func:`clipcore.pages.glue_claim`; the
runner collects them from the executed pages into ``book/_claims.json`` (:func:`collect`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

__all__ = [
    "STATUSES",
    "KINDS",
    "PAPERS",
    "Claim",
    "decide",
    "from_interval",
    "within",
    "band_status",
    "combine_statuses",
    "RECORD_PREFIX",
    "collect",
    "summary",
    "summary_sentence",
    "html_table",
]

STATUSES = ("holds", "fails", "inconclusive", "not-testable")
KINDS = ("finding", "identity")
PAPERS = {
    "zhang2020": "Zhang, He, Sra, Jadbabaie (ICLR 2020)",
    "qian2021": "Qian, Wu, Zhuang, Wang, Xiao (AISTATS 2021)",
    "koloskova2023": "Koloskova, Hendrikx, Stich (ICML 2023)",
    "zhang2020b": "Zhang, Jin, Fang, Wang (NeurIPS 2020)",
    "gorbunov2024": "Gorbunov, Tupitsa, Choudhury, Aliev, Richtárik, Horváth, Takáč (arXiv 2409.14989, 2024)",
    "vankov2024": "Vankov, Rodomanov, Nedich, Sankar, Stich (arXiv 2410.10800, 2024)",
    "brock2021": "Brock, De, Smith, Simonyan (ICML 2021)",
    "seetharaman2020": "Seetharaman, Wichern, Pardo, Le Roux (MLSP 2020)",
    "kumar2025": "Kumar, Owen, Roy Chowdhury, Güra (arXiv 2504.02507, 2025)",
    "cutkosky2020": "Cutkosky, Mehta (ICML 2020)",
}
# The glue key of a page's claim record: RECORD_PREFIX + claim id.
RECORD_PREFIX = "claim__"


def _clean(v):
    """JSON-safe evidence: floats that are not finite become None, NumPy scalars Python ones."""
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 0) == 0:
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


@dataclass(frozen=True)
class Claim:
    """One claim and its verdict: ``id`` (unique in the book), ``paper`` (a key of
    :data:`PAPERS`), ``where`` (theorem, figure, section), ``statement`` (the claim in
    words), ``status`` (one of :data:`STATUSES`), ``evidence`` (the key numbers), ``kind``
    (:data:`KINDS`), ``profile`` it was decided at, and ``page`` (filled by the runner)."""

    id: str
    paper: str
    where: str
    statement: str
    status: str
    evidence: dict = field(default_factory=dict)
    kind: str = "finding"
    profile: str = ""
    page: str = ""

    def __post_init__(self):
        if not self.id or not all(c.isalnum() or c in "_-." for c in self.id):
            raise ValueError(f"Invalid id: {self.id!r} (letters, digits, '_', '-', '.')")
        if self.paper not in PAPERS:
            raise ValueError(f"Invalid paper: {self.paper!r} (choose from {', '.join(PAPERS)})")
        if self.status not in STATUSES:
            raise ValueError(
                f"Invalid status: {self.status!r} for claim {self.id!r} (choose from {', '.join(STATUSES)})"
            )
        if self.kind not in KINDS:
            raise ValueError(f"Invalid kind: {self.kind!r} (choose from {', '.join(KINDS)})")
        if not isinstance(self.evidence, dict):
            raise ValueError(f"Invalid evidence: {self.evidence!r} (a dict of named numbers)")
        object.__setattr__(self, "evidence", _clean(dict(self.evidence)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Claim":
        return cls(**d)


def decide(ok, *, decidable: bool = True, testable: bool = True) -> str:
    """The status of a check: ``not-testable`` unless ``testable``, ``inconclusive`` unless
    ``decidable`` (or ``ok`` is None / nan), else ``holds`` or ``fails`` by ``ok``."""
    if not testable:
        return "not-testable"
    if not decidable or ok is None or (isinstance(ok, float) and math.isnan(ok)):
        return "inconclusive"
    return "holds" if bool(ok) else "fails"


def from_interval(lo: float, hi: float, threshold: float, *, above: bool = True) -> str:
    """The status of "the quantity is above (below) ``threshold``" from an interval [lo, hi]:
    ``holds`` when the whole interval is on the claimed side, ``fails`` when it is all on the
    other, ``inconclusive`` when it straddles the threshold or is undefined (nan)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if above:
        return "holds" if lo > threshold else "fails" if hi <= threshold else "inconclusive"
    return "holds" if hi < threshold else "fails" if lo >= threshold else "inconclusive"


def within(lo: float, hi: float, tol: float) -> str:
    """The status of "the quantity is within ``tol`` of zero" (a two-sided match) from its
    interval [lo, hi]: ``holds`` when the interval lies inside [-tol, tol], ``fails`` when it
    lies entirely outside it, ``inconclusive`` otherwise (or when undefined)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if -tol <= lo and hi <= tol:
        return "holds"
    return "fails" if hi < -tol or lo > tol else "inconclusive"


def band_status(lo: float, hi: float, low: float, high: float) -> str:
    """The status of "the quantity lies in the band (low, high)" from its interval [lo, hi]:
    ``holds`` when the interval is inside the band, ``fails`` when it is wholly outside it
    (all at or below ``low``, or all at or above ``high``), ``inconclusive`` otherwise (it
    straddles an edge, or is nan)."""
    if not all(math.isfinite(float(v)) for v in (lo, hi)):
        return "inconclusive"
    if low < lo and hi < high:
        return "holds"
    if hi <= low or lo >= high:
        return "fails"
    return "inconclusive"


def combine_statuses(statuses) -> str:
    """One verdict from the verdicts of the parts of a claim: ``fails`` if any part fails,
    ``holds`` if all hold, ``not-testable`` if all are not testable, else ``inconclusive``
    (an empty list is ``not-testable``)."""
    st = list(statuses)
    for s in st:
        if s not in STATUSES:
            raise ValueError(f"Invalid status: {s!r} (choose from {', '.join(STATUSES)})")
    if not st or all(s == "not-testable" for s in st):
        return "not-testable"
    if "fails" in st:
        return "fails"
    return "holds" if all(s == "holds" for s in st) else "inconclusive"


def collect(records: dict[str, list[dict]]) -> list[dict]:
    """The claims of every page (``{page: [claim dict, ...]}``) as one list in page order,
    each validated and its ``page`` set; a claim id used twice is an error."""
    out, seen = [], {}
    for page, claims in records.items():
        for d in claims:
            c = Claim.from_dict({**d, "page": page})
            if c.id in seen:
                raise ValueError(f"Invalid claims: id {c.id!r} used on pages {seen[c.id]!r} and {page!r}")
            seen[c.id] = page
            out.append(json.loads(c.to_json()))
    return out


def summary(claims: list[dict]) -> dict:
    """Counts of findings per status and the number of identity checks."""
    counts = {s: 0 for s in STATUSES}
    for c in claims:
        if c["kind"] == "finding":
            counts[c["status"]] += 1
    counts["identity"] = sum(c["kind"] == "identity" for c in claims)
    counts["total"] = len(claims)
    return counts


def summary_sentence(claims: list[dict]) -> str:
    """One sentence on the scorecard: how many findings hold, fail, are inconclusive or not
    testable, and how many checks are identities."""
    c = summary(claims)
    findings = c["total"] - c["identity"]
    parts = [f"{c[s]} {'hold' if s == 'holds' else 'fail' if s == 'fails' else 'are ' + s}" for s in STATUSES]
    return (
        f"Of the {findings} findings checked, " + ", ".join(parts[:-1]) + f" and {parts[-1]}; "
        f"{c['identity']} further checks are identities (true by construction, verified as tests)."
    )


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def html_table(claims: list[dict], page_titles: dict | None = None) -> str:
    """The scorecard as an HTML table: one row per claim -- the claim, paper and where, kind,
    status, key numbers, the profile it was decided at and a link to its page."""
    import html

    titles = page_titles or {}
    head = ["claim", "paper", "where", "kind", "status", "key numbers", "profile", "evidence"]
    rows = []
    for c in claims:
        numbers = "; ".join(f"{k} = {_fmt(v)}" for k, v in c["evidence"].items())
        link = f'<a href="{html.escape(c["page"])}.html">{html.escape(titles.get(c["page"], c["page"]))}</a>'
        cells = [
            html.escape(c["statement"]),
            html.escape(PAPERS.get(c["paper"], c["paper"])),
            html.escape(c["where"]),
            "identity check" if c["kind"] == "identity" else "finding",
            f'<strong class="claim-{c["status"]}">{c["status"]}</strong>',
            html.escape(numbers),
            html.escape(c["profile"]),
            link,
        ]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return (
        '<table class="scorecard">\n<thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )
