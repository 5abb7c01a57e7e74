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


_VERDICT_NUMBERS = ("rho", "lo", "hi", "gap", "gap_lo", "gap_hi")


def glue_claim_verdicts(
    prefix: str, verdicts, *, paper: str, where: str, statement: str, profile: str = ""
) -> None:
    """Record, per estimator ``est`` of ``verdicts`` (:func:`clipcore.stats.claim_verdicts`),
    the claim on the raw correlation (id ``{prefix}_corr_{est}``) and on the detrended one
    (``{prefix}_corr_detrended_{est}``) with :func:`glue_claim`, and glue the numbers
    ``{prefix}_{name}_{est}`` and ``{prefix}_{name}_detrended_{est}`` for ``name`` in rho, lo,
    hi, gap, gap_lo, gap_hi."""
    for est, v in verdicts.items():
        for suffix, what in (
            ("", "the rank correlation"),
            ("_detrended", "the rank correlation given the step"),
        ):
            evidence = {name: v[name + suffix] for name in _VERDICT_NUMBERS}
            for name, value in evidence.items():
                glue_number(f"{prefix}_{name}{suffix}_{est}", value)
            glue_claim(
                f"{prefix}_corr{suffix}_{est}",
                paper=paper,
                where=where,
                statement=f"{statement} ({what}, estimator {est})",
                status=v["status" + suffix],
                evidence={**evidence, "n_min": v["n_min"]},
                profile=profile,
            )


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
