# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Claims scorecard
#
# One row per claim of the two papers, and of the follow-up work the book covers, that a page
# of this book checks: the claim in words, where the paper makes it, the status the page
# computed, the numbers it was decided on, the profile it was decided at, and a link to the
# page with the evidence. A claim ends in one of four outcomes:
#
# - **holds** / **fails**: the data decide, by a criterion each page states before its numbers;
# - **inconclusive**: the data cannot decide at this scale (an interval too wide for the
#   criterion, too few points, a horizon too short);
# - **not-testable**: the check cannot be made here (e.g. a bound beyond any horizon we can run,
#   or a number reported for data this build does not have).
#
# Checks that are true by construction (algebraic identities, proved by the test suite) are
# marked as identity checks: they confirm the code, not the papers.

# %% tags=["parameters"]
profile = "ci"
device = "auto"
seed = 0
data_dir = None
results_dir = "results"
claims_file = "book/_claims.json"  # the claims the runner gathered from the executed pages

# %%
import json
from pathlib import Path

from IPython.display import HTML
from myst_nb import glue

from clipcore.claims import STATUSES, html_table, summary, summary_sentence
from clipcore.pages import glue_number, glue_text
from clipcore.profiles import check_profile

check_profile(profile)
claims = json.loads(Path(claims_file).read_text())
counts = summary(claims)
for status in STATUSES:
    glue_number(f"sc_{status.replace('-', '_')}", counts[status])
glue_number("sc_identity", counts["identity"])
glue_number("sc_total", counts["total"])
glue_text("sc_summary", summary_sentence(claims))
# Pasted on the introduction: a glue from another page can be text or HTML, not Markdown.
glue("sc_summary_html", HTML(summary_sentence(claims)), display=False)
profiles = sorted({c["profile"] for c in claims if c["profile"]})
glue_text("sc_profiles", ", ".join(f"`{p}`" for p in profiles) or "unrecorded")

# %% [markdown]
# {glue:md}`sc_summary` The claims were decided at the {glue:md}`sc_profiles` profile; a
# `paper`-profile build decides them at the papers' scale.

# %% tags=["remove-input"]
HTML(html_table(claims))
