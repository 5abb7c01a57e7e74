"""The optimizers under DDP and FSDP2 (``fully_shard``, DTensor gradients) take the step of one
process on the whole batch: two CPU processes over gloo, each half the batch.

The module runs itself as the two workers (``python tests/test_distributed.py --rank R ...``);
each worker also trains the single-process reference on the whole batch and writes, per case,
the largest difference from it. One pair of processes serves every test here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

WORLD = 2
STEPS = 4
TOL = 1e-10
TIMEOUT_S = 240

# case -> (wrapper, optimizer class name, kwargs, step at which rank 1 gets a NaN gradient)
CASES = {
    "ddp-clipped": ("ddp", "ClippedSGD", dict(lr=0.1, max_norm=0.05, momentum=0.9, weight_decay=1e-3), None),
    "ddp-normalized": ("ddp", "NormalizedSGD", dict(lr=0.05, beta=0.1), None),
    "fsdp-clipped": (
        "fsdp",
        "ClippedSGD",
        dict(lr=0.1, max_norm=0.05, momentum=0.9, weight_decay=1e-3),
        None,
    ),
    "fsdp-clipped-foreach": (
        "fsdp",
        "ClippedSGD",
        dict(lr=0.1, max_norm=0.05, momentum=0.9, weight_decay=1e-3, impl="foreach"),
        None,
    ),
    "fsdp-clipped-loop": ("fsdp", "ClippedSGD", dict(lr=0.1, max_norm=0.05, momentum=0.9, impl="loop"), None),
    "fsdp-clipped-per-group": ("fsdp", "ClippedSGD", dict(lr=0.1, max_norm=0.05, per_group=True), None),
    "fsdp-normalized": ("fsdp", "NormalizedSGD", dict(lr=0.05, beta=0.1), None),
    "fsdp-smoothed": ("fsdp", "SmoothedClippedSGD", dict(lr=0.1, L0=1.0, L1=5.0, momentum=0.5), None),
    "fsdp-normalized-momentum": ("fsdp", "NormalizedMomentumSGD", dict(lr=0.02, beta=0.9), None),
    "fsdp-mixed": ("fsdp", "MixedClippedSGD", dict(lr=0.1, max_norm=0.05, nu=0.5), None),
    "fsdp-skip-on-one-rank": ("fsdp", "ClippedSGD", dict(lr=0.1, max_norm=0.05, momentum=0.9), 2),
}


# ---------------------------------------------------------------------------------------------
# The worker (run as a script)
# ---------------------------------------------------------------------------------------------


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 3),
    ).double()


def _batch(step):
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(32, 6, generator=g, dtype=torch.float64), torch.randn(
        32, 3, generator=g, dtype=torch.float64
    )


def _groups(model):
    """Two parameter groups (the first layer at a smaller lr) so the norm must span both."""
    params = list(model.parameters())
    return [dict(params=params[:2], lr=0.03), dict(params=params[2:])]


def _train(model, opt, rank, bad_step, sharded_batch):
    """``STEPS`` steps of ``opt`` on ``model`` (the DDP wrapper itself: its forward syncs)."""
    for step in range(STEPS):
        x, y = _batch(step)
        if sharded_batch:
            x, y = x[rank * 16 : (rank + 1) * 16], y[rank * 16 : (rank + 1) * 16]
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y).backward()
        if step == bad_step and (not sharded_batch or rank == 1):
            grad = next(iter(model.parameters())).grad
            local = grad.to_local() if hasattr(grad, "to_local") else grad
            local.view(-1)[0] = float("nan")
        opt.step()
    return opt


def _full(p):
    return p.full_tensor() if hasattr(p, "full_tensor") else p


def _run_case(name, rank):
    import torch.distributed as dist

    from clipcore import optim

    wrapper, cls_name, kw, bad_step = CASES[name]
    cls = getattr(optim, cls_name)
    ref_model = _model()
    ref_opt = _train(ref_model, cls(_groups(ref_model), **kw), rank, bad_step, sharded_batch=False)
    model = params_of = _model()
    if wrapper == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(params_of)
    else:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (WORLD,))
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
    opt = _train(model, cls(_groups(params_of), **kw), rank, bad_step, sharded_batch=True)
    diff = max(
        float((_full(p).detach() - q.detach()).abs().max())
        for p, q in zip(params_of.parameters(), ref_model.parameters())
    )
    dist.barrier()
    return dict(
        diff=diff,
        skipped=int(opt.skipped_steps),
        ref_skipped=int(ref_opt.skipped_steps),
        norm=float(opt.last_grad_norm),
        ref_norm=float(ref_opt.last_grad_norm),
        dtensor=type(next(params_of.parameters())).__name__,
    )


def _worker_main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--init", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import datetime

    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=args.init,
        rank=args.rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),
    )
    results = {}
    for name in CASES:
        try:
            results[name] = _run_case(name, args.rank)
        except ImportError as exc:  # e.g. a torch without fully_shard
            results[name] = dict(unavailable=str(exc))
        except Exception as exc:  # recorded per case, so the other cases still report
            results[name] = dict(error=f"{type(exc).__name__}: {exc}")
    Path(args.out, f"rank{args.rank}.json").write_text(json.dumps(results))
    dist.destroy_process_group()
    return 0


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


def _distributed_available() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_gloo_available()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if not _distributed_available():
        pytest.skip("needs torch.distributed with gloo")
    tmp = tmp_path_factory.mktemp("distributed")
    init = f"file://{tmp / 'rendezvous'}"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--rank", str(r), "--init", init, "--out", str(tmp)],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(WORLD)
    ]
    deadline = time.monotonic() + TIMEOUT_S
    logs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            logs.append(out)
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"distributed workers did not finish within {TIMEOUT_S} s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, p in enumerate(procs):
        assert p.returncode == 0, f"rank {r} exited with {p.returncode}:\n{logs[r][-3000:]}"
    return [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(WORLD)]


@pytest.mark.parametrize("name", CASES)
def test_distributed_step_equals_one_process_on_the_whole_batch(results, name):
    for rank in range(WORLD):
        r = results[rank][name]
        if "unavailable" in r:
            pytest.skip(r["unavailable"])
        assert "error" not in r, f"rank {rank}: {r['error']}"
        assert r["diff"] <= TOL, f"rank {rank}: parameters differ by {r['diff']:.3g}"
        assert r["norm"] == pytest.approx(r["ref_norm"], rel=1e-12)
        assert r["skipped"] == r["ref_skipped"]
        if name.startswith("fsdp"):
            assert r["dtensor"] == "DTensor"  # the sharded path really ran


def test_a_nan_on_one_rank_is_skipped_on_every_rank(results):
    """FSDP2: the NaN sits in rank 1's shard only; the global norm makes both ranks skip."""
    for rank in range(WORLD):
        r = results[rank]["fsdp-skip-on-one-rank"]
        if "unavailable" in r:
            pytest.skip(r["unavailable"])
        assert r.get("skipped") == 1 and r["diff"] <= TOL, r


if __name__ == "__main__":
    sys.exit(_worker_main())
