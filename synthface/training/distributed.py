"""One process or many: device choice and `torchrun` (DistributedDataParallel) set-up."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """Where this process runs and which share of the work it does."""

    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(preference: str) -> torch.device:
    """auto -> cuda when available, else cpu; an explicit 'cuda' without a GPU is an error."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("runtime.device is 'cuda' but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(preference)


def setup(preference: str) -> Context:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(preference)
    if world_size == 1:
        return Context(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Context(device=device, rank=rank, local_rank=local_rank, world_size=world_size)


def cleanup(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """This process's random state (Python, NumPy, torch CPU and CUDA) as checkpointable values."""
    _, keys, position, has_gauss, cached_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached_gauss)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(tuple(state["python"]))
    keys, position, has_gauss, cached_gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, cached_gauss))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def gather_rng_states(context: Context) -> list[dict[str, Any]]:
    """Every process's RNG state (rank order); all processes must call this together."""
    mine = rng_state()
    if not context.distributed:
        return [mine]
    states: list[Any] = [None] * context.world_size
    dist.all_gather_object(states, {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in mine.items()})
    return states
