"""Tests for clipcore.training.store: the run store."""

from __future__ import annotations

import json
import math
import os
import platform

import numpy as np
import pytest
import torch

import clipcore
from clipcore.training import store as store_module
from clipcore.training.store import CorruptRunError, Run, RunLockedError, RunStore, config_hash, run_key

CFG = {"name": "lstm lr=30/clip", "lr": 30.0, "clip": 0.25, "layers": [2, 512], "seed": 1111}


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "results")


# ---------------------------------------------------------------------------- config hash


def test_config_hash_is_stable_and_sensitive():
    h = config_hash(CFG)
    assert len(h) == 12 and all(c in "0123456789abcdef" for c in h)
    # Key order and container identity do not matter ...
    assert config_hash(dict(reversed(list(CFG.items())))) == h
    assert config_hash({**CFG, "layers": (2, 512)}) == h
    assert config_hash(json.loads(json.dumps(CFG))) == h
    # ... every value does, including nested ones and the int/float distinction.
    assert config_hash({**CFG, "lr": 30.000001}) != h
    assert config_hash({**CFG, "layers": [2, 511]}) != h
    assert config_hash({**CFG, "seed": 1111.0}) != h
    assert config_hash({**CFG, "extra": None}) != h
    # Pinned value: the hash must not drift between versions (stored runs rely on it).
    assert config_hash({"a": 1, "b": [1.5, "x"]}) == "253252306831"  # sha256 of {"a":1,"b":[1.5,"x"]}


def test_config_hash_accepts_numpy_and_rejects_objects():
    assert config_hash({"lr": np.float64(0.5), "n": np.int64(3)}) == config_hash({"lr": 0.5, "n": 3})
    with pytest.raises(ValueError, match="object"):
        config_hash({"f": object()})
    with pytest.raises(ValueError, match="list"):
        config_hash([1, 2])


def test_run_key_is_readable():
    key = run_key(CFG)
    assert key == f"lstm-lr-30-clip-{config_hash(CFG)}"
    assert run_key({"lr": 1}) == f"run-{config_hash({'lr': 1})}"
    assert run_key({"name": "../.."}).startswith("run-")


# ------------------------------------------------------------------------------ round trip


def test_round_trip(store):
    assert store.load("fig2", CFG) is None
    assert not store.root.exists()  # created lazily
    w = store.start("fig2", CFG, device="cpu")
    assert not w.resumed
    for step in range(5):
        w.log(step, loss=1.0 / (step + 1), grad_norm=torch.tensor(2.0 * step, dtype=torch.float64))
    w.log(5, loss=0.1, smoothness=float("nan"), note="lr halved")  # new columns appear late
    w.log_table("eval", step=4, val_loss=np.float32(5.5), ok=True)
    w.log_table("eval.csv", step=5, val_loss=5.25)
    run = w.finish(wall_time=12.5)
    assert isinstance(run, Run)

    got = store.load("fig2", CFG)
    assert got is not None and got.path == store.run_dir("fig2", CFG)
    assert sorted(got.tables) == ["eval", "metrics"]
    m = got.table()
    assert list(m) == ["step", "loss", "grad_norm", "smoothness", "note"]
    np.testing.assert_array_equal(m["step"], np.arange(6.0))
    # Floats round-trip exactly (repr), missing cells are nan, strings stay strings.
    np.testing.assert_array_equal(m["loss"], [1.0, 0.5, 1 / 3, 0.25, 0.2, 0.1])
    np.testing.assert_array_equal(m["grad_norm"][:5], [0.0, 2.0, 4.0, 6.0, 8.0])
    assert math.isnan(m["grad_norm"][5]) and np.isnan(m["smoothness"]).all()
    assert m["note"].dtype.kind == "U" and list(m["note"]) == [""] * 5 + ["lr halved"]
    e = got.table("eval")
    np.testing.assert_array_equal(e["val_loss"], [5.5, 5.25])
    np.testing.assert_array_equal(e["ok"][:1], [1.0])
    with pytest.raises(ValueError, match="probes"):
        got.table("probes")


def test_meta_fields(store):
    w = store.start("fig3", CFG, device="cuda:0")
    meta = json.loads((w.path / "meta.json").read_text())
    assert meta["finished"] is False and meta["wall_time"] is None
    w.finish(wall_time=3.0)
    meta = store.load("fig3", CFG).meta
    assert meta["experiment"] == "fig3"
    assert meta["run_key"] == run_key(CFG)
    assert meta["config"] == CFG
    assert meta["config_hash"] == config_hash(CFG)
    assert meta["clipcore_version"] == clipcore.__version__
    assert meta["git_commit"] is None or len(meta["git_commit"]) == 40
    assert meta["python"] == platform.python_version()
    assert meta["torch"] == torch.__version__ and meta["numpy"] == np.__version__
    assert meta["device"] == "cuda:0"
    assert meta["start_time"].endswith("+00:00")
    assert meta["wall_time"] == 3.0 and meta["finished"] is True


def test_git_missing_never_fails(store, monkeypatch):
    def no_git(*a, **k):
        raise FileNotFoundError("git")

    monkeypatch.setattr(store_module.subprocess, "run", no_git)
    w = store.start("x", CFG)
    assert w.meta["git_commit"] is None


def test_checkpoint_round_trip(store):
    w = store.start("ckpt", CFG)
    assert w.load_checkpoint() is None
    state = {"step": 7, "weights": torch.arange(4.0), "rng": np.random.default_rng(0).bit_generator.state}
    w.save_checkpoint(state)
    got = w.load_checkpoint()
    assert got["step"] == 7 and torch.equal(got["weights"], state["weights"])
    assert got["rng"] == state["rng"]
    w.finish()
    assert store.load("ckpt", CFG).load_checkpoint()["step"] == 7


# ------------------------------------------------------------------------------ atomicity


def test_crash_before_finish_is_never_served(store):
    with pytest.raises(RuntimeError, match="boom"):
        with store.start("crash", CFG, flush_every=3) as w:
            for step in range(10):
                w.log(step, loss=float(step))
            raise RuntimeError("boom")
    assert store.load("crash", CFG) is None
    # What was logged before the crash is on disk (flushed on exit), and well formed.
    text = (store.run_dir("crash", CFG) / "metrics.csv").read_text()
    assert text.splitlines()[0] == "step,loss" and len(text.splitlines()) == 11


def test_failed_replace_leaves_the_old_file_intact(store, monkeypatch):
    w = store.start("atomic", CFG)
    w.log(0, loss=1.0)
    w.flush()
    path = w.path / "metrics.csv"
    before = path.read_bytes()
    w.log(1, loss=0.5, extra=3)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        w.flush()
    with pytest.raises(OSError, match="disk full"):
        w.save_checkpoint({"x": 1})
    with pytest.raises(OSError, match="disk full"):
        w.finish(wall_time=1.0)
    assert path.read_bytes() == before
    assert not (w.path / "checkpoint.pt").exists()
    assert sorted(p.name for p in w.path.iterdir()) == ["meta.json", "metrics.csv"]  # no temp files
    assert store.load("atomic", CFG) is None
    # Once replace works again the buffered rows are written, nothing lost.
    monkeypatch.undo()
    w.finish(wall_time=1.0)
    np.testing.assert_array_equal(store.load("atomic", CFG).table()["loss"], [1.0, 0.5])


def test_flush_every_bounds_unwritten_rows(store):
    w = store.start("buffer", CFG, flush_every=4)
    path = w.path / "metrics.csv"
    for step in range(3):
        w.log(step, loss=1.0)
        assert not path.exists()  # buffered
    w.log(3, loss=1.0)
    assert len(path.read_text().splitlines()) == 5  # header + 4 rows written at the 4th
    w.log(4, loss=1.0)
    assert len(path.read_text().splitlines()) == 5  # buffered
    w.save_checkpoint({"step": 4})  # a checkpoint flushes first: tables cover it
    assert len(path.read_text().splitlines()) == 6
    with pytest.raises(ValueError, match="flush_every"):
        store.start("buffer2", CFG, flush_every=0)


# --------------------------------------------------------------------- resume and force


def test_resume_and_truncate(store):
    with store.start("resume", CFG) as w:
        for step in range(10):
            w.log(step, loss=10.0 - step)
            w.log_table("probes", step=step, smoothness=float(step))
            if step == 5:
                w.save_checkpoint({"step": step})
        w.log_table("summary", best=1.0)  # a table without a step column
    # Interrupted: not served, but resumed by start.
    assert store.load("resume", CFG) is None
    w = store.start("resume", CFG)
    assert w.resumed and w.meta["resumes"] == 1
    assert w.last_step == 9.0
    ckpt = w.load_checkpoint()
    assert ckpt == {"step": 5}
    w.truncate_after(ckpt["step"])
    assert w.last_step == 5.0
    assert [r["step"] for r in w.rows("probes")] == [str(s) for s in range(6)]
    assert len(w.rows("summary")) == 1
    # The truncation is on disk straight away.
    on_disk = RunStore(store.root)
    assert len((w.path / "metrics.csv").read_text().splitlines()) == 7
    for step in range(6, 8):
        w.log(step, loss=10.0 - step)
    w.finish(wall_time=2.0)
    run = on_disk.load("resume", CFG)
    np.testing.assert_array_equal(run.table()["step"], np.arange(8.0))
    np.testing.assert_array_equal(run.table("probes")["step"], np.arange(6.0))


def test_finished_run_is_loaded_not_restarted_unless_forced(store):
    w = store.start("done", CFG)
    w.log(0, loss=1.0)
    w.save_checkpoint({"step": 0})
    w.finish(wall_time=1.0)
    with pytest.raises(FileExistsError, match="force"):
        store.start("done", CFG)
    assert store.load("done", CFG) is not None
    w = store.start("done", CFG, force=True)
    assert not w.resumed and w.rows() == [] and w.load_checkpoint() is None
    assert store.load("done", CFG) is None  # the forced restart replaces the old run
    assert not (w.path / "metrics.csv").exists()


def test_force_wipes_an_interrupted_run(store):
    with store.start("wipe", CFG) as w:
        w.log(0, loss=1.0)
    w = store.start("wipe", CFG, force=True)
    assert not w.resumed and w.last_step is None


def test_other_configs_are_other_runs(store):
    store.start("exp", CFG).finish(wall_time=1.0)
    other = {**CFG, "lr": 2.0}
    assert store.load("exp", other) is None
    assert store.run_dir("exp", other) != store.run_dir("exp", CFG)
    # A meta.json whose hash does not match is never served.
    path = store.run_dir("exp", CFG)
    meta = json.loads((path / "meta.json").read_text())
    meta["config_hash"] = "0" * 12
    (path / "meta.json").write_text(json.dumps(meta))
    assert store.load("exp", CFG) is None
    with pytest.raises(ValueError, match="000000000000"):
        store.start("exp", CFG)


@pytest.mark.parametrize("finished", [False, True])
def test_corrupt_meta_is_an_error_naming_it_and_nothing_is_deleted(store, finished):
    with store.start("corrupt", CFG) as w:
        w.log(0, loss=1.0)
        if finished:
            w.finish(wall_time=1.0)
    meta = w.path / "meta.json"
    meta.write_text(meta.read_text()[:40])  # truncated
    with pytest.raises(CorruptRunError, match=r"meta\.json: unreadable.*--force"):
        store.load("corrupt", CFG)
    with pytest.raises(CorruptRunError, match=r"meta\.json: unreadable"):
        store.start("corrupt", CFG)
    assert (w.path / "metrics.csv").exists()  # nothing was thrown away
    w = store.start("corrupt", CFG, force=True)  # only an explicit force replaces it
    assert not w.resumed and w.rows() == []


def test_missing_meta_is_an_error_but_an_empty_directory_is_reused(store):
    path = store.run_dir("gone", CFG)
    path.mkdir(parents=True)
    store.start("gone", CFG).__exit__(None, None, None)  # empty: nothing to lose
    (path / "meta.json").unlink()
    (path / "metrics.csv").write_text("step,loss\n0,1.0\n")
    with pytest.raises(CorruptRunError, match="meta.json: missing"):
        store.start("gone", CFG)


def _finished(store, experiment, n=46):
    with store.start(experiment, CFG) as w:
        for i in range(n):
            w.log(i, loss=float(i))
            w.log_table("eval", step=i, loss=0.5)
        return w.finish(wall_time=1.0)


def test_finish_records_rows_and_checksums_and_load_verifies_them(store):
    run = _finished(store, "sums")
    assert run.meta["tables"]["metrics"]["rows"] == 46 and run.meta["tables"]["eval"]["rows"] == 46
    assert store.load("sums", CFG) is not None
    metrics = run.path / "metrics.csv"
    text = metrics.read_text()
    cut = text[: len(text) // 2]
    metrics.write_text(cut[: cut.rindex("\n") + 1] + "23,2")  # cut mid-row
    with pytest.raises(CorruptRunError, match=r"metrics\.csv: 2\d rows .* 46 rows recorded"):
        store.load("sums", CFG)
    metrics.write_text(text.replace("\n5,5.0\n", "\n5,5.5\n"))  # same rows, other numbers
    with pytest.raises(CorruptRunError, match=r"metrics\.csv: 46 rows and a different checksum"):
        store.load("sums", CFG)
    metrics.unlink()
    with pytest.raises(CorruptRunError, match=r"metrics\.csv: missing"):
        store.load("sums", CFG)


def test_a_second_writer_of_the_same_run_is_refused_naming_the_holder(store):
    w = store.start("busy", CFG)
    with pytest.raises(
        RunLockedError, match=rf"run '.*' of 'busy' is being written by process {os.getpid()}"
    ):
        store.start("busy", CFG)
    w.__exit__(None, None, None)  # the writer exits: the lock is free again
    with store.start("busy", CFG) as again:
        assert again.resumed


def test_a_stale_lock_of_a_dead_process_is_taken_over(store):
    path = store.run_dir("stale", CFG)
    path.parent.mkdir(parents=True)
    (path.parent / f".{path.name}.lock").write_text("999999999\n")  # no such process holds it
    with store.start("stale", CFG) as w:
        assert (path.parent / f".{path.name}.lock").read_text().strip() == str(os.getpid())
        w.log(0, loss=1.0)


def test_a_planted_checkpoint_cannot_run_code(store, tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with store.start("evil", CFG) as w:
        (w.path / "checkpoint.pt").write_bytes(pickle.dumps({"model": Evil()}))
        with pytest.raises(CorruptRunError, match=r"checkpoint\.pt: not a readable checkpoint"):
            w.load_checkpoint()
    assert not marker.exists()


def test_a_corrupt_checkpoint_is_an_error_naming_its_path(store):
    with store.start("ckpt_bad", CFG) as w:
        w.save_checkpoint({"step": 3})
        assert w.load_checkpoint() == {"step": 3}
        (w.path / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a zip")
        with pytest.raises(CorruptRunError, match=str(w.path / "checkpoint.pt")):
            w.load_checkpoint()


def test_finished_writer_refuses_more_rows(store):
    w = store.start("closed", CFG)
    w.finish(wall_time=0.0)
    with pytest.raises(RuntimeError, match="finished"):
        w.log(1, loss=1.0)
    with pytest.raises(RuntimeError, match="finished"):
        w.finish()


def test_bad_names_and_values(store):
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="experiment"):
            store.run_dir(bad, CFG)
    w = store.start("bad", CFG)
    with pytest.raises(ValueError, match="table name"):
        w.log_table("../escape", step=1)
    with pytest.raises(ValueError, match="scalar"):
        w.log(0, weights=torch.ones(3))
    with pytest.raises(ValueError, match="dict"):
        w.log(0, weights={"a": 1})
    with pytest.raises(ValueError, match="wall_time"):
        w.finish(wall_time=-1.0)
    with pytest.raises(ValueError, match="wall_time"):
        w.finish(wall_time=float("nan"))
