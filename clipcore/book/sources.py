"""What the runner reads: the pages of ``_toc.yml`` and ``book/params.yml`` (YAML 1.2,
unique keys), each problem a one-line :class:`BookError` naming the file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import yaml12
from ..profiles import PROFILES

ROOT = Path(__file__).resolve().parents[2]
# Injected into every page; each page must declare them in its parameters cell.
COMMON_PARAMETERS = ("profile", "device", "seed", "data_dir", "results_dir")
KERNEL = "python3"
# Sources Jupyter Book (myst-nb over Sphinx) renders for a toc entry, besides the runner's .py.
STATIC_SUFFIXES = (".md", ".rst", ".ipynb")
PARAMS_FILE = "book/params.yml"


class BookError(ValueError):
    """A bad page, profile or parameter: the message names it."""


@dataclass(frozen=True)
class Page:
    name: str
    source: Path  # book/NAME.py

    @property
    def output(self) -> Path:
        return self.source.with_suffix(".ipynb")


class _UniqueKeyLoader(yaml12.Loader):
    """yaml12's loader, refusing a key given twice in one mapping (YAML requires unique keys;
    PyYAML would keep the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path, label: str):
    """The YAML 1.2 document in ``path``; a one-line :class:`BookError` naming ``label`` when
    it is missing, malformed or empty."""
    try:
        text = path.read_text()
    except OSError as err:
        raise BookError(f"{label}: cannot be read ({err.strerror or err})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = str(getattr(err, "problem", None) or err).splitlines()[0]
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise BookError(f"{label}: not valid YAML ({where}{problem})") from None
    if data is None:
        raise BookError(f"{label} is empty")
    return data


def _toc_files(entries) -> list[str]:
    files = []
    for entry in entries or []:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("chapters", "sections"):
            files.extend(_toc_files(entry.get(key)))
        for part in entry.get("parts", []) or []:
            files.extend(_toc_files(part.get("chapters")))
    return files


def _is_executed_notebook(path: Path) -> bool:
    """Whether ``path`` is a notebook this runner (papermill) wrote, not a source."""
    try:
        return "papermill" in json.loads(path.read_text()).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return False


def executable_pages(root: Path = ROOT) -> list[Page]:
    """Pages of ``_toc.yml`` that have a ``.py`` source, in book order. A toc entry with no
    source at all (no ``.py``, ``.md``, ``.rst``, nor an ``.ipynb`` that is not an executed
    notebook left by an earlier run) is a :class:`BookError` naming it."""
    toc = _read_yaml(root / "_toc.yml", "_toc.yml")
    if not isinstance(toc, dict):
        raise BookError(f"_toc.yml: expected a mapping, got {type(toc).__name__}")
    files = ([toc["root"]] if "root" in toc else []) + _toc_files(toc.get("parts", []))
    files += _toc_files(toc.get("chapters", []))
    pages = []
    for f in files:
        base = root / f
        if base.suffix in (".py", *STATIC_SUFFIXES):
            base = base.with_suffix("")
        src = base.with_suffix(".py")
        if src.exists():
            pages.append(Page(base.name, src))
            continue
        static = [base.with_suffix(s) for s in STATIC_SUFFIXES if base.with_suffix(s).exists()]
        if not any(s.suffix != ".ipynb" or not _is_executed_notebook(s) for s in static):
            stale = (
                f"; {static[0].relative_to(root)} is an executed notebook of an earlier run" if static else ""
            )
            raise BookError(
                f"_toc.yml: page {f!r} has no source (no {base.relative_to(root)}.py, "
                f".md, .rst or .ipynb){stale}"
            )
    return pages


def load_params(root: Path = ROOT) -> dict:
    """``book/params.yml``, read as YAML 1.2 and checked for shape: ``common`` and one section
    per profile, each page's entry a mapping of parameter names to values."""
    params = _read_yaml(root / PARAMS_FILE, PARAMS_FILE)
    if not isinstance(params, dict):
        raise BookError(f"{PARAMS_FILE}: expected a mapping of profiles, got {type(params).__name__}")
    unknown = set(params) - set(PROFILES) - {"common"}
    if unknown:
        raise BookError(
            f"{PARAMS_FILE}: unknown profile(s) {sorted(unknown, key=str)}; profiles are {', '.join(PROFILES)}"
        )
    for section, entries in params.items():
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise BookError(f"{PARAMS_FILE}[{section}]: expected a mapping, got {entries!r}")
        tables = {section: entries} if section == "common" else entries
        for name, table in tables.items():
            label = f"{PARAMS_FILE}[{section}]" + ("" if section == "common" else f"[{name}]")
            if table is None:
                continue
            if not isinstance(table, dict):
                raise BookError(f"{label}: expected a mapping of parameter: value, got {table!r}")
            for key in table:
                if not isinstance(key, str):
                    raise BookError(f"{label}: {key!r} is not a parameter name")
    return params
