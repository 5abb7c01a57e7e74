r"""The optimizer step: :class:`clipcore.optim.ClippedSGD` against torch's clip + SGD, and the floor.

One clipped SGD step with momentum 0.9 and weight decay 5e-4 (``max_norm`` below the gradients'
norm, so clipping is on), float32, timed for

``ours``
    ``ClippedSGD(params, lr, max_norm, momentum, weight_decay).step()``;
``foreach``
    ``clip_grad_norm_(params, max_norm, foreach=True)`` + ``torch.optim.SGD(foreach=True).step()``;
``fused``
    ``clip_grad_norm_(params, max_norm, foreach=True)`` + ``torch.optim.SGD(fused=True).step()``;
``floor``
    the bytes the step must move -- read the gradients once for the norm, then read gradients,
    parameters and momentum and write parameters and momentum: 6 x the parameters' bytes --
    divided by the copy bandwidth measured in the same run (``dst.copy_(src)`` of one flat
    tensor as large as the parameters, which moves 2 x its bytes).

on two layouts: ``large`` (4 tensors of 4 Mi floats, 64 MiB per set, bandwidth-bound) and
``resnet56`` (the 167 parameter tensors of a CIFAR ResNet-56, 0.85 M floats, launch-bound).
``temp MiB`` is what one step allocates (the profiler's CPU allocations; CUDA: the caching
allocator's count), the temporaries that make the first steps slow while an allocator warms up.
Times are medians of interleaved repetitions after a warm-up, on the CPU with one thread
(``torch.set_num_threads(1)``), on CUDA with a synchronisation around each step. Targets: ours
at most ``FOREACH_TARGET`` x foreach on both layouts and at most ``FLOOR_TARGET`` x the floor on
the large one.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time

import torch

from clipcore.models import ResNetCifar
from clipcore.optim import ClippedSGD

FOREACH_TARGET = 0.8  # ours / (torch clip + SGD(foreach))
FLOOR_TARGET = 1.15  # ours / memory-traffic floor, large layout
LR, MAX_NORM, MOMENTUM, WEIGHT_DECAY = 0.01, 1.0, 0.9, 5e-4
BYTES_PER_PARAM_BYTE = 6  # norm: read g; update: read g, x, m, write x, m


def layouts() -> dict[str, list[torch.Size]]:
    return {
        "large": [torch.Size([4 * 1024 * 1024])] * 4,
        "resnet56": [p.shape for p in ResNetCifar(depth=56).parameters()],
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _threads(device: torch.device):
    """One CPU thread while timing on the CPU (steady, comparable numbers on a shared machine)."""
    n = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _params(shapes, device: torch.device, seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=g).to(device)) for s in shapes]
    for p in params:  # norm ~ sqrt(numel) >> MAX_NORM: every step clips
        p.grad = torch.randn(p.shape, generator=g).to(device)
    return params


def _torch_step(params, opt):
    def step():
        torch.nn.utils.clip_grad_norm_(params, MAX_NORM, foreach=True)
        opt.step()

    return step


def _steps(shapes, device: torch.device) -> dict:
    """name -> a zero-argument step, each on its own copy of the same parameters."""
    ours = _params(shapes, device)
    foreach, fused = _params(shapes, device), _params(shapes, device)
    sgd = dict(lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    return {
        "ours": ClippedSGD(ours, max_norm=MAX_NORM, **sgd).step,
        "foreach": _torch_step(foreach, torch.optim.SGD(foreach, foreach=True, **sgd)),
        "fused": _torch_step(fused, torch.optim.SGD(fused, fused=True, **sgd)),
    }


def _allocated_mib(fn, device: torch.device) -> float:
    """MiB allocated while ``fn`` runs once (freed or not)."""
    if device.type == "cuda":
        _sync(device)
        before = torch.cuda.memory_stats(device).get("allocated_bytes.all.allocated", 0)
        fn()
        _sync(device)
        return (torch.cuda.memory_stats(device).get("allocated_bytes.all.allocated", 0) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return sum(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0) / 2**20


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the profiler's start/stop log lines (written by C++ to file descriptor 2)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def bench_layout(label: str, shapes, device: torch.device, reps: int, warmup: int = 3) -> dict:
    steps = _steps(shapes, device)
    numel = sum(s.numel() for s in shapes)
    nbytes = 4 * numel
    src = torch.randn(numel, device=device)
    dst = torch.empty_like(src)
    fns = dict(steps, copy=lambda: dst.copy_(src))
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(reps):  # interleaved: drifts in machine load hit every method alike
        for name, fn in fns.items():
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    bandwidth = 2 * nbytes / med["copy"]
    floor = BYTES_PER_PARAM_BYTE * nbytes / bandwidth
    return dict(
        label=label,
        tensors=len(shapes),
        numel=numel,
        ms={k: 1e3 * med[k] for k in steps},
        floor_ms=1e3 * floor,
        bandwidth=bandwidth,
        temp={k: _allocated_mib(fn, device) for k, fn in steps.items()},
        vs_foreach=med["ours"] / med["foreach"],
        vs_fused=med["ours"] / med["fused"],
        vs_floor=med["ours"] / floor,
    )


def run(device: torch.device, quick: bool = False) -> int:
    """Print the table; returns the number of targets missed."""
    print(
        f"optimizer step: clipped SGD, momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}, float32, "
        + ("1 CPU thread" if device.type == "cpu" else str(device))
        + f"; targets: ours/foreach <= {FOREACH_TARGET}, ours/floor <= {FLOOR_TARGET} (large)"
    )
    head = (
        f"{'layout':<9} {'tensors':>7} {'params':>10} {'ours ms':>8} {'foreach':>8} {'fused':>8} "
        f"{'floor':>8} {'GB/s':>6}  {'ours/foreach':>12} {'ours/fused':>10} {'ours/floor':>10}  "
        f"{'temp MiB ours/foreach/fused':>27}  targets"
    )
    print(head)
    print("-" * len(head))
    missed = 0
    with _threads(device):
        for label, shapes in layouts().items():
            large = label == "large"
            reps = (5 if quick else 15) if large else (20 if quick else 60)
            r = bench_layout(label, shapes, device, reps)
            ok = r["vs_foreach"] <= FOREACH_TARGET and (not large or r["vs_floor"] <= FLOOR_TARGET)
            missed += not ok
            ms, temp = r["ms"], r["temp"]
            print(
                f"{label:<9} {r['tensors']:>7} {r['numel']:>10,} {ms['ours']:>8.2f} {ms['foreach']:>8.2f} "
                f"{ms['fused']:>8.2f} {r['floor_ms']:>8.2f} {r['bandwidth'] / 1e9:>6.1f}  "
                f"{r['vs_foreach']:>12.2f} {r['vs_fused']:>10.2f} {r['vs_floor']:>10.2f}  "
                f"{temp['ours']:>9.1f}/{temp['foreach']:>7.1f}/{temp['fused']:>7.1f}  "
                f"{'PASS' if ok else 'FAIL'}",
                flush=True,
            )
    print(
        "(floor = 6 x parameter bytes / copy bandwidth; GB/s = that copy bandwidth; "
        "ratios below 1 are faster than the baseline)"
    )
    return missed
