"""The training loop: mixed precision, channels_last, optional torch.compile, DDP under torchrun,
warm-up + cosine/one-cycle schedule, early stopping, atomic best/last checkpoints, exact resume,
per-epoch metrics to CSV and TensorBoard, and a progress bar with images/s.

Use `train(recipe, data_root, out_dir)` from Python; `synthface train` is a thin wrapper.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from torch import nn

from synthface.dataset import atomic_write_bytes, face_ids
from synthface.progress import EtaColumn
from synthface.training import distributed as D
from synthface.training.checkpoint import CheckpointError, link_checkpoint, load_checkpoint, save_checkpoint
from synthface.training.data import build_data, class_weights
from synthface.training.losses import MultiTaskLoss
from synthface.training.metrics import MetricTracker
from synthface.training.model import OAMNet
from synthface.training.recipe import STOPPING_METRICS, TASKS, Recipe, RecipeError
from synthface.training.transforms import MEAN, STD, normalize_on_device

LAST, BEST, METRICS_CSV, RECIPE_YAML, TENSORBOARD_DIR = "last.pt", "best.pt", "metrics.csv", "recipe.yaml", "tb"


def describe_model(recipe: Recipe, labels) -> str:
    """One log line saying what was built: trunk, attention, age head injection, mask target."""
    model = recipe.model
    mask = "/".join(labels.mask)
    return (f"{model.backbone} trunk ({model.backbone_weights} weights), attention "
            f"{'on' if model.attention else 'off (ablation)'}, age head "
            f"{'gender-aware (gender probabilities injected)' if model.gender_aware_age else 'plain'}, "
            f"mask head target {labels.mask_target} ({mask})")


class TrainingModule(nn.Module):
    """Model and loss in one module, so DDP also keeps learned loss weights in sync across GPUs."""

    def __init__(self, model: OAMNet, criterion: MultiTaskLoss) -> None:
        super().__init__()
        self.model, self.criterion = model, criterion

    def forward(self, images: torch.Tensor, targets: dict[str, torch.Tensor],
                mixed: tuple[dict[str, torch.Tensor], float] | None = None):
        outputs = self.model(images)
        losses = self.criterion(outputs, targets)
        if mixed is not None:  # mixup/cutmix: the loss of each source image, weighted by its share
            other_targets, share = mixed
            other = self.criterion(outputs, other_targets)
            losses = {key: share * losses[key] + (1.0 - share) * other[key] for key in losses}
        return outputs, losses


@dataclass
class TrainResult:
    out_dir: Path
    history: list[dict[str, float]]
    step_losses: list[float] = field(default_factory=list)  # filled when keep_step_losses=True
    stopped_early: bool = False
    is_main: bool = True  # False on the other processes of a torchrun job


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None = full fp32). auto: bf16 on CUDA GPUs that support it, else fp32."""
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if precision == "fp16" and device.type != "cuda":
        raise RecipeError("runtime.precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[precision]


def _param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, norm layers and loss weights (1-D parameters)."""
    decay, no_decay = [], []
    for parameter in module.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim > 1 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _schedule(optimizer: torch.optim.Optimizer, recipe: Recipe, total_steps: int, steps_per_epoch: int):
    """Linear warm-up then cosine decay to zero, or PyTorch's one-cycle, stepped per optimizer step."""
    warmup = min(int(recipe.optim.warmup_epochs * steps_per_epoch), max(total_steps - 1, 0))
    if recipe.optim.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.optim.lr, total_steps=max(total_steps, 2),
            pct_start=max(warmup / max(total_steps, 1), 0.01), cycle_momentum=False,
        )

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Trainer:
    """One training run (one process of it under torchrun). See `train`."""

    def __init__(self, recipe: Recipe, data_root: Path | str | None, out_dir: Path | str, resume: bool = False,
                 console: Console | None = None, keep_step_losses: bool = False) -> None:
        self.recipe, self.out_dir = recipe, Path(out_dir)
        self.data_root = Path(data_root) if data_root is not None else None
        self.ctx = D.setup(recipe.runtime.device)
        self.console = console or Console()
        self.keep_step_losses = keep_step_losses
        self.device = self.ctx.device
        self.autocast_dtype = resolve_precision(recipe.runtime.precision, self.device)
        D.seed_everything(recipe.seed + self.ctx.rank)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        last = self.out_dir / LAST
        if resume and not last.is_file():
            raise CheckpointError(f"--resume: no {LAST} in {self.out_dir} to continue from")
        if not resume and last.is_file():
            raise CheckpointError(
                f"{self.out_dir} already holds a run ({LAST}); pass --resume to continue it or choose another --out"
            )

        self.data = build_data(recipe, self.data_root, self.ctx.rank, self.ctx.world_size,
                               pin_memory=self.device.type == "cuda")
        if self.ctx.is_main:
            for note in self.data.notes:
                self.console.print(f"data: {note}", soft_wrap=True, highlight=False)
        self.module = self._build_module().to(self.device)
        if self.ctx.is_main:
            self.console.print(f"model: {describe_model(recipe, self.data.labels)}", soft_wrap=True, highlight=False)
        # channels_last feeds cuDNN's NHWC tensor-core kernels; PyTorch's CPU kernels are much slower with it.
        self.channels_last = recipe.runtime.channels_last and self.device.type == "cuda"
        if self.channels_last:
            self.module.to(memory_format=torch.channels_last)

        # The schedule always spans all epochs (of every curriculum phase); max_steps only stops early,
        # so a run stopped by it continues with --resume exactly as if it had never stopped.
        schedule_steps = sum((phase.end_epoch - phase.start_epoch) * phase.steps_per_epoch for phase in self.data.phases)
        self.train_faces = sorted(set().union(*(face_ids(phase.table) for phase in self.data.phases)))
        self.total_steps = min(schedule_steps, recipe.optim.max_steps or schedule_steps)
        self.phase = self.data.phases[0]
        self.steps_per_epoch = self.phase.steps_per_epoch
        # One fused kernel per step on CUDA; multi-tensor (foreach) updates elsewhere, several times faster on CPU.
        on_cuda = self.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(_param_groups(self.module, recipe.optim.weight_decay), lr=recipe.optim.lr,
                                           fused=on_cuda, foreach=not on_cuda)
        self.scheduler = _schedule(self.optimizer, recipe, schedule_steps, self.data.phases[0].steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)

        # Position in training; restored by --resume.
        self.epoch, self.step, self.step_in_epoch = 0, 0, 0
        self.best_score: float | None = None
        self.bad_epochs = 0
        self.history: list[dict[str, float]] = []
        self.step_losses: list[torch.Tensor] = []
        if resume:
            self._restore(last)

        if recipe.runtime.compile:
            self.module.compile()
        self.runner: nn.Module = self.module
        if self.ctx.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.runner = nn.parallel.DistributedDataParallel(self.module, device_ids=device_ids)
        self.writer = None
        if self.ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.out_dir / RECIPE_YAML,
                               yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False).encode())
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / TENSORBOARD_DIR), purge_step=self.step or None)

    def _build_module(self) -> TrainingModule:
        """OAMNet for the dataset's taxonomy plus its loss (class weights from the training split)."""
        recipe, labels = self.recipe, self.data.labels
        # Under torchrun, rank 0 fetches pretrained weights into the cache before the others read it.
        if self.ctx.distributed and not self.ctx.is_main:
            dist.barrier()
        model = OAMNet(
            num_races=len(labels.race),
            attention=recipe.model.attention,
            backbone_weights=recipe.model.backbone_weights,
            head_dropout=recipe.model.head_dropout,
            age_max=recipe.model.age_max,
            backbone=recipe.model.backbone,
            gender_aware_age=recipe.model.gender_aware_age,
            mask_classes=len(labels.mask),
        )
        if self.ctx.distributed and self.ctx.is_main:
            dist.barrier()
        ages = self.data.train_targets.age
        if np.isfinite(ages).any():
            model.init_age_bias(float(np.nanmean(ages)))
        weights = None
        if recipe.loss.class_weights:
            weights = class_weights(self.data.train_targets,
                                    {"gender": len(labels.gender), "race": len(labels.race), "mask": len(labels.mask)})
        return TrainingModule(model, MultiTaskLoss(recipe.loss, weights))

    # ----------------------------------------------------------------- checkpoints
    def _state(self, metrics: dict[str, float], rng_states: list[dict[str, Any]]) -> dict[str, Any]:
        labels = self.data.labels
        return {
            "model": self.module.model.state_dict(),
            "criterion": self.module.criterion.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "step_in_epoch": self.step_in_epoch,
            "best_score": self.best_score,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "metrics": metrics,
            "rng": rng_states,
            "recipe": self.recipe.model_dump(mode="json"),
            "race_taxonomy": labels.race_taxonomy,
            "classes": labels.as_dict(),
            "image_size": self.recipe.data.image_size,
            "mean": list(MEAN),
            "std": list(STD),
            "dataset_fingerprint": self.data.fingerprint,
            # The real faces trained on: evaluate/compare warn when they appear in an evaluated split.
            "train_faces": self.train_faces,
            "world_size": self.ctx.world_size,
            "architecture": {"backbone": self.recipe.model.backbone, "attention": self.recipe.model.attention,
                             "gender_aware_age": self.recipe.model.gender_aware_age,
                             "mask_target": labels.mask_target},
            "validation": self.data.validation,
            "train_data": [str(phase.root.resolve()) for phase in self.data.phases],
            "phase": self.phase.index + 1,  # 1-based curriculum phase of the last step taken
        }

    def _save(self, names: tuple[str, ...], metrics: dict[str, float]) -> None:
        rng_states = D.gather_rng_states(self.ctx)  # every process takes part
        if not self.ctx.is_main:
            return
        first, *others = names
        save_checkpoint(self.out_dir / first, self._state(metrics, rng_states))
        for name in others:
            link_checkpoint(self.out_dir / first, self.out_dir / name)

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, device="cpu")
        saved = state["recipe"]
        current = self.recipe.model_dump(mode="json")
        if saved["model"] != current["model"] or saved["data"]["image_size"] != current["data"]["image_size"]:
            raise CheckpointError(
                f"{path}: the recipe's model section or image size differs from the checkpoint's "
                f"(checkpoint model={saved['model']}, image_size={saved['data']['image_size']}); "
                "resume with the same recipe"
            )
        if state["dataset_fingerprint"] != self.data.fingerprint:
            raise CheckpointError(
                f"{path}: trained on a different dataset (fingerprint {state['dataset_fingerprint']}, "
                f"{self.data_root or 'the curriculum'} has {self.data.fingerprint}); resume with the same --data"
            )
        self.module.model.load_state_dict(state["model"])
        self.module.criterion.load_state_dict(state["criterion"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.step_in_epoch = state["epoch"], state["step"], state["step_in_epoch"]
        self.phase = self.data.phase_of(self.epoch)
        self.best_score, self.bad_epochs, self.history = state["best_score"], state["bad_epochs"], state["history"]
        rng = state["rng"]
        if len(rng) == self.ctx.world_size:
            D.set_rng_state(rng[self.ctx.rank])
        elif self.ctx.is_main:
            self.console.print(f"[yellow]resuming on {self.ctx.world_size} process(es) after "
                               f"{len(rng)}: random streams restart, so steps will not match bit for bit")

    # ----------------------------------------------------------------- steps
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _batch(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, age, gender, race, mask = batch
        if images.dtype == torch.uint8:  # training pipeline: HWC uint8, normalised here
            x = normalize_on_device(images, self.device, self.channels_last)
        else:  # eval_transform output: normalised CHW float
            memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
            x = images.to(self.device, non_blocking=True).contiguous(memory_format=memory_format)
        targets = {name: t.to(self.device, non_blocking=True)
                   for name, t in (("age", age), ("gender", gender), ("race", race), ("mask", mask))}
        return x, targets

    def _mix(self, x: torch.Tensor, targets: dict[str, torch.Tensor]):
        """Mixup or cutmix of this step's batch, or None; draws depend on (seed, rank, step) only,
        so a resumed run mixes exactly as an uninterrupted one."""
        mix = self.recipe.augment.mix
        if mix.kind == "none" or x.shape[0] < 2:
            return x, targets, None
        rng = np.random.default_rng([self.recipe.seed, self.ctx.rank, self.step, 7])
        if rng.random() >= mix.p:
            return x, targets, None
        kind = mix.kind if mix.kind != "both" else ("mixup" if rng.random() < 0.5 else "cutmix")
        share = float(rng.beta(mix.alpha, mix.alpha))
        order = torch.from_numpy(rng.permutation(x.shape[0])).to(x.device)
        if kind == "mixup":
            mixed = share * x + (1.0 - share) * x[order]
        else:  # cutmix: a box of area (1 - share) from the partner image; share is recomputed from the box
            height, width = x.shape[-2:]
            cut_h, cut_w = int(height * np.sqrt(1.0 - share)), int(width * np.sqrt(1.0 - share))
            cy, cx = int(rng.integers(height)), int(rng.integers(width))
            y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
            x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
            mixed = x.clone()
            mixed[..., y0:y1, x0:x1] = x[order][..., y0:y1, x0:x1]
            share = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
        other = {name: target[order] for name, target in targets.items()}
        return mixed, targets, (other, share)

    def train_step(self, batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One optimizer step on one batch; returns (outputs, losses, targets), all still on the device.

        With mixup/cutmix the targets returned (for the running accuracies) are those of the
        image with the larger share of each mixed input."""
        x, targets = self._batch(batch)
        x, targets, mixed = self._mix(x, targets)
        with self._autocast():
            outputs, losses = self.runner(x, targets, mixed)
        if mixed is not None and mixed[1] < 0.5:
            targets = mixed[0]
        self.scaler.scale(losses["total"]).backward()
        if self.recipe.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.module.parameters(), self.recipe.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return outputs, losses, targets

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.module.eval()
        tracker = MetricTracker(self.device)
        for batch in self.data.val_loader:
            x, targets = self._batch(batch)
            with self._autocast():
                outputs, losses = self.module(x, targets)
            tracker.update(losses, outputs, targets)
        self.module.train()
        return tracker.compute("val", self.ctx.distributed)

    # ----------------------------------------------------------------- loop
    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[speed]} img/s  loss {task.fields[loss]}"), EtaColumn(),
            console=self.console, disable=not self.ctx.is_main, transient=False,
        )

    def fit(self) -> TrainResult:
        recipe = self.recipe
        epochs, batch = recipe.optim.epochs, recipe.data.batch_size
        stopped_early = False
        if self.step >= self.total_steps and self.ctx.is_main:
            self.console.print(f"nothing to do: step {self.step} already reaches the planned {self.total_steps}")
        self.module.train()
        phase, batches = None, None
        # One bar per pass, stopped (its last frame says the time taken, not an ETA) before the pass's
        # summary line: a single bar for the whole run was printed again, with stale estimates, when it stopped.
        while self.epoch < epochs and self.step < self.total_steps:
            if phase is None or self.epoch >= phase.end_epoch:
                batches = None  # stop the previous phase's workers first
                phase = self.data.phase_of(self.epoch)
                # One pass over the phase's remaining epochs: no refill at epoch boundaries.
                phase.sampler.set_position(self.epoch, skip=self.step_in_epoch * batch, end_epoch=phase.end_epoch)
                batches = iter(phase.loader)
                if len(self.data.phases) > 1 and self.ctx.is_main:
                    self.console.print(
                        f"phase {phase.index + 1}/{len(self.data.phases)} {phase.name!r}: {phase.root}, "
                        f"epochs {phase.start_epoch + 1}-{phase.end_epoch}, {len(phase.table)} training images",
                        soft_wrap=True, highlight=False)
            self.phase, self.steps_per_epoch = phase, phase.steps_per_epoch
            with self._progress() as progress:
                task = progress.add_task(f"epoch {self.epoch + 1}/{epochs}", total=self.steps_per_epoch,
                                         completed=self.step_in_epoch, speed="-", loss="-")
                tracker = MetricTracker(self.device)
                started, images_seen = time.perf_counter(), 0
                window_start, window_images = started, 0
                while self.step_in_epoch < self.steps_per_epoch and self.step < self.total_steps:
                    outputs, losses, targets = self.train_step(next(batches))
                    tracker.update(losses, outputs, targets)
                    if self.keep_step_losses:
                        self.step_losses.append(losses["total"].detach())
                    self.step += 1
                    self.step_in_epoch += 1
                    images_seen += batch * self.ctx.world_size
                    window_images += batch * self.ctx.world_size
                    if self.step_in_epoch % recipe.runtime.log_every_steps == 0 or self.step >= self.total_steps:
                        loss_value = losses["total"].item()  # the one sync per window
                        now = time.perf_counter()
                        speed = window_images / max(now - window_start, 1e-9)
                        window_start, window_images = now, 0
                        progress.update(task, completed=self.step_in_epoch, speed=f"{speed:,.0f}",
                                        loss=f"{loss_value:.3f}")
                    every = recipe.runtime.checkpoint_every_steps
                    if every and self.step % every == 0 and self.step_in_epoch < self.steps_per_epoch:
                        self._save((LAST,), {})
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                elapsed = time.perf_counter() - started
                progress.update(task, completed=self.step_in_epoch)
                progress.stop_task(task)  # its last frame says the time taken, even for a pass cut short by max_steps
            epoch_complete = self.step_in_epoch >= self.steps_per_epoch
            fraction = self.epoch + self.step_in_epoch / self.steps_per_epoch
            if epoch_complete:
                self.epoch, self.step_in_epoch = self.epoch + 1, 0
            stopped_early = self._end_of_pass(tracker, fraction, elapsed, images_seen, epoch_complete)
            if stopped_early:
                break
        del batches
        if self.writer is not None:
            self.writer.close()
        D.cleanup(self.ctx)
        return TrainResult(self.out_dir, self.history, [float(v) for v in self.step_losses], stopped_early,
                           self.ctx.is_main)

    def _end_of_pass(self, tracker: MetricTracker, epoch: float, elapsed: float, images: int,
                     epoch_complete: bool) -> bool:
        """Validate, log, checkpoint; True when early stopping says to stop."""
        metrics = {"epoch": round(epoch, 4), "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                   "phase": self.phase.index + 1}
        metrics.update(tracker.compute("train", self.ctx.distributed))
        metrics.update(self.validate())
        log_vars = self.module.criterion.log_vars
        if log_vars is not None:  # learned task weights exp(-s), to watch uncertainty weighting
            metrics.update({f"weight_{task}": w for task, w in zip(TASKS, torch.exp(-log_vars.detach()).tolist())})
        metrics["images_per_s"] = images / max(elapsed, 1e-9)
        metrics["epoch_time_s"] = elapsed
        self.history.append(metrics)

        metric_name = self.recipe.early_stopping.metric
        sign = 1.0 if STOPPING_METRICS[metric_name] == "max" else -1.0
        score = sign * metrics[metric_name]
        improved = self.best_score is None or score > self.best_score
        if improved:
            self.best_score, self.bad_epochs = score, 0
        elif epoch_complete:
            self.bad_epochs += 1
        stop = self.bad_epochs >= self.recipe.early_stopping.patience
        self._save((LAST, BEST) if improved else (LAST,), metrics)

        if self.ctx.is_main:
            atomic_write_bytes(self.out_dir / METRICS_CSV, pd.DataFrame(self.history).to_csv(index=False).encode())
            for key, value in metrics.items():
                if key not in ("epoch", "step"):
                    group, _, name = key.partition("_")
                    tag = f"{group}/{name}" if group in ("train", "val") else f"run/{key}"
                    self.writer.add_scalar(tag, value, self.step)
            self.writer.flush()
            self.console.print(
                f"epoch {epoch:.2f}  step {self.step}  {metrics['images_per_s']:,.0f} img/s  "
                f"train loss {metrics['train_loss']:.3f}  val loss {metrics['val_loss']:.3f}  "
                f"age MAE {metrics['val_age_mae']:.2f}  gender {metrics['val_gender_acc']:.3f}  "
                f"race {metrics['val_race_acc']:.3f}  mask {metrics['val_mask_acc']:.3f}"
                + ("  [green]best" if improved else ""),
                soft_wrap=True,
            )
            if stop:
                self.console.print(f"early stopping: {metric_name} has not improved for {self.bad_epochs} epoch(s)",
                                   soft_wrap=True)
        return stop


def train(recipe: Recipe, data_root: Path | str, out_dir: Path | str, resume: bool = False,
          console: Console | None = None, keep_step_losses: bool = False) -> TrainResult:
    """Train (or with `resume`, continue) a model; writes last.pt, best.pt, metrics.csv, tb/ and recipe.yaml to out_dir."""
    return Trainer(recipe, data_root, out_dir, resume, console, keep_step_losses).fit()
