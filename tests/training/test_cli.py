"""Tests of clipcore.training.cli (``python -m clipcore train``): help, errors, and that the
runs it trains are the runs the pages load."""

from __future__ import annotations

from clipcore import studies
from clipcore.__main__ import main as clipcore_main
from clipcore.training import EXPERIMENTS, RunStore, TrainConfig, preset
from clipcore.training.cli import main


def test_cli_help_lists_experiments_runs_and_keys(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for exp, runs in EXPERIMENTS.items():
        assert exp in out
        for run in runs:
            assert run in out
    for key in TrainConfig.keys():
        assert f"--{key}" in out


def test_python_m_clipcore_train_dispatches_to_the_cli(capsys):
    assert clipcore_main(["train", "--help"]) == 0
    assert "python -m clipcore train" in capsys.readouterr().out
    assert clipcore_main(["train", "nope"]) == 2


def test_cli_unknown_key_and_bad_value_exit_2(capsys):
    assert main(["lstm_ptb", "--bogus_key", "1"]) == 2
    assert "bogus_key" in capsys.readouterr().err
    assert main(["lstm_ptb", "--lr", "-1"]) == 2
    assert "lr" in capsys.readouterr().err
    assert main(["nope"]) == 2


def test_cli_trains_and_stores(tmp_path, capsys):
    argv = [
        "resnet_images",
        "--run",
        "clip_lr5",
        "--profile",
        "smoke",
        "--results-dir",
        str(tmp_path),
        "--epochs",
        "1",
        "--estimators",
        "[fixed]",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    cfg = preset("resnet_images", "clip_lr5", "smoke", epochs=1, estimators=["fixed"])
    run = RunStore(tmp_path).load("resnet_images", cfg.identity())
    assert run is not None and str(run.path) in out
    assert set(run.table("probes")["estimator"]) == {"fixed", "step"}  # step probes: the preset's


def test_the_runs_the_cli_trains_are_the_runs_the_pages_load(tmp_path, capsys):
    # The bug: the CLI stored its runs under a hash of the full config (device "cpu", no
    # checkpoint cadence) while the pages asked for device "auto" with the profile's cadence,
    # so the pages never found them (and had no checkpoint to measure at).
    argv = [
        "lstm_ptb",
        "--profile",
        "smoke",
        "--run",
        "clip_lr30",
        "--device",
        "cpu",
        "--results-dir",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(argv) == 0
    capsys.readouterr()
    runs = studies.load_runs(
        "lstm_ptb", "smoke", tmp_path, runs=["clip_lr30"], device="auto", train_missing=False
    )
    r = runs["clip_lr30"]
    assert not r.trained and r.run.meta["finished"]
    assert r.run.meta["housekeeping"]["device"] == "cpu"
    assert r.run.load_checkpoint() is not None
    model, step = studies.checkpoint_model(r.run, r.config)
    assert step > 0 and step % preset("lstm_ptb", "clip_lr30", "smoke").checkpoint_every == 0


def test_a_second_process_training_the_same_run_is_refused(tmp_path):
    """Two processes, one run: the second refuses with a one-line error naming the run and the
    holder, and the first writer's rows are untouched."""
    import os
    import subprocess
    import sys

    cfg = preset("lstm_ptb", "clip_lr30", "smoke", device="cpu")
    store = RunStore(tmp_path)
    with store.start(cfg.experiment, cfg.identity()) as writer:  # this process writes the run
        writer.log(1, loss=1.0)
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "clipcore",
                "train",
                "lstm_ptb",
                "--profile",
                "smoke",
                "--run",
                "clip_lr30",
            ]
            + ["--device", "cpu", "--results-dir", str(tmp_path), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m clipcore train: error: run 'clip_lr30-")
    assert f"is being written by process {os.getpid()}" in lines[0]
    assert [row["step"] for row in writer.rows()] == ["1"]


def test_runtime_errors_are_one_line_with_status_2_and_leave_no_run_directory(tmp_path, capsys):
    missing = tmp_path / "no-such-images"
    argv = ["resnet_images", "--run", "clip_lr5", "--profile", "smoke", "--device", "cpu"]
    argv += ["--dataset", "auto", "--data_dir", str(missing), "--results-dir", str(tmp_path / "r")]
    assert main(argv + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: Invalid data_dir" in err[0] and str(missing) in err[0]
    assert not list((tmp_path / "r").glob("*/*"))  # the failed load left no (empty) run directory


def test_cli_values_are_yaml_1_2(capsys):
    # 1e-3 is a number in YAML 1.2 (a string in PyYAML's YAML 1.1).
    from clipcore.training.cli import _parse_overrides

    assert _parse_overrides(["--lr", "1e-3", "--seed", "7", "--name", "1e3"]) == {
        "lr": 0.001,
        "seed": 7,
        "name": "1e3",
    }
    assert main(["lstm_ptb", "--estimators", "[fixed"]) == 2
    assert "Invalid --estimators: '[fixed' is not valid YAML" in capsys.readouterr().err
    assert main(["lstm_ptb", "--seed", str(2**64)]) == 2
    assert "Invalid seed" in capsys.readouterr().err


def test_cli_time_limit_stops_with_status_3_and_the_same_command_resumes(tmp_path, capsys):
    argv = ["lstm_ptb", "--run", "clip_lr30", "--profile", "smoke", "--results-dir", str(tmp_path)]
    argv += ["--no-progress", "--time-limit", "0.00001"]
    assert main(argv) == 3
    assert "unfinished" in capsys.readouterr().out
    cfg = preset("lstm_ptb", "clip_lr30", "smoke")
    assert RunStore(tmp_path).load("lstm_ptb", cfg.identity()) is None
    assert main(argv[:-2]) == 0
    run = RunStore(tmp_path).load("lstm_ptb", cfg.identity())
    assert run is not None and run.meta["resumes"] == 1
    assert main(argv[:-1] + ["0"]) == 2
    assert "--time-limit" in capsys.readouterr().err
