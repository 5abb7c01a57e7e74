"""The run store: ``results/<experiment>/<run-key>/{metrics.csv, meta.json, ...}``.

A run is identified by its experiment name and its config (a JSON-able dict). The run key
is human-readable plus a hash, ``<name>-<hash12>`` with ``name`` taken from
``config["name"]`` (or ``"run"``). Every file is written atomically (a temporary file in
the same directory, then :func:`os.replace`), so a crash never leaves a half-written file,
and a run counts as done only once ``meta.json`` says ``"finished": true``:

- :meth:`RunStore.load` serves finished runs only, so a page skips training when an
  identical run is already stored;
- :meth:`RunStore.start` resumes an interrupted run (its rows and checkpoint are read
  back; call :meth:`RunWriter.truncate_after` with the checkpoint's step), wipes it with
  ``force=True``, and refuses to overwrite a finished run unless forced.

Tables are CSV with a ``step`` column first for ``metrics``; columns are the union of the
keys logged, missing cells empty.

**One writer per run.** :meth:`RunStore.start` takes an exclusive ``fcntl.flock`` on
``<experiment>/.<run-key>.lock`` (holding the writer's pid) and keeps it until the run
finishes or the writer exits; a second writer of the same run gets :class:`RunLockedError`
naming the run and the holder. The kernel drops the lock of a process that died, so a stale
lock file is simply taken over.

**Nothing lost, nothing trusted blindly.** :meth:`RunWriter.finish` records every table's row
count and SHA-256 in ``meta.json``; :meth:`RunStore.load` verifies them, so a table cut or
changed after the run finished is a :class:`CorruptRunError` naming the file, never served as
finished. An unreadable ``meta.json`` is a :class:`CorruptRunError` too (never a silent
restart that would delete the run); only ``force=True`` replaces such a run. Checkpoints hold
tensors and plain Python values only and are read with ``torch.load(weights_only=True)``, so
a planted ``checkpoint.pt`` cannot run code; an unreadable one is an error naming its path.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from .. import __version__
from .tables import Table, atomic_write, read_table

__all__ = [
    "config_hash",
    "run_key",
    "RunStore",
    "RunWriter",
    "Run",
    "RunStoreError",
    "RunLockedError",
    "CorruptRunError",
]


class RunStoreError(ValueError):
    """A run that cannot be read or written as asked; the message names the file or the run."""


class RunLockedError(RunStoreError):
    """Another process is writing this run."""


class CorruptRunError(RunStoreError):
    """A stored file of the run is unreadable or differs from what the run recorded."""


_FORCE_HINT = "restore it, move the run directory aside, or retrain it with --force (force=True)"

META = "meta.json"
CHECKPOINT = "checkpoint.pt"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise ValueError(f"config value {obj!r} of type {type(obj).__name__} is not JSON-serialisable")


def _canonical(config: dict) -> str:
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict, got {type(config).__name__}")
    try:
        return json.dumps(
            config, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=True
        )
    except TypeError as e:  # e.g. non-string keys that cannot be sorted
        raise ValueError(f"config is not JSON-serialisable: {e}") from None


def config_hash(config: dict) -> str:
    """First 12 hex digits of the SHA-256 of the config as sorted-key, compact JSON.

    Key order does not matter; every value does (``1`` and ``1.0`` differ, as in JSON).
    """
    return hashlib.sha256(_canonical(config).encode()).hexdigest()[:12]


def run_key(config: dict) -> str:
    """``<name>-<config_hash>``, the name from ``config["name"]`` made file-name safe."""
    name = str(config.get("name") or "run") if isinstance(config, dict) else "run"
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:48] or "run"
    return f"{slug}-{config_hash(config)}"


def _check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits, '_', '.', '-'")
    return name


def _write_json(path: Path, obj: dict) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def _git_commit() -> str | None:
    """HEAD of the git checkout holding this package, or None (no git, no checkout, no commit)."""
    src = Path(__file__).resolve().parents[2]
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=src, capture_output=True, text=True, timeout=10
        )
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != src:
            return None  # not a checkout of clipcore itself (e.g. an installed copy)
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None  # e.g. a checkout without commits yet
        return head.stdout.strip() or None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _versions() -> dict:
    import torch  # deferred: reading results needs no torch import

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def _read_meta(path: Path) -> dict | None:
    """The run's meta.json, None when there is none; unreadable is a :class:`CorruptRunError`."""
    file = path / META
    if not file.exists():
        return None
    try:
        with open(file) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise CorruptRunError(f"{file}: unreadable ({err}); {_FORCE_HINT}") from None
    if not isinstance(meta, dict):
        raise CorruptRunError(f"{file}: holds {type(meta).__name__}, not a JSON object; {_FORCE_HINT}")
    return meta


def _table_record(path: Path) -> dict:
    """Row count and SHA-256 of a stored table, as :meth:`RunWriter.finish` records them."""
    data = path.read_bytes()
    return {"rows": max(data.count(b"\n") - 1, 0), "sha256": hashlib.sha256(data).hexdigest()}


def _verify_tables(path: Path, meta: dict) -> None:
    """Every table recorded at finish is there, with its row count and checksum."""
    for name, want in (meta.get("tables") or {}).items():
        file = path / f"{name}.csv"
        if not file.exists():
            raise CorruptRunError(
                f"{file}: missing (the run finished with {want['rows']} rows); {_FORCE_HINT}"
            )
        got = _table_record(file)
        if got != want:
            raise CorruptRunError(
                f"{file}: {got['rows']} rows and a different checksum from the {want['rows']} rows "
                f"recorded when the run finished (cut or changed since); {_FORCE_HINT}"
            )


class _RunLock:
    """An exclusive ``flock`` on a lock file that holds the writer's pid."""

    def __init__(self, path: Path, what: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise RunLockedError(
                f"{what} is being written by process {holder} (lock {path}); wait for it to finish"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class Run:
    """A stored run: ``path``, ``meta`` (the meta.json dict) and its tables."""

    def __init__(self, path: Path, meta: dict):
        self.path = Path(path)
        self.meta = meta

    def __repr__(self):
        return f"Run({str(self.path)!r}, finished={self.meta.get('finished')})"

    @property
    def tables(self) -> list[str]:
        """Names of the stored tables (``metrics``, ``eval``, ...)."""
        return sorted(p.stem for p in self.path.glob("*.csv"))

    def table(self, name: str = "metrics") -> dict[str, np.ndarray]:
        """Columns of ``<name>.csv``: float64 arrays (empty cell = nan) or str arrays."""
        name = _check_name("table name", name.removesuffix(".csv"))
        path = self.path / f"{name}.csv"
        if not path.exists():
            raise ValueError(f"run {self.path.name!r} has no table {name!r} (has {self.tables})")
        return read_table(path)

    def load_checkpoint(self, map_location=None):
        """The run's last checkpoint, or None (read with ``weights_only=True``)."""
        return _load_checkpoint(self.path / CHECKPOINT, map_location)


def _load_checkpoint(path: Path, map_location):
    if not path.exists():
        return None
    import pickle

    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CorruptRunError(
            f"{path}: not a readable checkpoint ({reason}); delete it to restart the run from its "
            "first step, or retrain with --force"
        ) from None


class RunWriter:
    """Writes one run: buffered tables, atomic checkpoints, and the finished flag.

    ``log(step, **metrics)`` appends to ``metrics.csv``; ``log_table(name, **row)`` to
    ``<name>.csv``. Rows are flushed (each table rewritten atomically) by :meth:`flush`,
    whenever a table has ``flush_every`` unflushed rows, before each checkpoint, and by
    :meth:`finish`. As a context manager it flushes on exit but never marks the run
    finished: only :meth:`finish` does.
    """

    def __init__(self, path: Path, meta: dict, *, resumed: bool, flush_every: int = 200, lock=None):
        if not (isinstance(flush_every, int) and flush_every >= 1):
            raise ValueError(f"flush_every must be an int >= 1, got {flush_every!r}")
        self._lock = lock  # the run's _RunLock, released when the writer finishes or exits
        self.path = Path(path)
        self.meta = meta
        self.resumed = resumed
        self.flush_every = flush_every
        self._t0 = time.monotonic()
        self._closed = False
        self._tables: dict[str, Table] = {}
        for p in sorted(self.path.glob("*.csv")):
            self._tables[p.stem] = Table.read(p)

    # -- tables ---------------------------------------------------------------------------
    def _table(self, name: str) -> Table:
        if name not in self._tables:
            first = ("step",) if name == "metrics" else ()
            self._tables[name] = Table(self.path / f"{name}.csv", first)
        return self._tables[name]

    def _append(self, name: str, row: dict) -> None:
        if self._closed:
            raise RuntimeError(f"run {self.path.name!r} is finished; start it again to write more")
        t = self._table(name)
        t.append(row)
        if t.unflushed >= self.flush_every:
            t.flush()

    def log(self, step: int, **metrics) -> None:
        """Append a row ``step, metrics...`` to ``metrics.csv`` (columns: union of keys)."""
        self._append("metrics", {"step": step, **metrics})

    def log_table(self, name: str, **row) -> None:
        """Append ``row`` to the table ``name`` (``"eval"`` or ``"eval.csv"`` -> ``eval.csv``)."""
        name = _check_name("table name", str(name).removesuffix(".csv"))
        self._append(name, row)

    def rows(self, name: str = "metrics") -> list[dict[str, str]]:
        """The rows of a table held by this writer (including rows read back on resume),
        as dicts of CSV text."""
        t = self._tables.get(name)
        return [dict(r) for r in t.rows] if t else []

    @property
    def last_step(self) -> float | None:
        """The largest ``step`` in ``metrics`` (None if there is none), e.g. for resuming."""
        steps = [float(r["step"]) for r in self.rows("metrics") if r.get("step", "") != ""]
        return max(steps) if steps else None

    def truncate_after(self, step: float) -> None:
        """Drop every row with ``step > step`` in every table (tables without a step column
        are kept as they are) and write the tables back."""
        for t in self._tables.values():
            t.truncate_after(float(step))
        self.flush()

    def flush(self) -> None:
        """Write every table with unwritten rows (atomically)."""
        for t in self._tables.values():
            t.flush()

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, obj) -> None:
        """Flush the tables, then ``torch.save(obj)`` atomically to ``checkpoint.pt``."""
        import torch

        self.flush()
        buf = io.BytesIO()
        torch.save(obj, buf)
        atomic_write(self.path / CHECKPOINT, buf.getvalue())

    def load_checkpoint(self, map_location=None):
        """The last saved checkpoint (e.g. after a resume), or None."""
        return _load_checkpoint(self.path / CHECKPOINT, map_location)

    # -- the end --------------------------------------------------------------------------
    def finish(self, wall_time: float | None = None) -> Run:
        """Flush, then mark the run finished in meta.json. ``wall_time`` (seconds) defaults
        to the time since this writer started plus that of earlier interrupted sessions."""
        if self._closed:
            raise RuntimeError(f"run {self.path.name!r} is already finished")
        if wall_time is None:
            wall_time = self.meta.get("wall_time_interrupted", 0.0) + (time.monotonic() - self._t0)
        if not (isinstance(wall_time, (int, float)) and math.isfinite(wall_time) and wall_time >= 0):
            raise ValueError(f"wall_time must be a finite number >= 0, got {wall_time!r}")
        self.flush()
        self.meta["wall_time"] = float(wall_time)
        self.meta["finished"] = True
        self.meta["finish_time"] = _now()
        # What load() verifies: a table cut or changed after this point is never served.
        self.meta["tables"] = {p.stem: _table_record(p) for p in sorted(self.path.glob("*.csv"))}
        _write_json(self.path / META, self.meta)
        self._closed = True
        self._release()
        return Run(self.path, dict(self.meta))

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self._closed:
            self.flush()
            # Remember the time spent, so a resumed run reports its total wall time.
            self.meta["wall_time_interrupted"] = self.meta.get("wall_time_interrupted", 0.0) + (
                time.monotonic() - self._t0
            )
            self._t0 = time.monotonic()
            _write_json(self.path / META, self.meta)
        self._release()
        return False


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class RunStore:
    """``root/<experiment>/<run-key>/``; ``root`` is created on the first :meth:`start`."""

    def __init__(self, root: str | os.PathLike = "results"):
        self.root = Path(root)

    def __repr__(self):
        return f"RunStore({str(self.root)!r})"

    def run_dir(self, experiment: str, config: dict) -> Path:
        """The directory of the run of ``config`` in ``experiment`` (it may not exist)."""
        return self.root / _check_name("experiment", experiment) / run_key(config)

    def load(self, experiment: str, config: dict) -> Run | None:
        """The finished run of exactly this config, its tables verified; None when it is
        absent or unfinished. A run whose meta.json or tables are damaged is a
        :class:`CorruptRunError` naming the file."""
        path = self.run_dir(experiment, config)
        meta = _read_meta(path)
        if meta is None or meta.get("finished") is not True:
            return None
        if meta.get("config_hash") != config_hash(config):
            return None
        _verify_tables(path, meta)
        return Run(path, meta)

    def start(
        self, experiment: str, config: dict, *, force: bool = False, device=None, flush_every: int = 200
    ) -> RunWriter:
        """A writer for the run of ``config``.

        - new run: a fresh directory with meta.json (``"finished": false``);
        - interrupted run: resumed (``writer.resumed``; its rows and checkpoint are there);
        - finished run: ``FileExistsError`` (use :meth:`load`), unless ``force``;
        - ``force=True``: whatever was there is wiped first;
        - a run another process is writing: :class:`RunLockedError`;
        - a directory whose meta.json is missing or unreadable: :class:`CorruptRunError`
          unless ``force`` (it may be a finished run: it is never deleted silently).

        The writer holds the run's lock until it finishes or exits.
        """
        path = self.run_dir(experiment, config)
        h = config_hash(config)
        lock = _RunLock(path.parent / f".{path.name}.lock", f"run {path.name!r} of {experiment!r}")
        try:
            return self._start(experiment, config, path, h, lock, force, device, flush_every)
        except BaseException:
            lock.release()
            raise

    def _start(self, experiment, config, path, h, lock, force, device, flush_every) -> RunWriter:
        meta = None
        if path.exists() and not force:
            meta = _read_meta(path)
            if meta is None and not any(path.iterdir()):
                path.rmdir()  # an empty directory holds nothing to lose
            elif meta is None:
                raise CorruptRunError(
                    f"{path / META}: missing, so the run in {path} cannot be trusted; {_FORCE_HINT}"
                )
        if meta is not None and meta.get("config_hash") != h:
            raise ValueError(f"{path} holds a run with config hash {meta.get('config_hash')!r}, not {h!r}")
        if meta is not None and meta.get("finished") is True:
            raise FileExistsError(
                f"run {path.name!r} of {experiment!r} is already finished: "
                "load it with RunStore.load, or pass force=True to redo it"
            )
        if force:
            shutil.rmtree(path, ignore_errors=True)
        if meta is not None:
            meta["resumes"] = int(meta.get("resumes", 0)) + 1
            meta["device"] = None if device is None else str(device)
            _write_json(path / META, meta)
            return RunWriter(path, meta, resumed=True, flush_every=flush_every, lock=lock)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "experiment": experiment,
            "run_key": path.name,
            "config": json.loads(_canonical(config)),
            "config_hash": h,
            "clipcore_version": __version__,
            "git_commit": _git_commit(),
            **_versions(),
            "device": None if device is None else str(device),
            "start_time": _now(),
            "wall_time": None,
            "finished": False,
            "resumes": 0,
        }
        _write_json(path / META, meta)
        return RunWriter(path, meta, resumed=False, flush_every=flush_every, lock=lock)
