"""Targets -> quotas -> a deterministic list of SampleSpec, made before any pixel is touched.

The plan decides, for every sample, which real face it uses, its split, its mask label and
type, and its seed. Rendering only executes it, so a run is reproducible (same scenario and
seed, same bytes), resumable, shardable, and `--dry-run` can report the balance up front.

Balancing in three steps:
1. Split assignment per source face (never per sample): a stable hash of the face's id and
   `splits.seed`, cut at the split shares, so one real face is in one split, and in the same
   split in every dataset built from the same pool (whatever the scenario's targets or seed).
2. Quotas: each split gets its share of the samples (largest remainders, exact within
   rounding whenever its faces can supply them); within a split the target of a stratum
   (age bin, gender, race) is the product of the marginal targets. Counts are allocated by
   water-filling under each cell's capacity
   (faces x max_reuse): a cell that cannot meet its target passes the rest on to the other
   cells in proportion to their targets, so the requested number of samples is still made
   and the shortfall is reported. Integer counts use largest remainders.
3. Within each split, the mask label, mask type, wear style and confuser are dealt as exact
   quotas (largest remainders), not independent coin flips, so small datasets hit targets.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from synthface.errors import UserError
from synthface.generation.sources.base import FaceRecord
from synthface.scenario import MAX_SAMPLES, Scenario, Weights, follows_pool
from synthface.taxonomy import GENDERS, RACE_TAXONOMIES

SPLITS = ("train", "val", "test")
ATTRIBUTES = ("age_bin", "gender", "race", "mask")
MAX_ALTERNATES = 6
# Memory a plan takes per sample, generously: ~400 B per SampleSpec (measured) plus the dealing
# lists, the report's tables and the metadata rows built from it.
PLAN_BYTES_PER_SAMPLE = 2048


class PlanError(UserError, ValueError):
    """The requested plan cannot be made (too many samples for the limits or this machine's memory)."""


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_plan_size(n_samples: int) -> None:
    """Refuse a plan before allocating it when it exceeds MAX_SAMPLES or half the available memory."""
    if not 1 <= n_samples <= MAX_SAMPLES:
        raise PlanError(f"n_samples {n_samples}: expected 1 to {MAX_SAMPLES:,} samples")
    needed, available = n_samples * PLAN_BYTES_PER_SAMPLE, available_memory()
    if available is not None and needed > available // 2:
        raise PlanError(f"a plan of {n_samples:,} samples needs about {needed / 2**20:,.0f} MiB of memory and only "
                        f"{available / 2**20:,.0f} MiB is available; ask for fewer samples (n_samples / -n)")


@dataclass(frozen=True)
class PoolFace:
    """A usable face: its record plus the labels in the scenario's terms."""

    record: FaceRecord
    age_bin: str
    gender: str
    race: str
    reuse_unlimited: bool = False

    @property
    def cell(self) -> tuple[str, str, str]:
        return (self.age_bin, self.gender, self.race)


@dataclass(frozen=True)
class SampleSpec:
    """Everything needed to render one sample; `seed` drives every random draw of its render."""

    index: int
    sample_id: str
    split: str
    face: int  # index into Plan.faces
    alternates: tuple[int, ...]  # faces of the same split and stratum, tried in order if the fit fails
    age_bin: str
    gender: str
    race: str
    mask: int
    mask_type: str  # "none" when unmasked
    wear_style: str  # "none" when unmasked
    confuser: str  # non-mask occluder on an unmasked sample, or "none"
    seed: int


@dataclass
class Plan:
    scenario_name: str
    seed: int
    faces: list[PoolFace]
    samples: list[SampleSpec]
    targets: dict[str, dict[str, float]]  # attribute -> label -> target share
    split_of_face: dict[str, str]  # source_id -> split
    requested: int
    notes: list[str] = field(default_factory=list)  # plain-language warnings for the report
    # (age bin, gender, race) -> target share of the joint stratum: the product of the marginals, or the
    # pool's own joint mix when every demographic follows the pool. Empty: the product (older plans).
    cell_targets: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A hash of the plan's decisions; resume and merge refuse to mix different plans."""
        digest = hashlib.sha256()
        for spec in self.samples:
            face = self.faces[spec.face].record.source_id
            digest.update(f"{spec.sample_id}|{face}|{spec.split}|{spec.mask}|{spec.mask_type}|{spec.wear_style}|{spec.confuser}|{spec.seed}\n".encode())
        return digest.hexdigest()[:16]


def stable_hash(*parts: object) -> int:
    """A hash that does not change between Python processes (unlike hash())."""
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def sample_seed(scenario_seed: int, index: int) -> int:
    return stable_hash("sample", scenario_seed, index) % (2**31 - 1)


def largest_remainder(total: int, shares: dict, capacity: dict | None = None) -> dict:
    """Integer counts summing to `total` (or to the total capacity if smaller), as close to
    total * share as possible, never above a key's capacity. Ties break by key order."""
    keys = list(shares)
    weight_sum = sum(shares.values())
    if total <= 0 or not keys or weight_sum <= 0:
        return {key: 0 for key in keys}
    exact = {key: total * shares[key] / weight_sum for key in keys}
    counts = {key: int(np.floor(exact[key] + 1e-9)) for key in keys}
    if capacity is not None:
        counts = {key: min(counts[key], int(capacity[key])) for key in keys}
    remaining = total - sum(counts.values())
    order = sorted(keys, key=lambda key: (-(exact[key] - np.floor(exact[key] + 1e-9)), keys.index(key)))
    while remaining > 0:
        progressed = False
        for key in order:
            if remaining == 0:
                break
            if capacity is None or counts[key] < capacity[key]:
                counts[key] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    return counts


def water_fill(total: int, weights: dict, capacity: dict) -> dict:
    """Allocate `total` integer units to keys in proportion to `weights`, capped by `capacity`.

    Units a full key cannot take go to the other keys in proportion to their weights; if
    every positive-weight key is full, keys of zero weight with room take the rest (in
    proportion to their room), so the total is met whenever the pool can hold it.
    """
    allocation = water_fill_exact(total, weights, capacity)
    target = min(total, int(round(sum(allocation.values()))))
    return largest_remainder(target, allocation, capacity)


def water_fill_exact(total: int, weights: dict, capacity: dict) -> dict:
    """water_fill before rounding: the real-valued allocation."""
    allocation = {key: 0.0 for key in weights}
    for tier in (lambda k: weights[k] > 0, lambda k: weights[k] <= 0):
        open_keys = [k for k in weights if tier(k) and capacity[k] > 0]
        left = total - sum(allocation.values())
        while left > 1e-9 and open_keys:
            tier_weights = {k: (weights[k] if weights[k] > 0 else min(capacity[k], total)) for k in open_keys}
            weight_sum = sum(tier_weights.values())
            saturated = []
            for key in open_keys:
                room = capacity[key] - allocation[key]
                share = left * tier_weights[key] / weight_sum
                if share >= room:
                    allocation[key] = capacity[key]
                    saturated.append(key)
            if not saturated:
                for key in open_keys:
                    allocation[key] += left * tier_weights[key] / weight_sum
                break
            open_keys = [k for k in open_keys if k not in saturated]
            left = total - sum(allocation.values())
    return allocation


def round_by_split(exact: dict[tuple, float], totals: dict[str, int], capacity: dict[tuple, int]) -> dict[tuple, int]:
    """Integer counts of (split, *stratum) keys: each split sums to its total, and each stratum's
    sum over the splits stays within rounding of its exact sum (the rounding carried from one
    split to the next), so neither the split shares nor the stratum targets drift."""
    counts: dict[tuple, int] = {}
    carried: dict[tuple, float] = defaultdict(float)  # stratum -> exact minus counted so far
    for split in SPLITS:
        keys = [key for key in exact if key[0] == split]
        for key in keys:
            carried[key[1:]] += exact[key]
        part = {key: min(int(np.floor(exact[key] + 1e-9)), int(capacity[key])) for key in keys}
        remaining = totals[split] - sum(part.values())
        order = sorted(keys, key=lambda key: (-(carried[key[1:]] - part[key]), keys.index(key)))
        while remaining > 0:
            progressed = False
            for key in order:
                if remaining and part[key] < capacity[key]:
                    part[key] += 1
                    remaining -= 1
                    progressed = True
            if not progressed:
                break
        for key in keys:
            carried[key[1:]] -= part[key]
        counts.update(part)
    return counts


def resolve_targets(scenario: Scenario, faces: list[PoolFace]) -> dict[str, dict[str, float]]:
    """Each attribute's target shares: explicit, 'uniform' over its labels, or 'pool' (the pool's mix)."""

    def resolve(weights: Weights, labels: list[str], attribute: str) -> dict[str, float]:
        if weights == "uniform":
            return {label: 1 / len(labels) for label in labels}
        if follows_pool(weights):
            counts = Counter(getattr(face, attribute) for face in faces)
            total = sum(counts.values()) or 1
            return {label: counts.get(label, 0) / total for label in labels}
        return {label: float(weights.get(label, 0.0)) for label in labels}

    taxonomy = scenario.race.taxonomy
    return {
        "age_bin": resolve(scenario.age.target(), scenario.age.labels(), "age_bin"),
        "gender": resolve(scenario.gender.weights, list(GENDERS), "gender"),
        "race": resolve(scenario.race.weights, list(RACE_TAXONOMIES[taxonomy]), "race"),
        "mask": {"0": 1 - scenario.mask.probability, "1": scenario.mask.probability},
    }


def face_split(source_id: str, shares: dict[str, float], seed: int) -> str:
    """The split of one source face: a stable hash of the face's id and the split seed, cut at the
    cumulative shares. It depends on nothing else (not the scenario, its targets or the rest of the
    pool), so datasets built from one pool with the same `splits` keep every face in one split."""
    position = stable_hash("split", seed, source_id) / 2**64
    edge = 0.0
    for split in SPLITS:
        edge += shares[split]
        if shares[split] > 0 and position < edge:
            return split
    return max((s for s in SPLITS if shares[s] > 0), key=SPLITS.index)  # rounding at the top end


def demographics_follow_pool(scenario: Scenario) -> bool:
    """True when age, gender and race all say 'pool': then the joint target is the pool's joint mix."""
    return all(follows_pool(w) for w in (scenario.age.target(), scenario.gender.weights, scenario.race.weights))


def assign_splits(faces: list[PoolFace], shares: dict[str, float], seed: int) -> dict[str, str]:
    """source_id -> split for every face (see face_split)."""
    return {face.record.source_id: face_split(face.record.source_id, shares, seed) for face in faces}


def deal(labels_counts: dict[str, int], rng: np.random.Generator) -> list[str]:
    """A shuffled list holding each label exactly its count times."""
    pool = [label for label, count in labels_counts.items() for _ in range(count)]
    rng.shuffle(pool)
    return pool


def pair_styles(types: list[str], styles: list[str], wear_styles_of: Mapping[str, Sequence[str]] | None) -> int:
    """Make each (type, wear style) pair supported by swapping styles between samples; a style no
    remaining sample can take becomes 'proper'. Returns how many styles had to become 'proper'."""
    if wear_styles_of is None:
        return 0
    ok = lambda i, style: style in wear_styles_of.get(types[i], (style,))
    replaced = 0
    hopeless: set[tuple[str, str]] = set()  # (type, style) pairs no swap could fix: skip the search next time
    for i in range(len(types)):
        if ok(i, styles[i]):
            continue
        partner = None
        if (types[i], styles[i]) not in hopeless:
            partner = next((j for j in range(len(types)) if j != i and ok(i, styles[j]) and ok(j, styles[i])), None)
        if partner is None:
            hopeless.add((types[i], styles[i]))
            styles[i] = "proper"
            replaced += 1
        else:
            styles[i], styles[partner] = styles[partner], styles[i]
    return replaced


def build_plan(scenario: Scenario, faces: list[PoolFace], n_samples: int | None = None, seed: int | None = None,
               wear_styles_of: Mapping[str, Sequence[str]] | None = None) -> Plan:
    """Turn a scenario and the usable faces of its pool into a Plan.

    `wear_styles_of` (mask type -> supported wear styles, from the mask library) keeps every
    planned pair renderable: e.g. only two-strap types can be worn with one strap loose.
    """
    n_total = scenario.n_samples if n_samples is None else n_samples
    check_plan_size(n_total)
    seed = scenario.seed if seed is None else seed
    rng = np.random.default_rng(stable_hash("plan", seed))
    targets = resolve_targets(scenario, faces)
    split_shares = scenario.splits.shares()
    split_of = assign_splits(faces, split_shares, scenario.splits.seed)

    # Faces per (split, cell), in a stable shuffled order so reuse is spread evenly.
    members: dict[tuple, list[int]] = defaultdict(list)
    for i in sorted(range(len(faces)), key=lambda i: stable_hash("order", seed, faces[i].record.source_id)):
        members[(split_of[faces[i].record.source_id],) + faces[i].cell].append(i)

    cells = list(itertools.product(targets["age_bin"], targets["gender"], targets["race"]))
    follow_pool = demographics_follow_pool(scenario)
    weights, capacity = {}, {}
    for split in SPLITS:
        for cell in cells:
            key = (split,) + cell
            group = members.get(key, [])
            if follow_pool:  # each (split, stratum) in proportion to its faces: n = pool size uses every face once
                weights[key] = len(group) / max(len(faces), 1)
            else:
                weights[key] = targets["age_bin"][cell[0]] * targets["gender"][cell[1]] * targets["race"][cell[2]]
            unlimited = any(faces[i].reuse_unlimited for i in group)
            capacity[key] = n_total if unlimited else len(group) * scenario.balance.max_reuse
    # Samples per split first (the requested shares, by largest remainders), then strata within each
    # split: allocating all (split, stratum) cells at once rounded small splits away (100/0/0 at n=100).
    split_capacity = {split: sum(capacity[key] for key in capacity if key[0] == split) for split in SPLITS}
    if follow_pool:  # the splits as the pool's faces fell into them, so every face can be used once
        split_shares = {split: sum(w for key, w in weights.items() if key[0] == split) for split in SPLITS}
    split_totals = largest_remainder(n_total, split_shares, split_capacity)
    exact = {}
    for split in SPLITS:
        keys = [key for key in weights if key[0] == split]
        exact.update(water_fill_exact(split_totals[split], {k: weights[k] for k in keys}, {k: capacity[k] for k in keys}))
    counts = round_by_split(exact, split_totals, capacity)

    notes = split_notes(split_totals, split_shares, split_capacity, n_total, len(faces), scenario.balance.max_reuse)
    made = sum(counts.values())
    if made < n_total:
        notes.append(f"the pool can supply only {made} of the {n_total} requested samples (max_reuse={scenario.balance.max_reuse})")

    # Deal mask labels, types, wear styles and confusers as exact quotas within each split.
    mask_cfg = scenario.mask
    per_split = {split: sum(n for key, n in counts.items() if key[0] == split) for split in SPLITS}
    masked_per_split = largest_remainder(int(np.floor(made * mask_cfg.probability + 0.5)), per_split, per_split)
    specs: list[dict] = []
    for split in SPLITS:
        keys = [key for key in counts if key[0] == split and counts[key] > 0]
        n_split = per_split[split]
        if n_split == 0:
            continue
        masked_per_key = largest_remainder(masked_per_split[split], {key: counts[key] for key in keys}, {key: counts[key] for key in keys})
        n_masked = sum(masked_per_key.values())
        types = deal(largest_remainder(n_masked, mask_cfg.types), rng)
        styles = deal(largest_remainder(n_masked, mask_cfg.wear_styles), rng)
        if replaced := pair_styles(types, styles, wear_styles_of):
            notes.append(f"{split}: {replaced} wear styles had no mask type that supports them and became 'proper'")
        confuser_shares = {**mask_cfg.confusers, "none": max(0.0, 1 - sum(mask_cfg.confusers.values()))}
        confusers = deal(largest_remainder(n_split - n_masked, confuser_shares), rng)
        for key in keys:
            group = members[key]
            masks = [1] * masked_per_key[key] + [0] * (counts[key] - masked_per_key[key])
            for j, mask in enumerate(masks):
                face = group[j % len(group)]
                rotation = group[j % len(group) + 1 :] + group[: j % len(group)]
                specs.append(
                    dict(split=split, face=face, alternates=tuple(rotation[:MAX_ALTERNATES]), age_bin=key[1], gender=key[2],
                         race=key[3], mask=mask, mask_type=types.pop() if mask else "none",
                         wear_style=styles.pop() if mask else "none", confuser="none" if mask else confusers.pop())
                )
    # Shuffle so that shards, previews and partial runs each see a mix of everything.
    rng.shuffle(specs)
    width = max(6, len(str(len(specs))))
    samples = [
        SampleSpec(index=i, sample_id=f"{scenario.name}-{i:0{width}d}", seed=sample_seed(seed, i), **spec) for i, spec in enumerate(specs)
    ]
    # What the report measures strata against: the same joint target the counts were filled from.
    cell_targets = {cell: sum(weights[(split,) + cell] for split in SPLITS) if follow_pool
                    else targets["age_bin"][cell[0]] * targets["gender"][cell[1]] * targets["race"][cell[2]] for cell in cells}
    return Plan(scenario.name, seed, faces, samples, targets, split_of, n_total, notes, cell_targets)


def split_notes(totals: dict[str, int], shares: dict[str, float], capacity: dict[str, int], n_total: int, n_faces: int,
                max_reuse: int) -> list[str]:
    """Plain words for every split that holds fewer samples than its share asks for."""
    notes = []
    for split in SPLITS:
        wanted = n_total * shares[split]
        if shares[split] <= 0 or (totals[split] > 0 and totals[split] >= np.floor(wanted)):
            continue
        if capacity[split] == 0:
            why = (f"no source face of the pool ({n_faces} usable faces) fell into it; a larger pool "
                   "(or another splits.seed) is needed")
        elif totals[split] == 0:
            why = f"n_samples {n_total} is too small for a {shares[split]:.0%} share"
        else:
            why = f"its faces can supply only {capacity[split]} samples (max_reuse={max_reuse})"
        state = "is empty" if totals[split] == 0 else f"holds {totals[split]} samples instead of {wanted:.0f}"
        notes.append(f"the {split} split {state}: {why}")
    return notes


def shard(samples: list[SampleSpec], index: int, count: int) -> list[SampleSpec]:
    """The contiguous slice `index` (1-based) of `count` shards of the plan."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: expected 1 <= i <= n")
    start, stop = (index - 1) * len(samples) // count, index * len(samples) // count
    return samples[start:stop]


# --- the plan as an artifact (OUT/.synthface-run/plan.parquet) ---------------------------
PLAN_FILE = "plan.parquet"
FINGERPRINT_KEY = b"synthface.plan_fingerprint"  # parquet key-value metadata of plan.parquet


def plan_table(plan: Plan):
    """One row per sample of the plan, in plan order: what the render stage will make of it. Faces
    are named by their source_id and file (a face index means nothing outside this plan)."""
    import pandas as pd

    record = lambda index: plan.faces[index].record  # noqa: E731
    rows = {
        "index": [s.index for s in plan.samples],
        "sample_id": [s.sample_id for s in plan.samples],
        "split": [s.split for s in plan.samples],
        "source_id": [record(s.face).source_id for s in plan.samples],
        "source_file": [str(record(s.face).path) for s in plan.samples],
        "alternates": [[record(i).source_id for i in s.alternates] for s in plan.samples],
        "age_bin": [s.age_bin for s in plan.samples],
        "gender": [s.gender for s in plan.samples],
        "race": [s.race for s in plan.samples],
        "mask": [s.mask for s in plan.samples],
        "mask_type": [s.mask_type for s in plan.samples],
        "wear_style": [s.wear_style for s in plan.samples],
        "confuser": [s.confuser for s in plan.samples],
        "seed": [s.seed for s in plan.samples],
    }
    return pd.DataFrame(rows).astype({"index": "int64", "mask": "int64", "seed": "int64"})


def plan_bytes(plan: Plan) -> bytes:
    """plan.parquet's bytes: the plan table with the scenario, seed and plan fingerprint in its metadata
    (the same inputs give the same bytes)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(plan_table(plan), preserve_index=False)
    extra = {FINGERPRINT_KEY: plan.fingerprint().encode(), b"synthface.scenario": plan.scenario_name.encode(),
             b"synthface.seed": str(plan.seed).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    data = io.BytesIO()
    pq.write_table(table, data)
    return data.getvalue()


def read_plan_fingerprint(path) -> str:
    """The plan fingerprint stored in a plan.parquet."""
    import pyarrow.parquet as pq

    return pq.read_schema(path).metadata[FINGERPRINT_KEY].decode()
