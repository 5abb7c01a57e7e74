r"""``python -m benchmarks [--device D] [--quick] [--only optim|steps]``: optimizer and training speed.

Two parts, both run by default. ``optim`` (:mod:`benchmarks.optimizers`): the clipped-SGD step
of :class:`clipcore.optim.ClippedSGD` against torch's ``clip_grad_norm_`` + ``SGD`` (foreach and
fused) and against the memory-traffic floor, as ratios. ``steps``: for each model -- the LSTM
language model at the ``ci`` and ``paper`` sizes of :data:`clipcore.training.presets.SCALES` and
ResNet-20 (batch 128) -- the harness prints:

``step``
    median wall time of one *plain training step* of :mod:`clipcore.training.loop` (forward, loss,
    backward, clipped-SGD update; LSTM chunks of exactly ``bptt`` tokens), and steps/s.
``fixed``
    :func:`clipcore.smoothness.estimate` ``("fixed", points=(0.5,))`` -- ONE point on the
    segment -- on probe data of ONE training batch (LSTM: one ``bptt`` x ``batch`` chunk from
    a zero hidden state; ResNet: one batch of ``batch`` images), as a multiple of ``step``.
    It evaluates the gradient twice (at :math:`x_t` and at the point).
``reuse``
    the same estimate when the caller already holds :math:`\nabla f(x_t)` on the probe data
    (``estimate(..., grad_before=...)``): here the probe data is the training step's own batch
    (the LSTM step starts from a zero hidden state, as a probe chunk does) and the gradient is
    the one that step computed, so only the point is evaluated. ``reuse err`` is the relative
    difference from the same estimate computed without reuse, a check that the two
    gradients are of the same function. Target: at most 1.5 steps (PASS/FAIL).
``faithful``
    the authors' estimator on the same amount of data, in steps.
``hessian/iter``
    ``estimate("hessian", power_iters=k)`` on the same batch divided by ``k`` (the first-order
    pass amortised over the ``k`` Hessian-vector products), in steps.

Times are medians over repetitions after a warm-up, with ``torch.cuda.synchronize`` around
each one on CUDA. ``--quick`` uses fewer repetitions and, on the CPU, skips the paper-size
LSTM (one step there takes tens of seconds on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from benchmarks import optimizers
from clipcore import smoothness as S
from clipcore.runtime import resolve_device
from clipcore.training import loop as L
from clipcore.training.config import TrainConfig
from clipcore.training.presets import preset
from clipcore.training.tasks import make_task

FIXED_TARGET = 1.5  # the fixed estimator at one point must cost at most this many steps
REUSE_TOL = 1e-3  # float32: the step's gradient and the probe's agree to rounding, not bits


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(fn, reps: int, device: torch.device) -> float:
    times = []
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _specs(quick: bool, device: torch.device):
    """(label, config) of every benchmarked model; probe data = one training batch."""
    common = dict(device=str(device), probe_chunks=1, checkpoint_every=None)
    lstm = dict(random_bptt=False, **common)  # every chunk exactly bptt long
    specs = [("LSTM ci", preset("lstm_ptb", "clip_lr30", "ci", **lstm))]
    if not (quick and device.type == "cpu"):
        specs.append(("LSTM paper", preset("lstm_ptb", "clip_lr30", "paper", **lstm)))
    specs.append(("ResNet-20", preset("resnet_images", "clip_lr5", "paper", **common)))
    return specs


def _build_task(cfg: TrainConfig, device: torch.device):
    try:
        return make_task(cfg, device), cfg
    except FileNotFoundError:
        # No CIFAR-10 / Fashion-MNIST here: time the same network on the digits images.
        cfg = cfg.replace(dataset="digits", n_train=None)
        return make_task(cfg, device), cfg


def bench_one(label: str, cfg: TrainConfig, device: torch.device, quick: bool) -> dict:
    heavy = device.type == "cpu" and cfg.experiment == "lstm_ptb" and cfg.batch_size >= 128
    warmup, reps, est_reps, iters = (1, 3, 1, 2) if quick else (2, 10, 3, 10)
    if heavy:
        warmup, reps, est_reps, iters = 1, 2, 1, 2
    torch.manual_seed(cfg.seed)
    task, cfg = _build_task(cfg, device)
    amp = L._Amp(cfg, device)
    params = list(task.model.parameters())
    opt = L.make_optimizer(cfg, params, nonfinite="ignore")
    task.start_epoch()

    def batch():
        if task.epoch_done():
            task.start_epoch()
        return task.next_batch()

    def plain_step():
        L._train_step(task, opt, batch(), cfg.lr, amp, snapshot=False)

    for _ in range(warmup):
        plain_step()
    step = _median_time(plain_step, reps, device)
    # One more step for the segment x_t -> x_{t+1} the estimators look at, on a batch that
    # starts an epoch (the LSTM's hidden state is zero, as at a probe chunk marked first).
    task.start_epoch()
    b = batch()
    # The step scales .grad in place (as clip_grad_norm_ does): keep the pre-clip gradient at
    # x_t on b from just before the update.
    step_grad, optimizer_step = [], opt.step

    def step_keeping_grad(*args, **kwargs):
        step_grad[:] = [p.grad.detach().clone() for p in params]
        return optimizer_step(*args, **kwargs)

    opt.step = step_keeping_grad
    before = L._train_step(task, opt, b, cfg.lr, amp, snapshot=True)["before"]
    opt.step = optimizer_step
    after = [p.detach() for p in params]
    data = task.probe_data()
    own = S.ProbeData.pinned([task.probe_chunk(b)], data["fixed"].loss)

    def est(name, probe=None, **kw):
        return lambda: S.estimate(name, task.model, before, after, probe or data[name], **kw)

    fixed = _median_time(est("fixed", points=(0.5,)), est_reps, device)
    reuse = _median_time(est("fixed", own, points=(0.5,), grad_before=step_grad), est_reps, device)
    exact = est("fixed", own, points=(0.5,))().smoothness
    reuse_err = abs(est("fixed", own, points=(0.5,), grad_before=step_grad)().smoothness - exact) / exact
    faithful = _median_time(est("faithful"), est_reps, device)
    hessian = _median_time(est("hessian", power_iters=iters), est_reps, device) / iters
    shape = f"{cfg.batch_size}x{cfg.bptt}" if cfg.experiment == "lstm_ptb" else f"{cfg.batch_size}"
    return dict(
        label=label,
        shape=shape,
        params=sum(p.numel() for p in params),
        step=step,
        fixed=fixed / step,
        reuse=reuse / step,
        reuse_err=reuse_err,
        faithful=faithful / step,
        hessian=hessian / step,
        dataset=task.dataset_name,
        iters=iters,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; skip paper LSTM on CPU")
    parser.add_argument(
        "--only", choices=("optim", "steps"), help="run one part: the optimizer step, or training steps"
    )
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    print(
        f"clipcore benchmarks: device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        + f", torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)"
        + (", --quick" if args.quick else "")
    )
    if args.only != "steps":
        optimizers.run(device, quick=args.quick)
        if args.only == "optim":
            return 0
        print()
    print(
        "costs in plain training steps of the same model and batch; target: fixed at one "
        f"point, reusing the step's gradient (reuse) <= {FIXED_TARGET} steps"
    )
    head = (
        f"{'model':<11} {'batch':>7} {'params':>9} {'step ms':>9} {'steps/s':>8} "
        f"{'fixed':>6} {'reuse':>6} {'reuse err':>9} {'faithful':>8} {'hess/it':>7}  reuse<={FIXED_TARGET}"
    )
    print(head)
    print("-" * len(head))
    failed = 0
    t0 = time.perf_counter()
    for label, cfg in _specs(args.quick, device):
        r = bench_one(label, cfg, device, args.quick)
        # PASS needs the cost target and a reused gradient that gives the same estimate.
        ok = r["reuse"] <= FIXED_TARGET and r["reuse_err"] <= REUSE_TOL
        failed += not ok
        print(
            f"{r['label']:<11} {r['shape']:>7} {r['params']:>9,} {1e3 * r['step']:>9.1f} "
            f"{1 / r['step']:>8.2f} {r['fixed']:>6.2f} {r['reuse']:>6.2f} {r['reuse_err']:>9.1e} "
            f"{r['faithful']:>8.2f} {r['hessian']:>7.2f}  {'PASS' if ok else 'FAIL'}",
            flush=True,
        )
    if args.quick and device.type == "cpu":
        print("LSTM paper: skipped with --quick on the CPU (run without --quick, or on a GPU)")
    print(f"({time.perf_counter() - t0:.0f} s; hess/it = estimate('hessian', power_iters=k) / k)")
    if failed:
        print(f"{failed} model(s) above the fixed-estimator target (or with a reuse mismatch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
