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
# # Build status
#
# The profile, package versions, machine and per-page execution times of the run that
# produced this book. The runner (`python -m clipcore.book`) records them as it executes
# each page; this page is executed last. The exact versions of every package are pinned in
# `requirements-lock.txt`, which `make` installs.

# %% tags=["parameters"]
profile = "ci"  # smoke, ci or paper: the scale of the book this page describes
device = "auto"  # auto, cpu, cuda, cuda:N or mps: shown as the device training pages use
seed = 0  # unused here
data_dir = None  # unused here
results_dir = "results"  # unused here

# %% tags=["hide-cell"]
import json
from pathlib import Path

import torch

from clipcore.book.provenance import device_label
from clipcore.book.runner import page_rows
from clipcore.pages import show_table
from clipcore.profiles import check_profile

check_profile(profile)
status_file = Path("book/_status.json")
status = json.loads(status_file.read_text()) if status_file.exists() else {"pages": [], "versions": {}}

# %% [markdown]
# ## Machine and packages

# %% tags=["remove-input"]
machine = [
    dict(what="profile", value=profile),
    dict(what="commit", value=status.get("commit") or "unrecorded"),
    dict(what="device used by training pages", value=device_label(device)),
    dict(what="CUDA available", value=torch.cuda.is_available()),
    dict(what="Python", value=status.get("python") or "unrecorded"),
    dict(what="platform", value=status.get("platform") or "unrecorded"),
    dict(what="recorded", value=status.get("written") or "unrecorded"),
]
machine += [dict(what=pkg, value=v or "not installed") for pkg, v in status.get("versions", {}).items()]
show_table(machine, {"what": "", "value": ""}, caption="The run that produced this book.")

# %% [markdown]
# ## Execution time per page

# %% tags=["remove-input"]
show_table(
    page_rows(status),
    {"page": "page", "profile": "profile", "seconds": "seconds", "outcome": "outcome"},
    formats={"seconds": ".1f"},
    caption="Wall-clock time of each page under the runner (a failed or interrupted page records none).",
)
