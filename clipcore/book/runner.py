"""Executing pages with papermill (``python -m clipcore.book``) and the status record
``_status.json`` the status page shows."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from ..pages import PAGE_DIR_ENV, PAGE_ENV, files_folder
from ..profiles import DEFAULT_PROFILE, PROFILES
from .parameters import (
    check_params_file,
    parse_overrides,
    parse_seed,
    read_page,
    resolve_parameters,
    select_pages,
)
from .provenance import annotate, device_label, git_commit, provenance_note, write_source_notebook
from .scorecard import CLAIMS_FILE, SUMMARY_PAGES, gather_claims
from .sources import KERNEL, ROOT, BookError, Page, load_params


def execute_page(page: Page, values: dict, *, cwd: Path = ROOT, output_dir: Path | None = None) -> float:
    """Execute one page; the notebook lands atomically in ``output_dir`` (default: beside the
    source, where the book reads it). Returns seconds.

    The page runs with ``CLIPCORE_PAGE`` / ``CLIPCORE_PAGE_DIR`` set (:mod:`clipcore.pages`
    writes its figure data to ``<output dir>/_data/<page>/``). A finished notebook gets its
    provenance note and a collapsed injected-parameters cell
    (:func:`~clipcore.book.provenance.annotate`), and the clean source notebook is written
    beside the figure data.

    The executed notebook replaces the previous one only when the page finished, or failed in
    a cell (``PapermillExecutionError``, re-raised: that notebook shows the error). On any
    other exception (``KeyboardInterrupt`` included) the previous notebook stays, the partial
    one is deleted and the exception propagates."""
    output = Path(output_dir) / f"{page.name}.ipynb" if output_dir else page.output
    import jupytext
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb = read_page(page)
    started = time.time()
    start = time.perf_counter()
    fd, tmp_in = tempfile.mkstemp(suffix=".ipynb", dir=page.source.parent, prefix=f".{page.name}.in.")
    os.close(fd)
    tmp_out = output.with_name(f".{page.name}.out.ipynb")
    env = {PAGE_ENV: page.name, PAGE_DIR_ENV: str(output.parent.resolve())}
    saved = {k: os.environ.get(k) for k in env}
    try:
        jupytext.write(nb, tmp_in, fmt="ipynb")
        os.environ.update(env)  # the kernel inherits them
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
        except PapermillExecutionError:
            if tmp_out.exists():  # keep it: the error can be read there
                os.replace(tmp_out, output)
            raise
        except BaseException:
            tmp_out.unlink(missing_ok=True)  # partial: the previous notebook stays
            raise
        seconds = time.perf_counter() - start
        done = nbformat.read(tmp_out, as_version=4)
        note = provenance_note(
            page,
            values,
            commit=git_commit(cwd),
            started=started,
            seconds=seconds,
            device=device_label(values.get("device", "auto")),
        )
        annotate(done, page, values, note)
        nbformat.write(done, tmp_out)
        write_source_notebook(page, files_folder(output.parent, page.name))
        os.replace(tmp_out, output)
    finally:
        os.unlink(tmp_in)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return seconds


def _finite(obj):
    """``obj`` with every NaN or infinite float replaced by None (strict JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


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
        "commit": git_commit(),
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
        except (ValueError, KeyError, TypeError, AttributeError):
            old = {}
    old.update({e["page"]: e for e in entries})
    status["pages"] = list(old.values())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_finite(status), indent=2, allow_nan=False))
    os.replace(tmp, path)


def page_rows(status: dict) -> list[dict]:
    """The status record's pages (the status page itself left out) as table rows: page,
    profile, seconds (None for a failed or interrupted page, or an old NaN), and the outcome
    (``ok``, ``failed``, ``interrupted``); then a row of the total time of the pages that
    finished."""

    def seconds(e):
        s = e.get("seconds")
        return float(s) if isinstance(s, (int, float)) and math.isfinite(s) else None

    rows = []
    for e in status.get("pages", []):
        if e.get("page") == "status":
            continue
        outcome = "interrupted" if e.get("interrupted") else "ok" if e.get("ok") else "failed"
        rows.append(
            dict(page=e.get("page", "?"), profile=e.get("profile", "?"), seconds=seconds(e), outcome=outcome)
        )
    total = sum(r["seconds"] or 0.0 for r in rows if r["outcome"] == "ok")
    rows.append(dict(page="total", profile="", seconds=total, outcome=""))
    return rows


def _entry(page: Page, profile: str, seconds, ok: bool, **extra) -> dict:
    seconds = round(seconds, 2) if seconds is not None else None
    return {"page": page.name, "seconds": seconds, "ok": ok, "profile": profile, **extra}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m clipcore.book", description="Execute the book's pages with papermill under a profile."
    )
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
        help="override a page parameter (VALUE parsed as YAML 1.2, checked against the page's default)",
    )
    ap.add_argument("--device", default=None, help="'auto', 'cpu', 'cuda', ... (default from params.yml)")
    ap.add_argument("--seed", default=None, help="an int in [0, 2**63) (default from params.yml)")
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
        seed = parse_seed(args.seed) if args.seed is not None else None
        overrides = parse_overrides(args.parameter)
        params = load_params()
        check_params_file(params)
        pages = select_pages(args.pages)
        common = {
            k: v
            for k, v in dict(
                device=args.device, seed=seed, data_dir=args.data_dir, results_dir=args.results_dir
            ).items()
            if v is not None
        }
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
    claims_file = (out_dir or ROOT / "book") / CLAIMS_FILE
    if not args.pages and status_file.exists():
        status_file.unlink()  # a full run starts a fresh record
    # The summary pages read every other page's claims: they run last.
    plan = [pv for pv in plan if pv[0].name not in SUMMARY_PAGES] + [
        pv for pv in plan if pv[0].name in SUMMARY_PAGES
    ]
    all_pages = select_pages(None)
    executed: set[str] = set()
    for page, values in plan:
        if page.name in SUMMARY_PAGES:
            try:
                gather_claims(all_pages, out_dir, executed, claims_file)
            except BookError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            values = {**values, "claims_file": str(claims_file)}
        print(f"[{args.profile}] {page.name} ...", flush=True)
        target = (out_dir or page.source.parent) / (page.name + ".ipynb")
        try:
            seconds = execute_page(page, values, output_dir=out_dir)
        except KeyboardInterrupt:
            write_status(
                [_entry(page, args.profile, None, False, interrupted=True)], args.profile, status_file
            )
            kept = f"kept the previous {target}" if target.exists() else f"{target} not written"
            print(f"  interrupted: {kept}; stopping", file=sys.stderr, flush=True)
            return 130
        except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
            failures.append(page.name)
            print(f"  FAILED: {type(e).__name__}: {str(e)[-2000:]}", file=sys.stderr, flush=True)
            entry = _entry(page, args.profile, None, False)
        else:
            print(f"  done in {seconds:.1f} s -> {target}", flush=True)
            entry = _entry(page, args.profile, seconds, True)
            executed.add(page.name)
        write_status([entry], args.profile, status_file)
    try:
        claims = gather_claims(all_pages, out_dir, executed, claims_file)
    except BookError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"{len(plan) - len(failures)}/{len(plan)} pages executed in {time.perf_counter() - total:.1f} s; "
        f"{len(claims)} claims in {claims_file}"
    )
    if failures:
        print(f"error: page(s) failed: {failures}", file=sys.stderr)
        return 1
    return 0
