r"""Recorded runs: compact tables of finished runs, kept in the repository so the book can show
paper-scale results that CI cannot re-run.

Layout: ``recorded/<profile>/<experiment>/<run>/{metrics,eval,probes}.csv.gz`` (no checkpoints)
and ``recorded/manifest.json``, one entry per run::

    {"experiment", "run", "profile", "config_hash", "device", "torch", "commit", "wall_s",
     "created", "config", "dataset", "n_parameters", "files": {table: {"path", "rows", "sha256"}}}

``config`` is the run's identity (:meth:`clipcore.training.config.TrainConfig.identity`) and
``config_hash`` its hash in the run store. A recording is **current** while that hash equals
the hash of today's preset for the same experiment, run and profile
(:func:`clipcore.training.presets.preset`, with the recording's own ``data_dir``), and
**stale** otherwise (the preset changed since, or the run left the presets): a page shows a
stale recording as stale, never as today's result.

:func:`add` copies finished runs from a run store (``python -m clipcore recordings add``);
:func:`check` verifies the manifest and every file's checksum and classifies each entry
(``python -m clipcore recordings check``, non-zero exit on a malformed manifest or a damaged
file). Every file is written atomically. Nothing here unpickles or executes anything: the
manifest is JSON, the tables are gzipped CSV.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .training.config import TrainConfig
from .training.presets import EXPERIMENTS, experiment_configs, preset
from .training.store import RunStore, config_hash
from .training.tables import atomic_write, read_table

__all__ = [
    "MANIFEST",
    "TABLES",
    "RecordingError",
    "Recording",
    "RecordedRun",
    "read_manifest",
    "add",
    "check",
    "load_recorded",
    "wall_hours",
]

MANIFEST = "manifest.json"
TABLES = ("metrics", "eval", "probes")
_FIELDS = {
    "experiment": str,
    "run": str,
    "profile": str,
    "config_hash": str,
    "device": (str, type(None)),
    "torch": (str, type(None)),
    "commit": (str, type(None)),
    "wall_s": (int, float, type(None)),
    "created": str,
    "config": dict,
    "files": dict,
}


class RecordingError(ValueError):
    """A malformed manifest, a missing or damaged recorded file, or nothing to record."""


@dataclass(frozen=True)
class Recording:
    """One manifest entry with its status against today's presets."""

    entry: dict
    status: str  # current | stale
    reason: str  # why stale ("" when current)

    @property
    def label(self) -> str:
        """``"recorded on cuda (NVIDIA H100) on 2026-11-30, commit 1a2b3c4d"``."""
        e = self.entry
        commit = (e.get("commit") or "unknown")[:8]
        return f"recorded on {e.get('device') or 'an unknown device'} on {e['created'][:10]}, commit {commit}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(recorded_dir) -> list[dict]:
    """The manifest's entries ([] when there is no manifest); a malformed one is a
    :class:`RecordingError` naming the file and the bad entry."""
    path = Path(recorded_dir) / MANIFEST
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RecordingError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("recordings"), list):
        raise RecordingError(f"{path}: expected an object with a 'recordings' list")
    seen = set()
    for i, e in enumerate(doc["recordings"]):
        where = f"{path}: recordings[{i}]"
        if not isinstance(e, dict):
            raise RecordingError(f"{where}: expected an object, got {type(e).__name__}")
        for key, kind in _FIELDS.items():
            if key not in e:
                raise RecordingError(f"{where}: missing {key!r}")
            if not isinstance(e[key], kind) or isinstance(e[key], bool):
                raise RecordingError(f"{where}: {key!r} has the wrong type ({e[key]!r})")
        ident = (e["profile"], e["experiment"], e["run"])
        if ident in seen:
            raise RecordingError(f"{where}: a second entry for {'/'.join(ident)}")
        seen.add(ident)
        for name, rec in e["files"].items():
            if not (
                isinstance(rec, dict)
                and isinstance(rec.get("path"), str)
                and isinstance(rec.get("sha256"), str)
            ):
                raise RecordingError(f"{where}: file record {name!r} needs 'path' and 'sha256'")
            rel = Path(rec["path"])
            if rel.is_absolute() or ".." in rel.parts:
                raise RecordingError(f"{where}: file path {rec['path']!r} leaves the recorded directory")
        if config_hash(e["config"]) != e["config_hash"]:
            raise RecordingError(f"{where}: config_hash {e['config_hash']!r} is not the hash of its config")
    return doc["recordings"]


def _write_manifest(recorded_dir: Path, entries: list[dict]) -> None:
    entries = sorted(entries, key=lambda e: (e["profile"], e["experiment"], e["run"]))
    doc = {"format": 1, "recordings": entries}
    atomic_write(recorded_dir / MANIFEST, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


def _status(entry: dict) -> tuple[str, str]:
    exp, run, profile = entry["experiment"], entry["run"], entry["profile"]
    if exp not in EXPERIMENTS or run not in EXPERIMENTS[exp]:
        return "stale", f"run {exp}/{run} is no longer in the presets"
    try:
        today = preset(exp, run, profile, data_dir=entry["config"].get("data_dir")).identity()
    except ValueError as err:
        return "stale", f"today's preset cannot be built ({err})"
    if config_hash(today) == entry["config_hash"]:
        return "current", ""
    old = entry["config"]
    changed = sorted(k for k in set(old) | set(today) if old.get(k, "<absent>") != today.get(k, "<absent>"))
    return "stale", "the preset changed since in: " + ", ".join(changed)


def check(recorded_dir="recorded", verify_files: bool = True) -> list[Recording]:
    """Every recording with its status; a malformed manifest, or (``verify_files``) a missing
    file or one whose checksum differs from the manifest's, is a :class:`RecordingError`."""
    root = Path(recorded_dir)
    out = []
    for e in read_manifest(root):
        if verify_files:
            for name, rec in e["files"].items():
                f = root / rec["path"]
                if not f.exists():
                    raise RecordingError(f"{f}: missing (listed in {root / MANIFEST})")
                if _sha256(f.read_bytes()) != rec["sha256"]:
                    raise RecordingError(
                        f"{f}: checksum differs from {root / MANIFEST} (changed since recorded)"
                    )
        out.append(Recording(e, *_status(e)))
    return out


def add(
    experiment: str,
    profile: str,
    results_dir="results",
    recorded_dir="recorded",
    runs: Sequence[str] | None = None,
    data_dir=None,
) -> list[Recording]:
    """Copy the finished runs of ``experiment`` at ``profile`` (all its runs, or ``runs``)
    from the run store at ``results_dir`` into ``recorded_dir``, replacing earlier
    recordings of the same runs. A named run that is not finished is a
    :class:`RecordingError`; so is finding none at all."""
    configs = experiment_configs(experiment, profile, data_dir=data_dir)
    if runs is not None:
        bad = [r for r in runs if r not in configs]
        if bad:
            raise RecordingError(
                f"Invalid run: {bad[0]!r} for {experiment} (choose from {', '.join(configs)})"
            )
    store, root = RunStore(results_dir), Path(recorded_dir)
    entries = {(e["profile"], e["experiment"], e["run"]): e for e in read_manifest(root)}
    done = []
    for name, cfg in configs.items():
        if runs is not None and name not in runs:
            continue
        run = store.load(experiment, cfg.identity())
        if run is None:
            if runs is not None:
                raise RecordingError(
                    f"run {name!r} of {experiment} ({profile}) is not finished in {str(results_dir)!r}"
                )
            continue
        files = {}
        for table in TABLES:
            src = run.path / f"{table}.csv"
            if not src.exists():
                continue
            rel = Path(profile) / experiment / name / f"{table}.csv.gz"
            # mtime=0: the same table always gives the same bytes (and checksum).
            data = gzip.compress(src.read_bytes(), compresslevel=9, mtime=0)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            atomic_write(root / rel, data)
            files[table] = {
                "path": rel.as_posix(),
                "rows": run.meta["tables"][table]["rows"],
                "sha256": _sha256(data),
            }
        meta = run.meta
        entry = {
            "experiment": experiment,
            "run": name,
            "profile": profile,
            "config_hash": meta["config_hash"],
            "config": meta["config"],
            "device": _device_label(meta),
            "torch": meta.get("torch"),
            "commit": meta.get("git_commit"),
            "wall_s": meta.get("wall_time"),
            "created": meta.get("finish_time") or meta.get("start_time"),
            "dataset": meta.get("dataset"),
            "n_parameters": meta.get("n_parameters"),
            "files": files,
        }
        entries[(profile, experiment, name)] = entry
        done.append(entry)
    if not done:
        raise RecordingError(
            f"no finished run of {experiment} at the {profile} profile in {str(results_dir)!r} "
            f"(train them first: python -m clipcore train {experiment} --profile {profile})"
        )
    root.mkdir(parents=True, exist_ok=True)
    _write_manifest(root, list(entries.values()))
    return [Recording(e, *_status(e)) for e in done]


def _device_label(meta: dict) -> str | None:
    dev, name = meta.get("device"), meta.get("device_name")
    return f"{dev} ({name})" if dev and name else dev


class RecordedRun:
    """A recording read like a stored run (:class:`clipcore.training.store.Run`): ``path``,
    ``meta`` and ``table(name)``; its checksums were verified by :func:`check`."""

    def __init__(self, root: Path, entry: dict):
        self.root, self.entry = Path(root), entry
        self.path = self.root / entry["profile"] / entry["experiment"] / entry["run"]
        self.meta = {
            "config": entry["config"],
            "config_hash": entry["config_hash"],
            "dataset": entry.get("dataset"),
            "n_parameters": entry.get("n_parameters"),
            "device": entry.get("device"),
            "git_commit": entry.get("commit"),
            "wall_time": entry.get("wall_s"),
            "finished": True,
        }

    @property
    def tables(self) -> list[str]:
        return sorted(self.entry["files"])

    def table(self, name: str = "metrics") -> dict[str, np.ndarray]:
        if name not in self.entry["files"]:
            raise ValueError(f"recording {self.path} has no table {name!r} (has {self.tables})")
        raw = gzip.decompress((self.root / self.entry["files"][name]["path"]).read_bytes())
        return read_table(io.TextIOWrapper(io.BytesIO(raw), newline=""))

    def load_checkpoint(self, map_location=None):
        return None  # recordings keep no checkpoints


def _config_of(entry: dict) -> TrainConfig | None:
    """The recorded run's config, or None when today's TrainConfig cannot hold it (a key
    was removed since: the recording is then stale anyway)."""
    try:
        return TrainConfig.from_dict(dict(entry["config"]))
    except ValueError:
        return None


def load_recorded(experiment: str, profile: str, recorded_dir="recorded") -> dict:
    """``{run: (Recording, RecordedRun, TrainConfig | None)}`` for the recordings of
    ``experiment`` at ``profile``, in the presets' run order (runs without a recording are
    absent). Checksums are verified."""
    root = Path(recorded_dir)
    recs = {
        r.entry["run"]: r
        for r in check(root)
        if (r.entry["experiment"], r.entry["profile"]) == (experiment, profile)
    }
    order = list(EXPERIMENTS.get(experiment, {})) + sorted(set(recs) - set(EXPERIMENTS.get(experiment, {})))
    return {
        name: (recs[name], RecordedRun(root, recs[name].entry), _config_of(recs[name].entry))
        for name in order
        if name in recs
    }


def wall_hours(recordings) -> float:
    """Total recorded wall time of ``recordings`` in hours (nan when any is unknown)."""
    walls = [r.entry.get("wall_s") for r in recordings]
    return math.nan if any(w is None for w in walls) else sum(walls) / 3600


# --------------------------------------------------------------------------------------
# python -m clipcore recordings {add,check}
# --------------------------------------------------------------------------------------


def _print_table(recs: list[Recording]) -> None:
    if not recs:
        print("no recordings")
        return
    for r in recs:
        e = r.entry
        wall = "?" if e.get("wall_s") is None else f"{e['wall_s'] / 60:.1f} min"
        print(
            f"{e['profile']:<6} {e['experiment']:<14} {e['run']:<12} {r.status:<7} "
            f"{e['config_hash']}  {e.get('device') or '?'}  torch {e.get('torch') or '?'}  "
            f"commit {(e.get('commit') or '?')[:8]}  {wall}  {e['created']}"
            + (f"\n{'':<42}stale: {r.reason}" if r.status == "stale" else "")
        )


def main(argv=None) -> int:
    """``python -m clipcore recordings add --experiment E --profile P`` / ``... check``."""
    import argparse
    import sys

    from .profiles import PROFILES

    parser = argparse.ArgumentParser(
        prog="python -m clipcore recordings",
        description="Record finished runs into recorded/ (add), or list the recordings with "
        "their provenance and whether they still match today's presets (check).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("add", help="copy finished runs from the run store into recorded/")
    a.add_argument("--experiment", required=True, choices=list(EXPERIMENTS))
    a.add_argument("--profile", required=True, choices=list(PROFILES))
    a.add_argument("--run", action="append", help="run name (repeatable); default: every finished run")
    a.add_argument("--results-dir", default="results", help="run store root [default results]")
    a.add_argument("--data-dir", default=None, help="the data_dir the runs were trained with")
    c = sub.add_parser("check", help="list recordings: provenance, current or stale")
    c.add_argument("--strict", action="store_true", help="also exit non-zero when a recording is stale")
    for p in (a, c):
        p.add_argument("--recorded-dir", default="recorded", help="recordings root [default recorded]")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.command == "add":
            recs = add(
                args.experiment, args.profile, args.results_dir, args.recorded_dir, args.run, args.data_dir
            )
            print(f"recorded {len(recs)} run(s) into {args.recorded_dir}:")
            _print_table(recs)
            return 0
        recs = check(args.recorded_dir)
    except (RecordingError, ValueError) as exc:
        print(f"python -m clipcore recordings: error: {exc}", file=sys.stderr)
        return 2
    _print_table(recs)
    return 1 if args.strict and any(r.status == "stale" for r in recs) else 0
