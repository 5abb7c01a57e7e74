"""Tests of clipcore.recordings: a recording made from smoke-profile runs in a temporary
directory is listed with its provenance, read back like a stored run, told current from stale,
and a malformed manifest or a changed file is an error (exit status 2)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from clipcore import recordings as R
from clipcore.__main__ import main as clipcore_main
from clipcore.studies import load_runs
from clipcore.training import presets

EXP = "resnet_images"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    runs = load_runs(EXP, "smoke", results, device="cpu")
    return results, runs


def _add(results, recorded, *extra):
    return R.main(
        [
            "add",
            "--experiment",
            EXP,
            "--profile",
            "smoke",
            "--results-dir",
            str(results),
            "--recorded-dir",
            str(recorded),
            *extra,
        ]
    )


def test_add_then_check_lists_provenance_and_current(trained, tmp_path, capsys):
    results, runs = trained
    assert _add(results, tmp_path) == 0
    entries = json.loads((tmp_path / R.MANIFEST).read_text())["recordings"]
    assert [e["run"] for e in entries] == sorted(presets.EXPERIMENTS[EXP])
    for e in entries:
        run = runs[e["run"]].run
        assert e["config_hash"] == run.meta["config_hash"] and e["profile"] == "smoke"
        assert e["device"] == "cpu" and e["torch"] == run.meta["torch"]
        assert e["wall_s"] == pytest.approx(run.meta["wall_time"])
        assert set(e["files"]) == set(R.TABLES)
        for rec in e["files"].values():
            assert rec["path"].endswith(".csv.gz") and (tmp_path / rec["path"]).stat().st_size < 200_000
    capsys.readouterr()
    assert clipcore_main(["recordings", "check", "--recorded-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("current") == 3 and "stale" not in out
    assert all(e["config_hash"] in out for e in entries)


def test_recorded_tables_read_back_as_the_stored_ones(trained, tmp_path):
    results, runs = trained
    R.add(EXP, "smoke", results, tmp_path)
    loaded = R.load_recorded(EXP, "smoke", tmp_path)
    assert list(loaded) == list(presets.EXPERIMENTS[EXP])
    for name, (rec, run, cfg) in loaded.items():
        assert rec.status == "current" and cfg == runs[name].config.replace(
            device="auto", checkpoint_every=None
        )
        for table in R.TABLES:
            want, got = runs[name].run.table(table), run.table(table)
            assert want.keys() == got.keys()
            for col in want:
                if want[col].dtype.kind == "f":
                    np.testing.assert_array_equal(want[col], got[col])
                else:
                    assert list(want[col]) == list(got[col])
    # Recording again gives the same bytes: gzip without a timestamp.
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.gz")}
    R.add(EXP, "smoke", results, tmp_path)
    assert before == {p: p.read_bytes() for p in tmp_path.rglob("*.gz")}


def test_a_changed_preset_makes_the_recording_stale(trained, tmp_path, monkeypatch, capsys):
    results, _ = trained
    R.add(EXP, "smoke", results, tmp_path)
    scale = dict(presets.SCALES["smoke"][EXP], epochs=presets.SCALES["smoke"][EXP]["epochs"] + 1)
    monkeypatch.setitem(presets.SCALES["smoke"], EXP, scale)
    recs = R.check(tmp_path)
    assert {r.status for r in recs} == {"stale"}
    assert all("epochs" in r.reason for r in recs)
    assert R.main(["check", "--recorded-dir", str(tmp_path)]) == 0
    assert "stale: the preset changed since in: epochs" in capsys.readouterr().out
    assert R.main(["check", "--strict", "--recorded-dir", str(tmp_path)]) == 1


def test_a_run_gone_from_the_presets_is_stale(trained, tmp_path, monkeypatch):
    results, _ = trained
    R.add(EXP, "smoke", results, tmp_path)
    runs = dict(presets.EXPERIMENTS[EXP])
    runs.pop("momentum")
    monkeypatch.setitem(presets.EXPERIMENTS, EXP, runs)
    status = {r.entry["run"]: r.status for r in R.check(tmp_path)}
    assert status == {"momentum": "stale", "noclip_lr1": "current", "clip_lr5": "current"}


def _edit_manifest(path, fn):
    doc = json.loads((path / R.MANIFEST).read_text())
    fn(doc["recordings"])
    (path / R.MANIFEST).write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda e: e[0].pop("commit"), "missing 'commit'"),
        (lambda e: e[0].update(wall_s="long"), "'wall_s' has the wrong type"),
        (lambda e: e[0].update(config_hash="0" * 12), "is not the hash of its config"),
        (lambda e: e.append(dict(e[0])), "a second entry"),
        (lambda e: e[0]["files"]["metrics"].update(path="../../etc/passwd"), "leaves the recorded directory"),
    ],
)
def test_a_malformed_manifest_is_a_one_line_error(trained, tmp_path, capsys, damage, message):
    results, _ = trained
    R.add(EXP, "smoke", results, tmp_path)
    _edit_manifest(tmp_path, damage)
    assert R.main(["check", "--recorded-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(tmp_path / R.MANIFEST) in err and "\n" not in err


def test_unreadable_manifest_and_changed_file_are_errors(trained, tmp_path, capsys):
    results, _ = trained
    R.add(EXP, "smoke", results, tmp_path)
    f = next(tmp_path.rglob("metrics.csv.gz"))
    f.write_bytes(gzip.compress(b"step,loss\n1,0.5\n"))
    assert R.main(["check", "--recorded-dir", str(tmp_path)]) == 2
    assert "checksum differs" in capsys.readouterr().err
    f.unlink()
    assert R.main(["check", "--recorded-dir", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err
    (tmp_path / R.MANIFEST).write_text("{not json")
    assert R.main(["check", "--recorded-dir", str(tmp_path)]) == 2
    assert "not readable JSON" in capsys.readouterr().err


def test_nothing_to_record_is_an_error_naming_the_command(tmp_path, capsys):
    assert _add(tmp_path / "empty", tmp_path / "rec") == 2
    err = capsys.readouterr().err
    assert "no finished run" in err and "python -m clipcore train resnet_images --profile smoke" in err
    assert not (tmp_path / "rec" / R.MANIFEST).exists()
    assert _add(tmp_path / "empty", tmp_path / "rec", "--run", "nope") == 2
    assert "Invalid run: 'nope'" in capsys.readouterr().err


def test_no_manifest_means_no_recordings(tmp_path, capsys):
    assert R.check(tmp_path / "none") == []
    assert R.main(["check", "--recorded-dir", str(tmp_path / "none")]) == 0
    assert "no recordings" in capsys.readouterr().out


def test_recorded_study_current_stale_and_absent(trained, tmp_path, monkeypatch):
    from clipcore.studies import recorded_study

    results, runs = trained
    kw = dict(strong="clip_lr5", weak=["momentum", "noclip_lr1"], n_boot=50)
    absent = recorded_study(EXP, "smoke", tmp_path, **kw)
    assert absent.status == "absent" and absent.study is None
    assert "make record PROFILE=smoke EXPERIMENT=resnet_images" in absent.note
    R.add(EXP, "smoke", results, tmp_path)
    cur = recorded_study(EXP, "smoke", tmp_path, **kw)
    assert cur.status == "current" and "recorded on cpu" in cur.note and "match today's presets" in cur.note
    assert " h of training in all" in cur.note
    assert "step" in cur.study.probes
    fresh = runs["clip_lr5"].run.table("probes")
    assert cur.study.points["clip_lr5"]["step"]["step"].size == (fresh["estimator"] == "step").sum()
    scale = dict(presets.SCALES["smoke"][EXP], lr_halve_patience=3)
    monkeypatch.setitem(presets.SCALES["smoke"], EXP, scale)
    stale = recorded_study(EXP, "smoke", tmp_path, **kw)
    assert stale.status == "stale" and stale.study is not None
    assert stale.note.startswith("**Stale recording**") and "lr_halve_patience" in stale.note


def test_make_record_trains_resumes_and_records(tmp_path):
    """The recipe end to end at the smoke profile: a time-limited first command stops with
    status 3 and records nothing; the same command again finishes and records every run."""
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    cmd = ["make", "-s", "record", "PROFILE=smoke", f"EXPERIMENT={EXP}", "DEVICE=cpu"]
    cmd += [f"RESULTS_DIR={tmp_path / 'results'}", f"RECORDED_DIR={tmp_path / 'recorded'}"]
    first = subprocess.run(
        [*cmd, "TIME_LIMIT=0.00001"], cwd=root, capture_output=True, text=True, timeout=600
    )
    assert first.returncode != 0 and "run the same command again" in first.stdout
    assert not (tmp_path / "recorded" / R.MANIFEST).exists()
    second = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    recs = R.check(tmp_path / "recorded")
    assert sorted(r.entry["run"] for r in recs) == sorted(presets.EXPERIMENTS[EXP])
    assert all(r.status == "current" for r in recs)
    assert second.stdout.count("current") >= 3
