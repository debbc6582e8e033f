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

from synthface.dataset import DatasetError, metadata_file, read_metadata, read_split
from synthface.formats import open_dataset, read_listed_image
from synthface.taxonomy import GENDERS, MASK_CLASSES, MASK_STATES, races
from synthface.training import transforms as T
from synthface.training.recipe import Recipe

MISSING_CLASS = -1  # target for an absent label; the loss ignores it (age uses NaN)


MASK_STATE_COLUMN = "mask_state"


@dataclass(frozen=True)
class LabelMaps:
    """Class names per head, in the index order the model's logits use (taxonomy.py).

    `mask_target` "binary" trains the mask head on the 0/1 `mask` column (unmasked/masked);
    "state" on the three-class `mask_state` column (none/correct/incorrect).
    """

    race_taxonomy: str
    gender: tuple[str, ...] = GENDERS
    mask_target: str = "binary"

    @property
    def race(self) -> tuple[str, ...]:
        return races(self.race_taxonomy)

    @property
    def mask(self) -> tuple[str, ...]:
        return MASK_STATES if self.mask_target == "state" else MASK_CLASSES

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

    if labels.mask_target == "state":
        mask_index = indices(MASK_STATE_COLUMN, labels.mask)
    else:
        mask = pd.to_numeric(table["mask"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        mask_index = np.where(np.isnan(mask), MISSING_CLASS, np.nan_to_num(mask)).astype(np.int64)
    return Targets(
        age=pd.to_numeric(table["age"], errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan),
        gender=indices("gender", labels.gender),
        race=indices("race", labels.race),
        mask=mask_index,
    )


def resolve_mask_target(setting: str, tables: dict[str, pd.DataFrame]) -> str:
    """"binary" or "state" for `model.mask_target` over the datasets `tables` (name -> rows).

    auto picks the three-class state when every dataset has a filled `mask_state` column.
    """
    def has_state(table: pd.DataFrame) -> bool:
        return MASK_STATE_COLUMN in table.columns and bool(table[MASK_STATE_COLUMN].notna().all())

    if setting == "binary":
        return "binary"
    if setting == "state":
        lacking = [name for name, table in tables.items() if not has_state(table)]
        if lacking:
            raise DatasetError(f"model.mask_target=state needs a filled '{MASK_STATE_COLUMN}' column, missing in "
                               f"{lacking}; regenerate with a current synthface, or use mask_target: binary")
        return "state"
    return "state" if all(has_state(table) for table in tables.values()) else "binary"


def dataset_fingerprint(root: Path | str) -> str:
    """A short hash of the metadata table: checkpoints remember which data they were trained on."""
    return hashlib.sha256(metadata_file(Path(root)).read_bytes()).hexdigest()[:16]


def load_split(root: Path | str, split: str) -> tuple[pd.DataFrame, LabelMaps]:
    """Read and validate one split; a DatasetError says what is missing or wrong."""
    part, taxonomy = read_split(Path(root), split)
    return part, LabelMaps(race_taxonomy=taxonomy)


def split_is_empty(root: Path | str, split: str) -> bool:
    """True when the dataset has no row in `split` (read_split would refuse it)."""
    table = read_metadata(Path(root))
    return not bool((table["split"] == split).any()) if "split" in table.columns else True


def hold_out_faces(table: pd.DataFrame, share: float, seed: int, where: str) -> list[str]:
    """Source faces (`source_id`) to hold out for validation: `share` of them, at least one,
    chosen by a hash of (seed, face) so the choice does not depend on row order."""
    if "source_id" not in table.columns or table["source_id"].isna().any():
        raise DatasetError(f"{where}: cannot hold out validation faces without a filled 'source_id' column; "
                           "add a val split to the dataset")
    faces = sorted(table["source_id"].astype(str).unique())
    if len(faces) < 2:
        raise DatasetError(f"{where}: only {len(faces)} source face(s); at least two are needed to hold one out "
                           "for validation (a face is never in both train and val)")
    count = min(max(1, round(share * len(faces))), len(faces) - 1)
    ranked = sorted(faces, key=lambda face: hashlib.sha256(f"{seed}:{face}".encode()).hexdigest())
    return sorted(ranked[:count])


class FaceDataset(Dataset):
    """Decodes one image and returns (image, age, gender, race, mask).

    Indexing with an int gives the un-augmented image through `transform`; indexing with a
    `SampleKey` (what `ResumableSampler` yields) reseeds the augmentation for that sample
    first, so results do not depend on which worker drew it.
    """

    def __init__(self, root: Path | str, table: pd.DataFrame, labels: LabelMaps, transform) -> None:
        self.root = Path(root)
        self.files = [str(f) for f in table["file_name"]]
        self.reader = open_dataset(self.root)  # image files, tar shards or parquet (synthface.formats)
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
        bgr = read_listed_image(self.root, self.files[index], cv2.IMREAD_COLOR, self.reader)
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
class Phase:
    """One stretch of training on one dataset (the whole run, without a curriculum)."""

    index: int  # 0-based
    name: str
    root: Path
    start_epoch: int
    end_epoch: int  # exclusive
    loader: DataLoader
    sampler: ResumableSampler
    table: pd.DataFrame

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.per_epoch // self.loader.batch_size


@dataclass
class TrainData:
    """Everything the loop needs from the dataset(s)."""

    phases: list[Phase]
    val_loader: DataLoader
    labels: LabelMaps
    fingerprint: str
    train_targets: Targets  # every phase's training rows, for class weights and the age prior
    validation: dict  # {"data", "split", "held_out", "faces"}: where validation comes from
    notes: list[str]  # what the log should say about the data (hold-out, balance, removed faces)

    def phase_of(self, epoch: int) -> Phase:
        for phase in self.phases:
            if epoch < phase.end_epoch:
                return phase
        return self.phases[-1]

    # The single-phase view (benchmarks, older callers).
    @property
    def train_loader(self) -> DataLoader:
        return self.phases[0].loader

    @property
    def train_sampler(self) -> ResumableSampler:
        return self.phases[0].sampler

    @property
    def train_table(self) -> pd.DataFrame:
        return self.phases[0].table


def build_data(recipe: Recipe, root: Path | str | None, rank: int = 0, world_size: int = 1,
               pin_memory: bool = False) -> TrainData:
    """Training loaders (one per curriculum phase), the validation loader, labels and notes.

    Validation comes from `data.val_data` (default: `root`, or the last phase's dataset) and its
    `val_split`; when that split is empty, `val_holdout` of its training faces are held out.
    Validation faces are removed from every phase's training rows, so no face is in both.
    """
    from torch.utils.data.distributed import DistributedSampler

    data = recipe.data
    if recipe.curriculum:
        plan = [(phase.label, Path(phase.data), phase.epochs) for phase in recipe.curriculum]
    else:
        if root is None:
            raise DatasetError("no dataset: pass --data DIR (or give the recipe a curriculum)")
        plan = [(Path(root).name, Path(root), recipe.optim.epochs)]
    val_root = Path(data.val_data) if data.val_data else (Path(root) if root is not None and not recipe.curriculum
                                                          else plan[-1][1])
    notes: list[str] = []

    train_tables, taxonomies = [], set()
    for _, phase_root, _ in plan:
        table, taxonomy = read_split(phase_root, data.train_split)
        train_tables.append(table)
        taxonomies.add(taxonomy)

    if split_is_empty(val_root, data.val_split):
        if data.val_holdout <= 0:
            raise DatasetError(f"{val_root}: split {data.val_split!r} has no rows and data.val_holdout is 0; "
                               "add a val split or set data.val_holdout (e.g. 0.1)")
        pool, taxonomy = read_split(val_root, data.train_split)
        faces = hold_out_faces(pool, data.val_holdout, recipe.seed, str(val_root))
        val_table = pool[pool["source_id"].astype(str).isin(faces)].reset_index(drop=True)
        held_out = True
        notes.append(
            f"{val_root} has no {data.val_split!r} split: holding out {len(faces)} of "
            f"{pool['source_id'].nunique()} source faces ({len(val_table)} of {len(pool)} images) of its "
            f"{data.train_split!r} split for validation (data.val_holdout={data.val_holdout}; by source_id, "
            "so a face is never in both)"
        )
    else:
        val_table, taxonomy = read_split(val_root, data.val_split)
        held_out = False
    taxonomies.add(taxonomy)
    if len(taxonomies) != 1:
        raise DatasetError(f"the datasets use different race taxonomies {sorted(taxonomies)}; train on one")
    val_faces = sorted(val_table["source_id"].astype(str).unique()) if "source_id" in val_table.columns else []

    if val_faces:  # no face both trained on and validated on, whatever the datasets' own splits say
        for index, table in enumerate(train_tables):
            clash = table["source_id"].astype(str).isin(set(val_faces))
            if clash.any():
                if not (held_out and plan[index][1] == val_root):
                    notes.append(f"{plan[index][1]}: left out {int(clash.sum())} training image(s) of "
                                 f"{table.loc[clash, 'source_id'].nunique()} face(s) that are in the validation set")
                train_tables[index] = table[~clash].reset_index(drop=True)

    labels = LabelMaps(race_taxonomy=taxonomies.pop(), mask_target=resolve_mask_target(
        recipe.model.mask_target, {str(r): t for (_, r, _), t in zip(plan, train_tables)} | {str(val_root): val_table}))

    phases, start = [], 0
    for index, ((name, phase_root, epochs), table) in enumerate(zip(plan, train_tables)):
        if len(table) < data.batch_size * world_size:
            raise DatasetError(
                f"{phase_root}: the {data.train_split!r} split has {len(table)} rows to train on, fewer than one "
                f"batch ({data.batch_size} x {world_size} process(es)); lower data.batch_size"
            )
        missing = [c for c in data.balance_by if c not in table.columns]
        if missing:
            raise DatasetError(f"{phase_root}: data.balance_by names column(s) {missing} that the metadata lacks")
        weights = balance_weights(table, data.balance_by)
        if weights is not None:
            groups = table[data.balance_by].astype(str).agg("|".join, axis=1).nunique()
            notes.append(f"{phase_root}: balanced sampling over {groups} groups of {data.balance_by}")
        dataset = FaceDataset(phase_root, table, labels, T.train_transform(recipe.augment, data.image_size))
        sampler = ResumableSampler(len(dataset), recipe.seed, rank, world_size, weights, batch_size=data.batch_size)
        loader = make_loader(dataset, data.batch_size, workers=data.workers, prefetch_factor=data.prefetch_factor,
                             sampler=sampler, pin_memory=pin_memory, drop_last=False, seed=recipe.seed)
        phases.append(Phase(index, name, phase_root, start, start + epochs, loader, sampler, table))
        start += epochs

    val_set = FaceDataset(val_root, val_table, labels, T.eval_transform(data.image_size))
    val_sampler = DistributedSampler(val_set, num_replicas=world_size, rank=rank, shuffle=False)
    val_loader = make_loader(val_set, data.batch_size, workers=min(data.workers, 4),
                             prefetch_factor=data.prefetch_factor, sampler=val_sampler, pin_memory=pin_memory,
                             drop_last=False, seed=recipe.seed)
    roots = [phase_root for _, phase_root, _ in plan]
    fingerprint = (dataset_fingerprint(roots[0]) if roots == [val_root] else hashlib.sha256(
        "|".join(dataset_fingerprint(r) for r in [*roots, val_root]).encode()).hexdigest()[:16])
    targets = [phase.loader.dataset.targets for phase in phases]
    return TrainData(
        phases=phases,
        val_loader=val_loader,
        labels=labels,
        fingerprint=fingerprint,
        train_targets=Targets(*(np.concatenate([getattr(t, f) for t in targets]) for f in Targets._fields)),
        validation={"data": str(val_root.resolve()), "split": None if held_out else data.val_split,
                    "held_out": held_out, "faces": val_faces},
        notes=notes,
    )
