"""Execute the book's pages with papermill under a profile.

    python -m clipcore.book [--profile ci] [--page NAME ...] [-p KEY VALUE ...]

Each page listed in ``_toc.yml`` whose source is a jupytext percent-format ``book/NAME.py``
is read with jupytext, executed with papermill (kernel ``python3``) with the parameters of
``book/params.yml[profile][NAME]`` plus the common ones (``profile``, ``device``, ``seed``,
``data_dir``, ``results_dir``) and any ``-p`` overrides, and written to ``book/NAME.ipynb``,
where Jupyter Book (``execute_notebooks: off``) reads it. Unknown pages, profiles and
parameters are errors that name the culprit; the parameters a page accepts are exactly the
names assigned in its cell tagged ``parameters``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .profiles import DEFAULT_PROFILE, PROFILES

ROOT = Path(__file__).resolve().parent.parent
# Injected into every page; each page must declare them in its parameters cell.
COMMON_PARAMETERS = ("profile", "device", "seed", "data_dir", "results_dir")
KERNEL = "python3"


class BookError(ValueError):
    """A bad page, profile or parameter: the message names it."""


@dataclass(frozen=True)
class Page:
    name: str
    source: Path  # book/NAME.py

    @property
    def output(self) -> Path:
        return self.source.with_suffix(".ipynb")


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


def executable_pages(root: Path = ROOT) -> list[Page]:
    """Pages of ``_toc.yml`` that have a ``.py`` source, in book order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = ([toc["root"]] if "root" in toc else []) + _toc_files(toc.get("parts", []))
    files += _toc_files(toc.get("chapters", []))
    pages = []
    for f in files:
        src = (root / f).with_suffix(".py")
        if src.exists():
            pages.append(Page(Path(f).name, src))
    return pages


def load_params(root: Path = ROOT) -> dict:
    params = yaml.safe_load((root / "book" / "params.yml").read_text()) or {}
    unknown = set(params) - set(PROFILES) - {"common"}
    if unknown:
        raise BookError(
            f"book/params.yml: unknown profile(s) {sorted(unknown)}; profiles are {', '.join(PROFILES)}"
        )
    return params


def read_page(page: Page):
    """The page as a notebook, with the kernel and cell tags papermill expects."""
    import jupytext

    nb = jupytext.read(page.source)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    return nb


def declared_parameters(page: Page) -> dict:
    """Names and default values assigned in the page's ``parameters`` cell."""
    from papermill.inspection import _infer_parameters

    nb = read_page(page)
    if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
        raise BookError(f"page {page.name!r} ({page.source}) has no cell tagged 'parameters'")
    return {p.name: p.default for p in _infer_parameters(nb)}


def resolve_parameters(page: Page, profile: str, params: dict, common: dict, overrides: dict) -> dict:
    declared = declared_parameters(page)
    missing = [k for k in COMMON_PARAMETERS if k not in declared]
    if missing:
        raise BookError(f"page {page.name!r} does not declare the common parameter(s) {missing}")
    values = {**params.get("common", {}), **common, "profile": profile}
    values.update((params.get(profile) or {}).get(page.name) or {})
    values.update(overrides)
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise BookError(
            f"unknown parameter(s) {unknown} for page {page.name!r}; it accepts {sorted(declared)}"
        )
    return values


def select_pages(names: list[str] | None, root: Path = ROOT) -> list[Page]:
    pages = executable_pages(root)
    if not names:
        return pages
    by_name = {p.name: p for p in pages}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BookError(f"unknown page(s) {unknown}; pages are {sorted(by_name)}")
    return [by_name[n] for n in names]


def check_params_file(params: dict, root: Path = ROOT) -> None:
    """Every page named in params.yml must exist (catches typos that would be ignored)."""
    names = {p.name for p in executable_pages(root)}
    for profile in PROFILES:
        extra = set((params.get(profile) or {})) - names
        if extra:
            raise BookError(f"book/params.yml[{profile}] names unknown page(s) {sorted(extra)}")


def execute_page(page: Page, values: dict, *, cwd: Path = ROOT, output_dir: Path | None = None) -> float:
    """Execute one page; the notebook lands atomically in ``output_dir`` (default: beside the
    source, where the book reads it). Returns seconds."""
    output = Path(output_dir) / f"{page.name}.ipynb" if output_dir else page.output
    import jupytext
    import papermill

    nb = read_page(page)
    start = time.perf_counter()
    fd, tmp_in = tempfile.mkstemp(suffix=".ipynb", dir=page.source.parent, prefix=f".{page.name}.in.")
    os.close(fd)
    tmp_out = output.with_name(f".{page.name}.out.ipynb")
    try:
        jupytext.write(nb, tmp_in, fmt="ipynb")
        try:
            papermill.execute_notebook(
                tmp_in,
                str(tmp_out),
                parameters=values,
                kernel_name=KERNEL,
                cwd=str(cwd),
                progress_bar=False,
                report_mode=False,
            )
        finally:
            # Keep the executed notebook even on failure, so the error can be read there.
            if tmp_out.exists():
                os.replace(tmp_out, output)
    finally:
        os.unlink(tmp_in)
    return time.perf_counter() - start


def _parse_value(text: str):
    return yaml.safe_load(text)


def write_status(entries: list[dict], profile: str, path: Path) -> None:
    """Record execution times and versions for the status page (``book/_status.json``)."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("clipcore", "torch", "numpy", "matplotlib", "papermill", "jupytext", "jupyter-book"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    status = {
        "profile": profile,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "pages": entries,
        "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    old = {}
    if path.exists():
        try:
            old = {e["page"]: e for e in json.loads(path.read_text()).get("pages", [])}
        except (ValueError, KeyError):
            old = {}
    old.update({e["page"]: e for e in entries})
    status["pages"] = list(old.values())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=2))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clipcore.book", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"one of {', '.join(PROFILES)} (default: {DEFAULT_PROFILE})",
    )
    ap.add_argument(
        "--page",
        action="append",
        dest="pages",
        metavar="NAME",
        help="execute only this page (repeatable); default: every page of _toc.yml",
    )
    ap.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override a page parameter (VALUE parsed as YAML)",
    )
    ap.add_argument("--device", default=None, help="'auto', 'cpu', 'cuda', ... (default from params.yml)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--results-dir", default=None)
    ap.add_argument(
        "--output-dir",
        default=None,
        help="write executed notebooks (and the status record) here instead of book/",
    )
    ap.add_argument("--list", action="store_true", help="list the pages and their parameters, then exit")
    args = ap.parse_args(argv)

    os.environ.pop("MPLBACKEND", None)  # an inherited Agg backend drops every figure
    try:
        if args.profile not in PROFILES:
            raise BookError(f"unknown profile {args.profile!r}; profiles are {', '.join(PROFILES)}")
        params = load_params()
        check_params_file(params)
        pages = select_pages(args.pages)
        common = {
            k: v
            for k, v in dict(
                device=args.device, seed=args.seed, data_dir=args.data_dir, results_dir=args.results_dir
            ).items()
            if v is not None
        }
        overrides = {k: _parse_value(v) for k, v in args.parameter}
        plan = [(p, resolve_parameters(p, args.profile, params, common, overrides)) for p in pages]
    except BookError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    if args.list:
        for page, values in plan:
            print(f"{page.name}: {values}")
        return 0

    failures = []
    total = time.perf_counter()
    out_dir = Path(args.output_dir) if args.output_dir else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    status_file = (out_dir or ROOT / "book") / "_status.json"
    if not args.pages and status_file.exists():
        status_file.unlink()  # a full run starts a fresh record
    for page, values in plan:
        print(f"[{args.profile}] {page.name} ...", flush=True)
        ok = True
        try:
            seconds = execute_page(page, values, output_dir=out_dir)
        except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
            seconds, ok = float("nan"), False
            failures.append(page.name)
            print(f"  FAILED: {type(e).__name__}: {str(e)[-2000:]}", file=sys.stderr, flush=True)
        else:
            print(
                f"  done in {seconds:.1f} s -> {(out_dir or page.source.parent) / (page.name + '.ipynb')}",
                flush=True,
            )
        write_status(
            [{"page": page.name, "seconds": round(seconds, 2), "ok": ok, "profile": args.profile}],
            args.profile,
            status_file,
        )
    print(f"{len(plan) - len(failures)}/{len(plan)} pages executed in {time.perf_counter() - total:.1f} s")
    if failures:
        print(f"error: page(s) failed: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
