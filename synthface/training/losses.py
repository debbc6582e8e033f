"""The multi-task loss: age (L1 / smooth-L1 in units of `age_scale` years) plus cross-entropy
for gender, race and mask, combined with fixed lambdas or learned uncertainty weights.

A sample without a label for a task (age NaN, class -1) contributes nothing to that task;
a batch without any label for a task gives that task a loss of exactly 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synthface.training.data import MISSING_CLASS
from synthface.training.recipe import TASKS, LossSection

CLASS_TASKS = ("gender", "race", "mask")


class MultiTaskLoss(nn.Module):
    """Returns {"total": scalar, "age": ..., "gender": ..., "race": ..., "mask": ...} (unweighted task terms).

    Uncertainty weighting (Kendall et al., 2018) learns one log-variance s per task and
    uses exp(-s) * L + s; the lambdas still scale each task's term.
    """

    def __init__(self, config: LossSection, class_weights: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("lambdas", torch.tensor([config.lambdas[t] for t in TASKS]), persistent=False)
        for task in CLASS_TASKS:
            weight = None if class_weights is None else class_weights.get(task)
            self.register_buffer(f"weight_{task}", weight, persistent=False)
        self.log_vars = nn.Parameter(torch.zeros(len(TASKS))) if config.weighting == "uncertainty" else None

    def _age(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = ~torch.isnan(target)
        scale = self.config.age_scale
        diff_fn = F.l1_loss if self.config.age == "l1" else F.smooth_l1_loss
        per_sample = diff_fn(predicted.float() / scale, torch.nan_to_num(target) / scale, reduction="none")
        return (per_sample * valid).sum() / valid.sum().clamp(min=1)

    def _classification(self, task: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != MISSING_CLASS
        safe_target = target.clamp(min=0)
        per_sample = F.cross_entropy(logits.float(), safe_target, reduction="none",
                                     label_smoothing=self.config.label_smoothing)
        weight = getattr(self, f"weight_{task}")
        sample_weight = valid.float() if weight is None else weight[safe_target] * valid
        return (per_sample * sample_weight).sum() / sample_weight.sum().clamp(min=1e-8)

    def forward(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms = {"age": self._age(outputs["age"], targets["age"])}
        for task in CLASS_TASKS:
            terms[task] = self._classification(task, outputs[task], targets[task])
        stacked = torch.stack([terms[t] for t in TASKS])
        if self.log_vars is not None:
            # A task without labels in this batch adds no regulariser either (else s would drift).
            present = torch.stack([
                (~torch.isnan(targets["age"])).any(),
                *[(targets[t] != MISSING_CLASS).any() for t in CLASS_TASKS],
            ]).float()
            stacked = torch.exp(-self.log_vars) * stacked + self.log_vars * present
        terms["total"] = (self.lambdas * stacked).sum()
        return terms
