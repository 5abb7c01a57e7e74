"""``torchrun --nproc-per-node 2 -m clipcore train``: two CPU processes over gloo train one run
(rank 0 writes it, with its world size), and for the LSTM -- no BatchNorm, every column an
independent stream -- its rows are those of one process on the whole batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clipcore.training import RunStore, preset, train

ROOT = Path(__file__).resolve().parents[2]


def _torchrun(tmp_path, experiment, run, *extra):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "clipcore", "train", experiment, "--runs", run, "--profile", "smoke", "--device", "cpu"]
    cmd += ["--results-dir", str(tmp_path), "--no-progress", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_two_processes_train_the_run_of_one(tmp_path):
    out = _torchrun(tmp_path / "ddp", "lstm_ptb", "clip_lr30")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("lstm_ptb/clip_lr30:") == 1  # rank 0 reports
    cfg = preset("lstm_ptb", "clip_lr30", "smoke", device="cpu")
    ddp = RunStore(tmp_path / "ddp").load("lstm_ptb", cfg.identity())
    assert ddp is not None and ddp.meta["world_size"] == 2
    one = train(cfg, RunStore(tmp_path / "one"), progress=False)
    assert one.meta["world_size"] == 1
    a, b = one.table(), ddp.table()
    np.testing.assert_array_equal(a["step"], b["step"])
    for col in ("loss", "grad_norm", "step_length", "penalty"):
        np.testing.assert_allclose(b[col], a[col], rtol=2e-4, err_msg=col)
    np.testing.assert_array_equal(a["clipped"], b["clipped"])
    ea, eb = one.table("eval"), ddp.table("eval")
    np.testing.assert_allclose(eb["loss"], ea["loss"], rtol=2e-4)
    # Pinned probes are rank 0's on the same data at (nearly) the same point.
    pa, pb = one.table("probes"), ddp.table("probes")
    sel_a, sel_b = pa["estimator"] == "fixed", pb["estimator"] == "fixed"
    np.testing.assert_allclose(pb["grad_norm"][sel_b], pa["grad_norm"][sel_a], rtol=1e-3)
    assert (pb["estimator"] == "step").sum() == (pa["estimator"] == "step").sum()


def test_an_indivisible_batch_is_a_one_line_error(tmp_path):
    out = _torchrun(tmp_path, "resnet_images", "clip_lr5", "--batch_size", "31")
    assert out.returncode != 0
    assert "Invalid batch_size: 31 (not divisible by the 2 processes of torchrun)" in out.stderr


@pytest.mark.parametrize("run", ["clip_lr5"])
def test_image_runs_train_data_parallel(tmp_path, run):
    out = _torchrun(tmp_path, "resnet_images", run, "--epochs", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    cfg = preset("resnet_images", run, "smoke", device="cpu", epochs=1)
    got = RunStore(tmp_path).load("resnet_images", cfg.identity())
    assert got is not None and got.meta["world_size"] == 2
    assert np.all(np.isfinite(got.table()["loss"]))
