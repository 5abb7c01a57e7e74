r"""The one training loop behind every experiment page and ``python -m clipcore train``.

:func:`train` runs one :class:`~clipcore.training.config.TrainConfig` on its task
(:mod:`clipcore.training.tasks`) and stores it in a :class:`~clipcore.training.store.RunStore`.
Every step logs the pre-clip gradient norm :math:`\|g_t\|` (the x-axis of Zhang et al., ICLR
2020, Figs. 1-3), whether its method clipped the step (for clipped SGD :math:`\|g_t\| > \gamma`;
every method's rule and threshold ``clip_threshold``: :mod:`clipcore.training.methods`), the learning rate and the
step length :math:`\|x_{t+1} - x_t\|`, which is :math:`\eta \min\{1, \gamma/\|g_t\|\}\|g_t\|`
for clipped SGD without momentum or weight decay (``eps`` as in ``clip_grad_norm_``), and the
measured parameter displacement otherwise.

**Probes.** Two kinds, both on the segment :math:`x_t \to x_{t+1}` of one step (the paper's
estimator, Sec. 3), both rows of the ``probes`` table (step, estimator, grad_norm, smoothness,
the step's own ``train_grad_norm`` and ``step_norm``, ``probe_loss``):

- *pinned* probes, at steps :math:`1, 1 + k, 1 + 2k, \dots` (``k = probe_every``): each
  estimator of ``estimators`` (:mod:`clipcore.smoothness`) on the task's pinned probe data,
  the same data at every probe;
- *step* probes (estimator ``"step"``), at steps :math:`1, 1 + j, \dots` (``j =
  step_probe_every``): the ``fixed`` estimator on the step's own batch and objective
  (``task.step_probe_data``), reusing the gradient the step computed at :math:`x_t`, so one
  probe costs one more gradient evaluation (at the midpoint) -- cheap enough to probe every
  step, as the authors did. Its data changes from step to step with the batch.

Probes run in full precision, outside autocast (with float16/bfloat16 autocast the step's
gradient is not the full-precision one, so a step probe then evaluates :math:`x_t` itself).

**Device and sync.** The device is chosen once, by :func:`clipcore.runtime.resolve_device`.
On the CPU every step's metrics are read with ``.item()`` right away; on CUDA they stay on
the device and are copied to the host in one transfer every ``CUDA_FLUSH_EVERY`` steps (and
at probes, epoch ends and checkpoints), and the optimiser skips its per-step finiteness
check; a non-finite loss or gradient norm raises ``FloatingPointError`` at the next flush
instead. With ``amp_dtype="float16"`` a ``GradScaler`` scales the loss; gradients are
unscaled before the norm is measured and clipped, and a step the scaler skips (inf/nan
gradient) is logged with its non-finite norm and a zero step length instead of stopping.

**Reproducibility.** Python, NumPy and torch are seeded from ``config.seed``; the tasks'
samplers are seeded from it too. A checkpoint (every ``checkpoint_every`` steps) holds the
model, the optimiser, all RNG and sampler states, the position in the epoch, the carried
hidden state and the learning-rate schedule; a resumed run writes exactly the rows an
uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
import warnings

import numpy as np
import torch
from torch import Tensor

from ..functional import global_norm
from ..models import count_parameters
from ..optim import ClippedSGD, NormalizedMomentumSGD, NormalizedSGD, SmoothedClippedSGD
from ..runtime import resolve_device, seed_everything
from ..smoothness import STEP_PROBE, estimate
from . import distributed, methods
from .config import TrainConfig
from .schedule import PlateauHalver
from .store import CHECKPOINT
from .tasks import Batch, make_task

__all__ = ["train", "make_optimizer", "CUDA_FLUSH_EVERY", "STEP_PROBE"]

# CUDA: per-step metrics stay on the device and are copied to the host every this many steps.
CUDA_FLUSH_EVERY = 50


def make_optimizer(cfg: TrainConfig, params, nonfinite: str = "raise"):
    """The optimiser of ``cfg.optimizer`` (``ClippedSGD`` with ``max_norm=None`` for plain or
    momentum SGD), with the clipper of ``cfg.clipper`` attached (:mod:`.methods`; the step
    applies it between backward and step)."""
    if cfg.optimizer == "normalized_sgd":
        opt = NormalizedSGD(params, lr=cfg.lr, beta=cfg.beta, nonfinite=nonfinite)
    elif cfg.optimizer == "smoothed_clipped_sgd":
        opt = SmoothedClippedSGD(
            params,
            lr=cfg.lr,
            L0=cfg.L0,
            L1=cfg.L1,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nonfinite=nonfinite,
        )
    elif cfg.optimizer == "normalized_momentum_sgd":
        opt = NormalizedMomentumSGD(params, lr=cfg.lr, beta=cfg.avg_beta, nonfinite=nonfinite)
    elif cfg.optimizer == "mixed_clipped_sgd":
        opt = methods.LoopMixedClippedSGD(
            params, lr=cfg.lr, threshold=cfg.max_norm, beta=cfg.avg_beta, nu=cfg.nu, nonfinite=nonfinite
        )
    else:
        opt = ClippedSGD(
            params,
            lr=cfg.lr,
            max_norm=cfg.max_norm,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nonfinite=nonfinite,
        )
    return methods.attach_clipper(opt, methods.make_clipper(cfg))


def _train_step(
    task, optimizer, batch: Batch, lr: float, amp: "_Amp", snapshot: bool, keep_grad: bool = False
) -> dict:
    """One optimiser step at learning rate ``lr``; returns device tensors (no host sync).

    Keys: ``objective``, ``loss`` (cross-entropy), ``n`` (targets), ``penalty`` (LSTM),
    ``grad_norm`` (pre-clip, of the unscaled gradient), ``coef`` (clip coefficient),
    ``clipped`` and ``clip_threshold`` (:func:`.methods.step_decision`, or the clipper's),
    ``update_norm`` (after a clipper: the norm of the clipped gradient the optimiser stepped
    on), ``momentum_norm`` (of a momentum-average method, else None) and ``before`` (the
    parameters before the step, when ``snapshot``), ``grad`` (a copy of the full-precision
    gradient at ``before``, when ``keep_grad`` and without autocast).
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    with amp.autocast():
        objective, ce, n, pen = task.loss(batch)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    snapshot = snapshot or methods.needs_snapshot(optimizer)
    before = [p.detach().clone() for p in params] if snapshot or keep_grad else None
    # A clipper runs in a step pre-hook, after any registered before it (the data-parallel
    # average of the gradients), so it clips the whole batch's gradient.
    hook = methods.clip_hook(optimizer)
    coef, grad, clip = None, None, None
    if amp.scaler is not None:
        # float16: clip and measure the UNSCALED gradient; the scaler skips inf/nan steps.
        amp.scaler.scale(objective).backward()
        amp.scaler.unscale_(optimizer)
        norm = global_norm([p.grad for p in params if p.grad is not None])
        amp.scaler.step(optimizer)
        amp.scaler.update()
        clip = None if hook is None else hook.take()
    else:
        objective.backward()
        if keep_grad and not amp.enabled:
            # Copied before step() and before the clipper: both may rescale .grad in place, and
            # the step probe wants the unclipped gradient at x_t.
            grad = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]
        optimizer.step()
        clip = None if hook is None else hook.take()
        norm = optimizer.last_grad_norm if clip is None else clip.norm
        coef = getattr(optimizer, "last_clip_coef", None)
    if clip is None:
        clipped, threshold = methods.step_decision(optimizer, norm)
    else:
        clipped, threshold = clip.clipped, clip.threshold
    momentum_norm = getattr(optimizer, "last_momentum_norm", None)
    return {
        "clipped": clipped.detach(),
        "clip_threshold": threshold.detach(),
        "momentum_norm": None if momentum_norm is None else momentum_norm.detach(),
        "objective": objective.detach(),
        "loss": ce.detach(),
        "n": n,
        "penalty": None if pen is None else pen.detach(),
        "grad_norm": norm.detach(),
        "coef": coef,
        **({} if clip is None else {"update_norm": optimizer.last_grad_norm.detach()}),
        "before": before,
        "grad": grad,
    }


class _Amp:
    """Autocast context and GradScaler, decided once from the config and the device."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.enabled = cfg.amp
        if cfg.amp and device.type != "cuda":
            raise ValueError(f"Invalid amp: True on device {device} (automatic mixed precision needs CUDA)")
        self.dtype = torch.bfloat16 if cfg.amp_dtype == "bfloat16" else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if cfg.amp and self.dtype == torch.float16 else None
        self.device_type = device.type

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


class _MetricBuffer:
    """Per-step rows whose values may be device tensors; ``flush`` copies them in one go."""

    def __init__(self, writer, every: int, scaled: bool = False):
        self.writer, self.every, self.rows = writer, every, []
        # float16 + GradScaler: an inf/nan gradient is a skipped step, not a divergence.
        self.scaled = scaled
        self.last: dict | None = None

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        keys = [k for k, v in self.rows[0].items() if isinstance(v, Tensor)]
        if keys:
            stacked = torch.stack([torch.stack([r[k].float() for k in keys]) for r in self.rows])
            values = stacked.cpu().tolist()  # the one host sync
        for i, row in enumerate(self.rows):
            out = dict(row)
            if keys:
                out.update(zip(keys, values[i]))
            if not (math.isfinite(out["loss"]) and (self.scaled or math.isfinite(out["grad_norm"]))):
                raise FloatingPointError(
                    f"non-finite loss {out['loss']} / grad_norm {out['grad_norm']} at step {out['step']}"
                )
            out["clipped"] = bool(out["clipped"])
            self.writer.log(**out)
            self.last = out
        self.rows = []


def _step_length(cfg: TrainConfig, lr: float, res: dict, params, exact_formula: bool) -> Tensor:
    r""":math:`\|x_{t+1} - x_t\|`: closed form where it is exact, measured otherwise."""
    if exact_formula:
        length = methods.closed_form_step_length(cfg, lr, res)
        if length is not None:
            return length
    diff = torch._foreach_sub([p.detach() for p in params], res["before"])
    return global_norm(diff)


def _probe_rows(task, cfg: TrainConfig, probe_data, before, step: int, epoch: int, train_norm: float):
    """One ``probes`` row per estimator for the segment ``before`` -> current parameters."""
    model = task.model
    after = [p.detach() for p in model.parameters()]
    step_norm = float(global_norm(torch._foreach_sub(after, before)))
    rows = []
    for name in cfg.estimators:
        # Seeded per step: a resumed run draws the same power-iteration start.
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        with warnings.catch_warnings():
            # cuDNN LSTMs warn when evaluated at swapped-in (non-flattened) weights: expected.
            warnings.filterwarnings("ignore", message=".*contiguous chunk of memory.*")
            est = estimate(
                name,
                model,
                before,
                after,
                probe_data[name],
                points=cfg.probe_points,
                power_iters=cfg.power_iters,
                generator=gen,
                draw=step,
            )
        rows.append(
            dict(
                step=step,
                epoch=epoch,
                estimator=name,
                grad_norm=est.grad_norm,
                smoothness=est.smoothness,
                train_grad_norm=train_norm,
                step_norm=step_norm,
                probe_loss=float(est.extra.get("loss", math.nan)),
                # hessian: whether the eigenvalue iteration met its tolerance, and its steps.
                **{k: est.extra[k] for k in ("converged", "iterations") if k in est.extra},
            )
        )
    return rows


def _step_probe_row(
    task, cfg: TrainConfig, batch: Batch, res: dict, step: int, epoch: int, train_norm: float
):
    """The ``step`` probe: ``fixed`` on the step's own batch, reusing its gradient at x_t."""
    model = task.model
    after = [p.detach() for p in model.parameters()]
    est = estimate(
        "fixed",
        model,
        res["before"],
        after,
        task.step_probe_data(batch),
        points=cfg.probe_points,
        grad_before=res["grad"],
    )
    return dict(
        step=step,
        epoch=epoch,
        estimator=STEP_PROBE,
        grad_norm=est.grad_norm,
        smoothness=est.smoothness,
        train_grad_norm=train_norm,
        step_norm=est.extra["step_norm"],
        probe_loss=float(est.extra.get("loss", math.nan)),
    )


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------


def _rng_state(device: torch.device) -> dict:
    """Every generator's state as tensors and plain Python values, so the checkpoint loads
    with ``weights_only=True`` (NumPy's key array becomes a list)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    st = {
        "python": random.getstate(),
        "numpy": [name, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    random.setstate(st["python"])
    name, keys, pos, has_gauss, gauss = st["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(st["torch"])
    if "cuda" in st:
        torch.cuda.set_rng_state_all(st["cuda"])


def train(
    config: TrainConfig | dict,
    store,
    force: bool = False,
    progress: bool = True,
    time_limit: float | None = None,
):
    """Train one run and store it; return the finished :class:`clipcore.training.store.Run`.

    An identical finished run in ``store`` is returned as it is (no training) unless
    ``force``; an interrupted one resumes from its last checkpoint (or restarts if it has
    none). ``time_limit`` (seconds of this call): once a step ends past it, the run is
    checkpointed and left unfinished, and None is returned; calling again resumes it, so a
    long run can proceed as several shorter commands with the rows of one uninterrupted run. Tables written: ``metrics`` (one row per step), ``eval`` (per epoch: split
    ``train`` = token/sample-weighted mean training loss of the epoch, ``valid`` (LSTM) or
    ``test`` (ResNet); LSTM: ``test`` once at the end), ``probes`` (see the module docstring).
    """
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"Invalid time_limit: {time_limit!r} (seconds, > 0, or None)")
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig or a dict, got {type(config).__name__}")
    cfg, identity = config, config.identity()
    if not force:
        done = store.load(cfg.experiment, identity)
        if done is not None:
            return done

    device = resolve_device(cfg.device)
    group = distributed.from_env(device.type)  # None unless launched by torchrun with N > 1
    if group is not None and device.type == "cuda":
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
    amp = _Amp(cfg, device)
    if group is not None and amp.scaler is not None:
        raise ValueError(
            "Invalid amp_dtype: 'float16' under torchrun (its loss scaling is per process; use bfloat16)"
        )
    # Data and model first: a failed data load leaves nothing in the store.
    seed_everything(cfg.seed)
    task = make_task(cfg, device)
    if group is not None:
        task.shard(group)
        distributed.broadcast_parameters(task.model)
    main = group is None or group.is_main
    if main:
        try:
            writer = store.start(cfg.experiment, identity, force=force, device=str(device))
        except FileExistsError:  # another process finished it since the load above
            return store.load(cfg.experiment, identity)
        # How the run was made (device string, checkpoint cadence, processes): recorded, not identifying.
        writer.meta["housekeeping"] = {k: v for k, v in config.to_dict().items() if k not in identity}
        writer.meta["world_size"] = 1 if group is None else group.world
    if group is not None:
        group.barrier()  # rank 0 has created (or resumed) the run; the others read its checkpoint
        if not main:
            writer = distributed.NullWriter(store.run_dir(cfg.experiment, identity) / CHECKPOINT)
    with writer:  # on an exception: flush the rows, record the time spent, stay unfinished
        run = _train_run(cfg, task, identity, store, writer, device, amp, progress, time_limit, group)
    if group is not None:
        group.barrier()  # rank 0 has finished (or checkpointed) the run
        if not main and run is not None:
            run = store.load(cfg.experiment, identity)
    return run


def _train_run(
    cfg: TrainConfig,
    task,
    identity: dict,
    store,
    writer,
    device,
    amp: "_Amp",
    progress: bool,
    time_limit,
    group,
):
    writer.meta["dataset"] = task.dataset_name
    writer.meta["n_parameters"] = count_parameters(task.model)
    if device.type == "cuda":  # provenance of recordings: which GPU
        writer.meta["device_name"] = torch.cuda.get_device_name(device)
    model = task.model
    model.train()
    params = list(model.parameters())
    on_cuda = device.type == "cuda"
    # CUDA: no per-step finiteness sync in the optimiser; _MetricBuffer checks at flush.
    optimizer = make_optimizer(cfg, params, nonfinite="ignore" if on_cuda else "raise")
    schedule = PlateauHalver(cfg.lr, task.lr_patience)
    main = group is None or group.is_main
    if group is not None:
        # Data parallel: average the shards' gradients just before each step (after the step
        # probe has copied its shard's own gradient), so the step is that of the whole batch.
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: distributed.average_gradients(params))
    probe_data = task.probe_data() if cfg.probe_every and main else None
    exact_formula = amp.scaler is None and cfg.momentum == 0.0 and cfg.weight_decay == 0.0

    step, epoch, in_epoch, wall_before = 0, 1, False, 0.0
    acc = {"sum": 0.0, "n": 0}  # the epoch's weighted training loss
    ckpt = writer.load_checkpoint()
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        methods.load_clipper_state(optimizer, ckpt.get("clipper"))
        task.load_state_dict(ckpt["task"])
        loop = ckpt["loop"]
        step, epoch, in_epoch, wall_before = loop["step"], loop["epoch"], loop["in_epoch"], loop["wall"]
        acc = dict(loop["acc"])
        schedule = PlateauHalver(**loop["schedule"])
        if amp.scaler is not None and ckpt.get("scaler"):
            amp.scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
    # Rows past the checkpoint (or all rows, without one) came from the interrupted process.
    writer.truncate_after(step)
    buffer = _MetricBuffer(writer, CUDA_FLUSH_EVERY if on_cuda else 1, scaled=amp.scaler is not None)

    spe = task.steps_per_epoch()
    total = cfg.max_steps if cfg.epochs is None else cfg.epochs * spe
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    bar = _progress_bar(total, step, f"{cfg.experiment}/{cfg.name}", progress and main)
    t0 = time.time()

    def end_epoch():
        """Flush, evaluate, log the epoch's rows and update the lr schedule."""
        buffer.flush()
        train_loss = float(acc["sum"]) / max(acc["n"], 1)
        writer.log_table(
            "eval",
            step=step,
            epoch=epoch,
            split="train",
            loss=train_loss,
            **task.epoch_extras(train_loss),
            lr=schedule.lr,
        )
        ev = task.evaluate(task.eval_split, amp.autocast)
        writer.log_table("eval", step=step, epoch=epoch, split=task.eval_split, lr=schedule.lr, **ev)
        schedule.update(ev["loss"])  # a no-op rule without patience
        return ev

    def checkpoint():
        buffer.flush()
        writer.flush()
        writer.save_checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "clipper": methods.clipper_state(optimizer),
                "task": task.state_dict(),
                "loop": {
                    "step": step,
                    "epoch": epoch,
                    "in_epoch": in_epoch,
                    "acc": dict(acc),
                    "wall": wall_before + time.time() - t0,
                    "schedule": dataclasses.asdict(schedule),
                },
                "rng": _rng_state(device),
                "scaler": amp.scaler.state_dict() if amp.scaler is not None else None,
            }
        )

    with bar:  # closed on an exception too
        while True:
            if not in_epoch:
                task.start_epoch()
                in_epoch, acc = True, {"sum": 0.0, "n": 0}
            if task.epoch_done():
                end_epoch()
                in_epoch = False
                if cfg.epochs is not None and epoch >= cfg.epochs:
                    break
                epoch += 1
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    checkpoint()
                continue

            batch = task.next_batch()
            step += 1
            lr = schedule.lr * batch.lr_scale
            # Probes are rank 0's (on its shard, for the step probe); the other ranks write nothing.
            probing = main and bool(cfg.probe_every) and (step - 1) % cfg.probe_every == 0
            step_probing = main and bool(cfg.step_probe_every) and (step - 1) % cfg.step_probe_every == 0
            res = _train_step(
                task, optimizer, batch, lr, amp, snapshot=probing or not exact_formula, keep_grad=step_probing
            )
            if group is not None:  # the logged loss is the whole batch's
                if res["penalty"] is None:
                    res["loss"] = distributed.mean(res["loss"])
                else:  # one all-reduce for both
                    res["loss"], res["penalty"] = distributed.mean(torch.stack([res["loss"], res["penalty"]]))
                res["n"] *= group.world
            row = dict(
                step=step,
                epoch=epoch,
                loss=res["loss"],
                grad_norm=res["grad_norm"],
                clipped=res["clipped"],
                clip_threshold=res["clip_threshold"],
                step_length=_step_length(cfg, lr, res, params, exact_formula),
                lr=lr,
            )
            row.update(task.step_extras(batch, res))
            acc["sum"] += res["loss"] * res["n"] if on_cuda else float(res["loss"]) * res["n"]
            acc["n"] += res["n"]
            buffer.add(row)
            if probing or step_probing:
                buffer.flush()
            if step_probing:
                srow = _step_probe_row(task, cfg, batch, res, step, epoch, buffer.last["grad_norm"])
                writer.log_table("probes", **srow)
            if probing:
                for prow in _probe_rows(
                    task, cfg, probe_data, res["before"], step, epoch, buffer.last["grad_norm"]
                ):
                    writer.log_table("probes", **prow)
            bar.update(1)
            if buffer.last is not None and step % 10 == 0:
                bar.set_postfix(loss=f"{buffer.last['loss']:.3f}", lr=f"{lr:.3g}", refresh=False)

            if cfg.max_steps is not None and step >= cfg.max_steps:
                end_epoch()  # the last, partial epoch gets its evaluation too
                break
            # At an epoch's last step the checkpoint waits for the epoch's eval rows (same step).
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not task.epoch_done():
                checkpoint()
            # Under torchrun rank 0's clock decides, every CUDA_FLUSH_EVERY steps (each decision
            # is a broadcast and a host sync).
            if time_limit is not None and (group is None or step % CUDA_FLUSH_EVERY == 0):
                stop = time.time() - t0 > time_limit and not task.epoch_done()
                if group is not None:
                    stop = distributed.broadcast_flag(stop, device)
                if stop:
                    checkpoint()  # the next call resumes here
                    return None

        buffer.flush()
        if task.final_split is not None:
            ev = task.evaluate(task.final_split, amp.autocast)
            writer.log_table("eval", step=step, epoch=epoch, split=task.final_split, lr=schedule.lr, **ev)
    writer.flush()
    if not main:
        return True  # rank 0 finishes the run; train() loads it for every rank
    writer.finish(wall_time=wall_before + time.time() - t0)
    run = store.load(cfg.experiment, identity)
    if run is None:  # pragma: no cover - a store that cannot read back what it wrote
        raise RuntimeError(f"the run store did not return the finished run {cfg.name!r}")
    return run


class _NoBar:
    """Stands in for tqdm when the progress bar is off (no tqdm import, no notebook warning)."""

    def update(self, n=1):
        pass

    def set_postfix(self, **kw):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress_bar(total: int, initial: int, desc: str, progress: bool):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    with warnings.catch_warnings():
        # tqdm.auto in a kernel without ipywidgets warns and falls back to the text bar.
        warnings.filterwarnings("ignore", message="IProgress not found")
        # disable=None: tqdm turns itself off when the output is not a terminal.
        return tqdm(total=total, initial=initial, desc=desc, disable=None, dynamic_ncols=True, leave=False)
