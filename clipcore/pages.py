"""What a book page glues into its prose: numbers, Markdown fragments and computed verdicts.

Pages glue every number their prose states with :func:`glue_number` or :func:`glue_verdict`,
and the prose pastes them with ``{glue:text}`` / ``{glue:md}``: a verdict is computed by the
run that produced the figure, never typed into the text. The page's device and seeds come
from :mod:`clipcore.runtime`, its profile is checked by :func:`clipcore.profiles.check_profile`.
"""

from __future__ import annotations

__all__ = ["glue_number", "glue_text", "glue_verdict", "glue_claim_verdicts", "glue_claim"]


def _glue(key, value):
    from myst_nb import glue

    glue(key, value, display=False)


def glue_number(key: str, value) -> float:
    """Glue a number for ``{glue:text}`key:fmt```; returns it as a float."""
    value = float(value)
    _glue(key, value)
    return value


def glue_text(key: str, text: str) -> str:
    """Glue inline Markdown for ``{glue:md}`key```."""
    from IPython.display import Markdown

    _glue(key, Markdown(text))
    return text


def glue_verdict(key: str, ok: bool, yes: str, no: str) -> bool:
    """Glue the sentence fragment that matches the computed truth value ``ok``."""
    ok = bool(ok)
    glue_text(key, f"**{yes}**" if ok else f"**{no}**")
    return ok


def glue_claim_verdicts(prefix: str, verdicts) -> None:
    """Glue, per estimator ``est`` of ``verdicts`` (:func:`clipcore.stats.claim_verdicts`),
    ``{prefix}_claim_{est}`` ("reproduced" / "not reproduced") and the numbers
    ``{prefix}_rho_{est}``, ``{prefix}_lo_{est}``, ``{prefix}_gap_{est}``."""
    for est, v in verdicts.items():
        glue_verdict(f"{prefix}_claim_{est}", v["ok"], "reproduced", "not reproduced")
        glue_number(f"{prefix}_rho_{est}", v["rho"])
        glue_number(f"{prefix}_lo_{est}", v["lo"])
        glue_number(f"{prefix}_gap_{est}", v["gap"])


def glue_claim(
    id: str,
    *,
    paper: str,
    where: str,
    statement: str,
    status: str,
    evidence: dict | None = None,
    kind: str = "finding",
    profile: str = "",
) -> None:
    """Record a claim's verdict for the scorecard and glue its status for the prose.

    Glues ``{id}`` as the status in bold Markdown (``{glue:md}`id```: **holds**, **fails**,
    **inconclusive**, **not-testable**; an identity check reads "identity holds") and the
    claim itself as JSON under ``clipcore.claims.RECORD_PREFIX + id``, which the runner
    collects into ``book/_claims.json``. Returns None (no stray output in the page)."""
    from IPython.display import Markdown

    from .claims import RECORD_PREFIX, Claim

    claim = Claim(id, paper, where, statement, status, dict(evidence or {}), kind, profile)
    text = f"identity {status}" if kind == "identity" else status
    glue_text(id, f"**{text}**")
    # Stored as a text mime (nbformat admits dicts only under JSON mime types); never pasted.
    _glue(RECORD_PREFIX + id, Markdown(claim.to_json()))
