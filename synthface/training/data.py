"""From a synthface dataset on disk to batches: labels as class indices, decoding in workers,
a resumable (and optionally balanced) sampler that shards across GPUs.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from synthface.dataset import DatasetError, metadata_file, read_split
from synthface.taxonomy import GENDERS, MASK_CLASSES, races
from synthface.training import transforms as T
from synthface.training.recipe import Recipe

MISSING_CLASS = -1  # target for an absent label; the loss ignores it (age uses NaN)


@dataclass(frozen=True)
class LabelMaps:
    """Class names per head, in the index order the model's logits use (taxonomy.py)."""

    race_taxonomy: str
    gender: tuple[str, ...] = GENDERS
    mask: tuple[str, ...] = MASK_CLASSES

    @property
    def race(self) -> tuple[str, ...]:
        return races(self.race_taxonomy)

    def as_dict(self) -> dict[str, list[str]]:
        return {"gender": list(self.gender), "race": list(self.race), "mask": list(self.mask)}


class Targets(NamedTuple):
    """Per-sample labels as arrays aligned with the metadata rows."""

    age: np.ndarray  # float32 years, NaN = missing
    gender: np.ndarray  # int64 class index, MISSING_CLASS = missing
    race: np.ndarray
    mask: np.ndarray


def encode_targets(table: pd.DataFrame, labels: LabelMaps) -> Targets:
    """Turn the string labels of a validated table into class indices (positions in the taxonomy)."""

    def indices(column: str, classes: tuple[str, ...]) -> np.ndarray:
        lookup = {name: i for i, name in enumerate(classes)}
        return np.array([lookup.get(v, MISSING_CLASS) if isinstance(v, str) else MISSING_CLASS
                         for v in table[column]], dtype=np.int64)

    mask = pd.to_numeric(table["mask"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return Targets(
        age=pd.to_numeric(table["age"], errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan),
        gender=indices("gender", labels.gender),
        race=indices("race", labels.race),
        mask=np.where(np.isnan(mask), MISSING_CLASS, np.nan_to_num(mask)).astype(np.int64),
    )


def dataset_fingerprint(root: Path | str) -> str:
    """A short hash of the metadata table: checkpoints remember which data they were trained on."""
    return hashlib.sha256(metadata_file(Path(root)).read_bytes()).hexdigest()[:16]


def load_split(root: Path | str, split: str) -> tuple[pd.DataFrame, LabelMaps]:
    """Read and validate one split; a DatasetError says what is missing or wrong."""
    part, taxonomy = read_split(Path(root), split)
    return part, LabelMaps(race_taxonomy=taxonomy)


class FaceDataset(Dataset):
    """Decodes one image and returns (image, age, gender, race, mask).

    Indexing with an int gives the un-augmented image through `transform`; indexing with a
    `SampleKey` (what `ResumableSampler` yields) reseeds the augmentation for that sample
    first, so results do not depend on which worker drew it.
    """

    def __init__(self, root: Path | str, table: pd.DataFrame, labels: LabelMaps, transform) -> None:
        self.root = Path(root)
        self.files = [str(self.root / f) for f in table["file_name"]]
        self.targets = encode_targets(table, labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: int | SampleKey):
        if isinstance(key, SampleKey):
            T.reseed(self.transform, key.seed)
            index = key.index
        else:
            index = int(key)
        bgr = cv2.imread(self.files[index], cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f"could not decode image {self.files[index]}")
        image = self.transform(image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))["image"]
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(np.ascontiguousarray(image))
        t = self.targets
        return image, t.age[index], t.gender[index], t.race[index], t.mask[index]


class SampleKey(NamedTuple):
    index: int
    seed: int


class ResumableSampler(Sampler[SampleKey]):
    """Epoch-seeded order (shuffled, or balanced over metadata groups), sharded like DistributedSampler.

    The order of epoch e is a pure function of (seed, e). One iteration runs through every
    remaining epoch back to back (each trimmed to whole batches), so the loader's workers
    never drain and refill at an epoch boundary; `set_position(e, skip)` lets a resumed run
    start after the samples it already consumed and see exactly the rest.
    """

    def __init__(self, n_samples: int, seed: int, rank: int = 0, world_size: int = 1,
                 weights: np.ndarray | None = None, batch_size: int = 1) -> None:
        self.n_samples, self.seed, self.rank, self.world_size = n_samples, seed, rank, world_size
        self.weights = None if weights is None else torch.tensor(np.array(weights, dtype=np.float64))
        self.per_rank = math.ceil(n_samples / world_size)
        self.per_epoch = self.per_rank // batch_size * batch_size  # whole batches only (drop_last)
        self.epoch, self.skip, self.end_epoch = 0, 0, 1

    def set_position(self, epoch: int, skip: int = 0, end_epoch: int | None = None) -> None:
        """Start at epoch `epoch` after `skip` of this rank's samples; run up to `end_epoch` (exclusive)."""
        self.epoch, self.skip = epoch, skip
        self.end_epoch = epoch + 1 if end_epoch is None else end_epoch

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """This rank's sample indices for one epoch."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if self.weights is None:
            order = torch.randperm(self.n_samples, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.n_samples, replacement=True, generator=generator)
        padding = self.per_rank * self.world_size - self.n_samples
        if padding:
            order = torch.cat([order, order[:padding]])
        return order[self.rank::self.world_size][:self.per_epoch]

    def __iter__(self) -> Iterator[SampleKey]:
        for epoch in range(self.epoch, self.end_epoch):
            base = (self.seed * 1_000_003 + epoch) * 2_000_003
            skip = self.skip if epoch == self.epoch else 0
            for index in self.epoch_order(epoch)[skip:].tolist():
                yield SampleKey(index, (base + index) % (2**63))

    def __len__(self) -> int:
        return (self.end_epoch - self.epoch) * self.per_epoch - self.skip


def balance_weights(table: pd.DataFrame, columns: list[str]) -> np.ndarray | None:
    """Per-row sampling weights that make every joint group of `columns` equally likely."""
    if not columns:
        return None
    groups = table[columns].astype(str).agg("|".join, axis=1)
    counts = groups.map(groups.value_counts())
    return (1.0 / counts).to_numpy(dtype=np.float64)


def class_weights(targets: Targets, num_classes: dict[str, int]) -> dict[str, torch.Tensor]:
    """Inverse-frequency class weights per classification head (mean 1 over present classes)."""
    weights = {}
    for task, k in num_classes.items():
        labels = getattr(targets, task)
        counts = np.bincount(labels[labels >= 0], minlength=k).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
        weights[task] = torch.tensor(w, dtype=torch.float32)
    return weights


def _worker_init(_: int) -> None:
    # One thread per worker: the workers already use every core between them.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    # Lower priority than the training process, whose thread launches the GPU work: when
    # workers fill every core, the GPU must not wait for its own launcher.
    try:
        os.nice(5)
    except OSError:  # not permitted here; only scheduling order is lost
        pass


def make_loader(dataset: FaceDataset, batch_size: int, workers: int, prefetch_factor: int,
                sampler: Sampler, pin_memory: bool, drop_last: bool, seed: int) -> DataLoader:
    """A DataLoader with pinned memory and persistent workers; its own generator keeps the
    global RNG (dropout) untouched, which exact resume relies on."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=workers > 0,
        prefetch_factor=prefetch_factor if workers > 0 else None,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )


@dataclass
class TrainData:
    """Everything the loop needs from the dataset."""

    train_loader: DataLoader
    val_loader: DataLoader
    train_sampler: ResumableSampler
    labels: LabelMaps
    fingerprint: str
    train_table: pd.DataFrame
    train_targets: Targets


def build_data(recipe: Recipe, root: Path | str, rank: int = 0, world_size: int = 1,
               pin_memory: bool = False) -> TrainData:
    """Train and validation loaders for `root` under `recipe` (validation: eval_transform, no shuffling)."""
    from torch.utils.data.distributed import DistributedSampler

    data = recipe.data
    train_table, labels = load_split(root, data.train_split)
    val_table, _ = load_split(root, data.val_split)
    if len(train_table) < data.batch_size * world_size:
        raise DatasetError(
            f"{root}: the {data.train_split!r} split has {len(train_table)} rows, fewer than one batch "
            f"({data.batch_size} x {world_size} process(es)); lower data.batch_size"
        )
    train_set = FaceDataset(root, train_table, labels, T.train_transform(recipe.augment, data.image_size))
    val_set = FaceDataset(root, val_table, labels, T.eval_transform(data.image_size))
    sampler = ResumableSampler(len(train_set), recipe.seed, rank, world_size,
                               balance_weights(train_table, data.balance_by), batch_size=data.batch_size)
    val_sampler = DistributedSampler(val_set, num_replicas=world_size, rank=rank, shuffle=False)
    common = dict(workers=data.workers, prefetch_factor=data.prefetch_factor, pin_memory=pin_memory,
                  seed=recipe.seed)
    return TrainData(
        train_loader=make_loader(train_set, data.batch_size, sampler=sampler, drop_last=False, **common),
        val_loader=make_loader(val_set, data.batch_size, sampler=val_sampler, drop_last=False,
                               **{**common, "workers": min(data.workers, 4)}),
        train_sampler=sampler,
        labels=labels,
        fingerprint=dataset_fingerprint(root),
        train_table=train_table,
        train_targets=train_set.targets,
    )
