"""Running per-epoch metrics kept as device tensors (no GPU sync per step), summed across GPUs on demand."""

from __future__ import annotations

import torch
import torch.distributed as dist

from synthface.training.data import MISSING_CLASS
from synthface.training.recipe import TASKS

CLASS_TASKS = ("gender", "race", "mask")
# Slots of the running sums tensor.
_FIELDS = (
    "batches", "loss",
    *(f"loss_{t}" for t in TASKS),
    "age_abs_error", "age_count",
    *(f"{t}_correct" for t in CLASS_TASKS), *(f"{t}_count" for t in CLASS_TASKS),
)
_INDEX = {name: i for i, name in enumerate(_FIELDS)}


class MetricTracker:
    """Accumulates losses, age absolute error and accuracy counts for one pass over the data."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(len(_FIELDS), dtype=torch.float64, device=device)

    @torch.no_grad()
    def update(self, losses: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor],
               targets: dict[str, torch.Tensor]) -> None:
        values = [torch.ones((), device=self.sums.device), losses["total"].detach()]
        values += [losses[t].detach() for t in TASKS]
        valid_age = ~torch.isnan(targets["age"])
        error = (outputs["age"].float() - torch.nan_to_num(targets["age"])).abs() * valid_age
        values += [error.sum(), valid_age.sum()]
        counts = []
        for task in CLASS_TASKS:
            valid = targets[task] != MISSING_CLASS
            values.append(((outputs[task].argmax(1) == targets[task]) & valid).sum())
            counts.append(valid.sum())
        values += counts
        self.sums += torch.stack([v.to(torch.float64) for v in values])

    def compute(self, prefix: str, distributed: bool = False) -> dict[str, float]:
        """Means over the pass (one GPU sync); `distributed` sums every process's counts first."""
        sums = self.sums.clone()
        if distributed:
            dist.all_reduce(sums)
        s = dict(zip(_FIELDS, sums.tolist()))
        batches = max(s["batches"], 1.0)
        result = {f"{prefix}_loss": s["loss"] / batches}
        result.update({f"{prefix}_loss_{t}": s[f"loss_{t}"] / batches for t in TASKS})
        result[f"{prefix}_age_mae"] = s["age_abs_error"] / max(s["age_count"], 1.0)
        accuracies = []
        for task in CLASS_TASKS:
            accuracy = s[f"{task}_correct"] / max(s[f"{task}_count"], 1.0)
            result[f"{prefix}_{task}_acc"] = accuracy
            accuracies.append(accuracy)
        result[f"{prefix}_mean_acc"] = sum(accuracies) / len(accuracies)
        return result
