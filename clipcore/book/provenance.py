"""What the runner adds to an executed page: its provenance note (profile, commit, time, device,
source downloads) in the margin, the injected-parameters cell collapsed under a one-line
summary, and the page's source as a clean ``.ipynb`` that papermill can run."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from .parameters import declared_parameters, read_page
from .sources import ROOT, Page

__all__ = [
    "PROVENANCE_CLASS",
    "git_commit",
    "device_label",
    "parameter_summary",
    "provenance_note",
    "annotate",
    "write_source_notebook",
]

PROVENANCE_CLASS = "clipcore-provenance"
_SUMMARY_CHARS = 150


def git_commit(root: Path = ROOT) -> str:
    """The short commit of ``root``'s checkout, with ``+`` when tracked files differ from it;
    ``"unknown"`` outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def device_label(device) -> str:
    """The device a page's ``device`` parameter resolves to here, with the GPU's name."""
    import torch

    from ..runtime import resolve_device

    try:
        dev = resolve_device(device)
    except ValueError:
        return str(device)
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return str(dev)


def _short(value) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict, str)) or value is None else repr(value)
    return text.replace("null", "None") if value is None else text


def parameter_summary(page: Page, values: dict) -> str:
    """One line: the profile, and every injected value that differs from the page's own
    default (``profile smoke; n_grid = 2001, rtol = 0.05``), cut to about 150 characters."""
    declared = declared_parameters(page)
    changed = [
        f"{k} = {_short(v)}"
        for k, v in values.items()
        if k != "profile" and k in declared and v != declared[k].default
    ]
    text = f"profile {values.get('profile', '?')}; " + (
        ", ".join(changed) if changed else "the page's defaults"
    )
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1].rstrip(", ") + "…"


def provenance_note(
    page: Page, values: dict, *, commit: str, started: float, seconds: float, device: str
) -> str:
    """The margin note (MyST) placed under the page's title."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    name = page.name
    return "\n".join(
        [
            ":::{margin} Provenance",
            f":class: {PROVENANCE_CLASS}",
            f"- **profile** `{values.get('profile', '?')}`",
            f"- **commit** `{commit}`",
            f"- **executed** {when}, in {seconds:.1f} s",
            f"- **device** {device}",
            f"- **source** {{download}}`{name}.py <{name}.py>`, "
            f"{{download}}`{name}.ipynb <_data/{name}/{name}.ipynb>`",
            ":::",
        ]
    )


def _insert_after_title(source: str, note: str) -> str:
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("# "):
            return "\n".join(lines[: i + 1] + ["", note, ""] + lines[i + 1 :])
    return note + "\n\n" + source


def annotate(nb, page: Page, values: dict, note: str) -> None:
    """In place: the provenance ``note`` under the title of the first Markdown cell, and the
    injected-parameters cell collapsed (``hide-cell``) behind :func:`parameter_summary`."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _insert_after_title(cell.source, note)
            break
    else:
        nb.cells.insert(0, _markdown_cell(note))
    summary = parameter_summary(page, values)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags:
            if "hide-cell" not in tags:
                tags.append("hide-cell")
            cell.metadata["mystnb"] = {
                "code_prompt_show": f"Parameters of this run: {summary}",
                "code_prompt_hide": "Hide the parameters of this run",
            }


def _markdown_cell(text: str):
    import nbformat

    return nbformat.v4.new_markdown_cell(text)


def write_source_notebook(page: Page, folder: Path) -> Path:
    """``folder/<page>.ipynb``: the page's source, unexecuted, its ``parameters`` cell tagged,
    so that ``papermill <page>.ipynb out.ipynb -p profile paper`` runs it."""
    import nbformat

    nb = read_page(page)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{page.name}.ipynb"
    nbformat.write(nb, path)
    return path
