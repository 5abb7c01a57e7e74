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
profile = "ci"  # smoke, ci or paper: the scale the claims were decided at (book/params.yml)
device = "auto"  # unused here (the page only reads the gathered claims)
seed = 0  # unused here
data_dir = None  # unused here
results_dir = "results"  # unused here
claims_file = "book/_claims.json"  # the claims the runner gathered from the executed pages

# %% tags=["hide-cell"]
import json
from pathlib import Path

from IPython.display import HTML
from myst_nb import glue

from clipcore.book import executable_pages
from clipcore.book.scorecard import chapter_summary_html, page_titles
from clipcore.claims import STATUSES, html_table, summary, summary_sentence
from clipcore.pages import glue_number, glue_text
from clipcore.profiles import check_profile

check_profile(profile)
claims = json.loads(Path(claims_file).read_text())
titles = page_titles(executable_pages())
counts = summary(claims)
for status in STATUSES:
    glue_number(f"sc_{status.replace('-', '_')}", counts[status])
glue_number("sc_identity", counts["identity"])
glue_number("sc_total", counts["total"])
glue_text("sc_summary", summary_sentence(claims))
# Pasted on the introduction: a glue from another page can be text or HTML, not Markdown.
glue("sc_summary_html", HTML(summary_sentence(claims)), display=False)
glue("sc_chapters_html", HTML(chapter_summary_html(claims, titles)), display=False)
profiles = sorted({c["profile"] for c in claims if c["profile"]})
_ = glue_text("sc_profiles", ", ".join(f"`{p}`" for p in profiles) or "unrecorded")

# %% [markdown]
# {glue:md}`sc_summary` The claims were decided at the {glue:md}`sc_profiles` profile; a
# `paper`-profile build decides them at the papers' scale.
#
# ## By chapter

# %% tags=["remove-input"]
HTML(chapter_summary_html(claims, titles))

# %% [markdown]
# ## Every claim

# %% tags=["remove-input"]
HTML(html_table(claims, titles))
