"""``python -m clipcore train``: train and store the runs of an experiment at a profile's scale.

The configs come from :func:`clipcore.training.presets.preset`, the same table the pages ask,
so a run trained here is the run a page loads (whatever ``--device`` was given: the device is
housekeeping, not part of a run's identity).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

from ..profiles import DEFAULT_PROFILE, PROFILES
from ..yaml12 import parse_value
from .config import TrainConfig
from .loop import train
from .presets import EXPERIMENTS, SCALES, preset
from .store import RunStore

__all__ = ["main"]


def _help_epilog() -> str:
    lines = ["experiments and runs:"]
    for exp, runs in EXPERIMENTS.items():
        for run, settings in runs.items():
            lines.append(f"  {exp} {run}: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    lines.append("")
    lines.append(
        "profiles (" + "; ".join(f"{p}: {what}" for p, what in PROFILES.items()) + ") set, per "
        "experiment (" + " / ".join(PROFILES) + "):"
    )
    for exp in EXPERIMENTS:
        keys = list(dict.fromkeys(k for p in PROFILES for k in SCALES[p][exp]))
        vals = [f"{k} " + "/".join(str(SCALES[p][exp].get(k)) for p in PROFILES) for k in keys]
        lines.append(f"  {exp}: " + ", ".join(vals))
    lines.append("")
    lines.append(
        "config keys (--key value overrides the preset; values are parsed as YAML, "
        "e.g. null, true, [fixed, hessian]; TrainConfig defaults in brackets):"
    )
    for f in dataclasses.fields(TrainConfig):
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        lines.append(f"  --{f.name:<18} {f.metadata['help']} [{default}]")
    return "\n".join(lines)


_STRING_KEYS = ("name", "device", "data_dir", "optimizer", "dataset", "amp_dtype")


def _parse_overrides(extra: list[str]) -> dict:
    """``--key value`` / ``--key=value`` pairs; values read as YAML 1.2 (``null``, ``1e-3``,
    lists...; :mod:`clipcore.yaml12`)."""
    keys = set(TrainConfig.keys())
    out, i = {}, 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--") or tok == "--":
            raise ValueError(f"unexpected argument {tok!r} (config keys are given as --key value)")
        key, has_value, value = tok[2:].partition("=")
        key = key.replace("-", "_")
        if key not in keys:
            raise ValueError(f"unknown config key {key!r} (see --help for the keys)")
        if key == "experiment":
            raise ValueError("the experiment is the positional argument, not --experiment")
        if not has_value:
            if i + 1 >= len(extra):
                raise ValueError(f"config key {key!r} needs a value")
            value = extra[i + 1]
            i += 1
        i += 1
        out[key] = parse_value(value, what=f"--{key}")
        # String keys keep their text (a run named 1e3 stays "1e3"); null still means None.
        if key in _STRING_KEYS and out[key] is not None and not isinstance(out[key], str):
            out[key] = value
    return out


def main(argv=None) -> int:
    """``python -m clipcore train <experiment> [--run NAME] [--profile P] [--key value ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m clipcore train",
        description="Train and store the runs of an experiment (all its runs unless --run).",
        epilog=_help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", choices=list(EXPERIMENTS))
    parser.add_argument(
        "--run",
        "--runs",
        dest="run",
        action="append",
        help="run name (repeatable); default: every run. Under torchrun write --runs: torchrun's own "
        "parser takes --run for its --run-path",
    )
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES))
    parser.add_argument("--results-dir", default="results", help="run store root [default results]")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (overrides the config)")
    parser.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="MINUTES",
        help="checkpoint and stop once this command has run this long; run it again to resume "
        "(exit status 3 while runs are unfinished)",
    )
    try:
        args, extra = parser.parse_known_args(argv)
        overrides = _parse_overrides(extra)
        if args.device is not None:
            overrides["device"] = args.device
        runs = args.run or list(EXPERIMENTS[args.experiment])
        configs = [preset(args.experiment, r, args.profile, **overrides) for r in runs]
    except SystemExit as exc:  # --help, or an argparse error (exit 2)
        return int(exc.code or 0)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"python -m clipcore train: error: {exc}", file=sys.stderr)
        return 2

    if args.time_limit is not None and not args.time_limit > 0:
        parser.print_usage(sys.stderr)
        print(
            f"python -m clipcore train: error: Invalid --time-limit: {args.time_limit!r} (minutes, > 0)",
            file=sys.stderr,
        )
        return 2
    store = RunStore(args.results_dir)
    start = time.time()
    # Under torchrun every process runs this command; rank 0 reports.
    say = print if os.environ.get("RANK", "0") == "0" else (lambda *a, **k: None)
    for i, cfg in enumerate(configs):
        t = time.time()
        left = None if args.time_limit is None else args.time_limit * 60 - (t - start)
        if left is not None and left <= 0:
            say(f"time limit reached; {len(configs) - i} run(s) not started: run the same command again")
            return 3
        try:
            run = train(cfg, store, force=args.force, progress=not args.no_progress, time_limit=left)
        except (ValueError, FileNotFoundError) as exc:
            # Bad input found while running (data directory, a locked or damaged run): one line.
            print(f"python -m clipcore train: error: {exc}", file=sys.stderr)
            return 2
        if run is None:
            say(
                f"{cfg.experiment}/{cfg.name}: unfinished after {time.time() - t:.1f} s (time limit), "
                "checkpointed: run the same command again to resume"
            )
            return 3
        say(f"{cfg.experiment}/{cfg.name}: {run.path}  ({time.time() - t:.1f} s)")
    return 0
