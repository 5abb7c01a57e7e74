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
# each page; this page is executed last.

# %% tags=["parameters"]
profile = "ci"
device = "auto"
seed = 0
data_dir = None
results_dir = "results"

# %%
import json
import math
from pathlib import Path

import torch

from clipcore.profiles import check_profile
from clipcore.runtime import resolve_device

check_profile(profile)
status_file = Path("book/_status.json")
status = json.loads(status_file.read_text()) if status_file.exists() else {"pages": [], "versions": {}}
print(f"profile: {profile}")
print(
    f"device used by training pages: {resolve_device(device)}"
    + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "")
)
print(f"python {status.get('python')} on {status.get('platform')}")
for pkg, version in status.get("versions", {}).items():
    print(f"  {pkg:>12}: {version}")

# %%
rows = [e for e in status["pages"] if e.get("page") != "status"]


def seconds(e):
    """The page's time, or None: a failed or interrupted page records none (older records: NaN)."""
    s = e.get("seconds")
    return s if isinstance(s, (int, float)) and math.isfinite(s) else None


print(f"{'page':<28}{'profile':<9}{'seconds':>9}  ok")
for e in rows:
    s = seconds(e)
    state = "interrupted" if e.get("interrupted") else e.get("ok")
    print(f"{e.get('page', '?'):<28}{e.get('profile', '?'):<9}{'-' if s is None else f'{s:.1f}':>9}  {state}")
print(f"{'total':<37}{sum(seconds(e) or 0.0 for e in rows if e.get('ok')):>9.1f}")
