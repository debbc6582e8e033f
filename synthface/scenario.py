"""The scenario YAML: what dataset to build. Validated with pydantic; errors name the file and key.

Every key is documented in docs/scenarios.md. Unknown keys are rejected, weights must form a
distribution, age bins must not overlap, mask types must exist in the mask library and
source paths must exist.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, ValidationInfo, field_validator, model_validator

from synthface.errors import UserError, describe_problems, validation_problems
from synthface.lighting import LightingConfig
from synthface.maskfit import WEAR_STYLES, MaskAppearance
from synthface.paths import bundled_dir, is_url
from synthface.sources.base import SourceSpec
from synthface.taxonomy import GENDERS, RACE_TAXONOMIES, age_bin_label
from synthface.yamlio import YamlError, load_yaml_file

WEIGHT_TOLERANCE = 1e-3
# A scenario name becomes a folder and every file name of its dataset: no '/', no '..', no spaces.
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# Bounds of every count. A plan holds ~1-2 KB per sample in memory (1M samples: ~25 s and ~2 GB to
# plan), far beyond any real pool: UTKFace x max_reuse 5 is 115k samples, FairFace's 97k faces 485k.
MAX_SAMPLES = 1_000_000
MAX_REUSE = 1_000
MAX_SEED = 2**63 - 1
# Least face share a rendered mask must cover, per wear style. On 400 UTKFace faces the 5th
# percentiles of the covered share were: proper 0.42-0.50 (by type), strap_loose 0.40,
# nose_exposed 0.19-0.26, chin 0.05-0.08; the minimums sit below those, to catch broken fits only.
MIN_OCCLUDED_FRACTION = {"proper": 0.30, "strap_loose": 0.25, "nose_exposed": 0.12, "chin": 0.03}

# A demographic target: explicit probabilities, "uniform", or "pool" (follow the usable pool's own mix;
# "source" is its older spelling). When age, gender and race all follow the pool, the joint target is the
# pool's own joint distribution, so n_samples = the pool's size uses every face once with its own labels.
POOL_WEIGHTS = ("pool", "source")
Weights = Union[Literal["uniform", "pool", "source"], dict[str, float]]
# A distribution over names (mask types, wear styles): explicit probabilities, "uniform" (every name
# the library or schema knows, equally), or a list of names (equal shares among them).
NameWeights = Union[Literal["uniform"], list[str], dict[str, float]]


def follows_pool(weights: object) -> bool:
    """True for the weights that mean "as the pool has it"."""
    return isinstance(weights, str) and weights in POOL_WEIGHTS


def equal_shares(spec: object, every: list[str] | None, what: str) -> dict[str, float] | object:
    """'uniform' -> equal over `every`; a list of names -> equal over them; a mapping unchanged."""
    if spec == "uniform":
        if not every:
            raise ValueError(f"{what}: 'uniform' needs at least one known name")
        names = list(every)
    elif isinstance(spec, list):
        if not spec:
            raise ValueError(f"{what}: the list of names is empty")
        if len(set(spec)) != len(spec):
            raise ValueError(f"{what}: names repeat in {spec}")
        names = list(spec)
    else:
        return spec
    return {name: 1 / len(names) for name in names}


def library_names(info: ValidationInfo, key: str) -> list[str]:
    """Mask or confuser names for 'uniform': from the validation context (the run's mask library,
    --masks folders included), else from the bundled library."""
    context = info.context or {}
    if context.get(key) is None:
        from synthface.maskfit import MaskLibrary

        library = MaskLibrary.load()
        context = {"mask_names": {n for n in library.names() if library.get(n).is_mask},
                   "confuser_names": {n for n in library.names() if not library.get(n).is_mask}}
    return sorted(context[key])


class ScenarioError(UserError, ValueError):
    """A scenario file is invalid. `problems` lists (key path, message) pairs."""

    def __init__(self, file: str, problems: list[tuple[str, str]]):
        self.file = file
        self.problems = problems
        super().__init__(describe_problems(file, "scenario", problems))


def check_known(keys, known, what: str) -> None:
    """Every key must be one of `known`."""
    unknown = sorted(set(keys) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; expected {list(known)}")


def check_distribution(weights: dict[str, float], what: str) -> dict[str, float]:
    """Weights must be non-negative and sum to 1 (within WEIGHT_TOLERANCE)."""
    if not weights:
        raise ValueError(f"{what}: needs at least one entry")
    negative = {k: v for k, v in weights.items() if v < 0 or not math.isfinite(v)}
    if negative:
        raise ValueError(f"{what}: weights must be finite and >= 0, got {negative}")
    total = sum(weights.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"{what}: weights must sum to 1 to describe a distribution, they sum to {total:g}")
    return weights


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Splits(Strict):
    """Shares of samples per split. Splits are assigned per source face, never per sample, by a stable
    hash of the face's id and `seed`: the same face is in the same split in every scenario."""

    train: float = Field(0.8, ge=0, le=1, description="Share of the samples (and, by hash, of the source faces) in the training split.")
    val: float = Field(0.1, ge=0, le=1, description="Share of the samples (and, by hash, of the source faces) in the validation split.")
    test: float = Field(0.1, ge=0, le=1, description="Share of the samples (and, by hash, of the source faces) in the test split.")
    seed: int = Field(
        0, description="Seed of the face -> split assignment. A face's split depends only on the face and this seed "
        "(not on the scenario's `seed` or targets), so datasets built from one pool can be compared safely.",
    )

    @model_validator(mode="after")
    def _sums_to_one(self) -> "Splits":
        check_distribution(self.shares(), "splits")
        return self

    def shares(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}


class AgeTarget(Strict):
    """Age target: inclusive bins with weights, or one `range` (a single bin, weight 1)."""

    bins: list[tuple[StrictInt, StrictInt]] | None = Field(
        None, max_length=131, description="Inclusive [low, high] age bins in years, non-overlapping."
    )
    weights: Union[Literal["uniform", "pool", "source"], list[float]] = Field(
        "uniform", description="One weight per bin, 'uniform', or 'pool' (the usable pool's own mix; 'source' is an alias)."
    )
    range: tuple[StrictInt, StrictInt] | None = Field(None, description="Shorthand for a single bin [low, high].")

    @field_validator("bins", mode="before")
    @classmethod
    def _bins_are_a_list(cls, bins: object) -> object:
        if isinstance(bins, dict):  # a natural guess ({18-29: 0.5, ...}) that pydantic would only call "not a list"
            raise ValueError("expected a list of [low, high] pairs with the weights apart, e.g. "
                             "bins: [[0, 17], [18, 29]] and weights: [0.5, 0.5]; got a mapping")
        return bins

    @model_validator(mode="after")
    def _check(self) -> "AgeTarget":
        if self.range is not None:
            if self.bins is not None:
                raise ValueError("give either 'bins' or 'range', not both")
            if isinstance(self.weights, list):
                raise ValueError("'weights' must not be a list with 'range' (a range is one bin)")
            # Stored as the one bin it means, so the resolved scenario (scenario.yaml, the
            # render workers' copy) validates again instead of holding both keys.
            self.bins, self.range = [tuple(self.range)], None
        if self.bins is None:
            self.bins = [(0, 17), (18, 29), (30, 44), (45, 59), (60, 120)]
        for low, high in self.bins:
            if not 0 <= low <= high <= 130:
                raise ValueError(f"bin [{low}, {high}] must satisfy 0 <= low <= high <= 130")
        ordered = sorted(self.bins)
        for (l1, h1), (l2, h2) in zip(ordered, ordered[1:]):
            if l2 <= h1:
                raise ValueError(f"age bins [{l1}, {h1}] and [{l2}, {h2}] overlap")
        if isinstance(self.weights, list):
            if len(self.weights) != len(self.bins):
                raise ValueError(f"{len(self.weights)} weights for {len(self.bins)} bins")
            check_distribution(dict(zip(self.labels(), self.weights)), "weights")
        return self

    def labels(self) -> list[str]:
        return [age_bin_label(low, high) for low, high in self.bins]

    def bin_of(self, age: float) -> str | None:
        """The label of the bin holding `age` (rounded down to whole years), or None."""
        years = int(math.floor(age))
        for low, high in self.bins:
            if low <= years <= high:
                return age_bin_label(low, high)
        return None

    def target(self) -> Weights:
        if isinstance(self.weights, list):
            return dict(zip(self.labels(), self.weights))
        return self.weights


class GenderTarget(Strict):
    """Gender target over male/female."""

    weights: Weights = Field("uniform", description="male/female probabilities, 'uniform', or 'pool' (the pool's own mix; 'source' is an alias).")

    @field_validator("weights")
    @classmethod
    def _check(cls, weights: Weights) -> Weights:
        if isinstance(weights, dict):
            check_known(weights, GENDERS, "gender label(s)")
            check_distribution(weights, "weights")
        return weights


class RaceTarget(Strict):
    """Race target, in the labels of one taxonomy."""

    taxonomy: Literal["utkface5", "fairface7"] = Field("utkface5", description="Race label set; fairface7 pools map into utkface5.")
    weights: Weights = Field("source", description="Probabilities per race label, 'uniform', or 'pool' (the pool's own mix; 'source' is an alias).")

    @model_validator(mode="after")
    def _check(self) -> "RaceTarget":
        if isinstance(self.weights, dict):
            check_known(self.weights, RACE_TAXONOMIES[self.taxonomy], f"race label(s) for taxonomy {self.taxonomy}:")
            check_distribution(self.weights, "weights")
        return self


class MaskConfig(Strict):
    """Who wears what. `probability` is the share of samples with a real mask (mask=1)."""

    probability: float = Field(1.0, ge=0, le=1, description="Share of samples wearing a real mask (labelled mask=1).")
    types: NameWeights = Field(
        default_factory=lambda: {"surgical": 0.4, "n95": 0.3, "cloth": 0.3},
        description="Mask type -> probability among masked samples (names from the mask library); 'uniform' (every mask "
        "type of the library, --masks folders included, equally) or a list of names (equal shares among them).",
    )
    wear_styles: NameWeights = Field(
        default_factory=lambda: {"proper": 1.0},
        description="Wear style -> probability; 'uniform' (every wear style equally; a style a type cannot take becomes "
        "'proper' for it, as the report notes) or a list of styles (equal shares among them).",
    )
    confusers: Union[Literal["uniform"], list[str], dict[str, float]] = Field(
        default_factory=dict,
        description="Non-mask occluder -> probability for an unmasked sample to carry it (labelled mask=0, occluder=<name>); "
        "'uniform' (every unmasked sample carries one, each confuser of the library equally often) or a list of names (the "
        "same among them). For a smaller total, give the probabilities.",
    )
    appearance: MaskAppearance = Field(default_factory=MaskAppearance, description="Colour, pattern and fit variation.")
    min_occluded_fraction: dict[str, float] = Field(
        default_factory=lambda: dict(MIN_OCCLUDED_FRACTION),
        description="Wear style -> least share of the face a mask must cover; a render below it is a failed fit, "
        "counted and replaced from the pool (a chin-worn mask covers far less than a proper one). Styles left out keep their default.",
    )
    write_occlusion: bool = Field(True, description="Write occlusion/<sample_id>.png maps of the covered pixels.")
    keep_foreground: bool = Field(
        True,
        description="Look for objects in front of the lower face in the source photo (a microphone, a cup, a toy, a "
        "coloured strand): a mask or confuser goes behind a small one (it stays on top); a face where they cover more "
        "than 30% of the lower face or half the lips is skipped as 'lower face occluded' (a fit failure, replaced from "
        "the pool). The share found is the `foreground_fraction` column. false: draw over whatever is there.",
    )
    binary_label: Literal["covers_mouth", "worn", "worn_correctly"] = Field(
        "covers_mouth",
        description="What the binary `mask` column says of a worn mask. 'covers_mouth' (default): 1 when the mask covers "
        "the mouth (proper, nose_exposed, strap_loose), 0 for a mask pulled down onto the chin, which leaves the face as "
        "visible as an unmasked one (labelling it 1 taught classifiers to call unmasked portraits masked). 'worn': 1 for "
        "any worn mask. 'worn_correctly': 1 only for proper wear. The three-way `mask_state` column (none / correct / "
        "incorrect) is written whatever this says; balance targets (`probability`) count worn masks.",
    )

    # 'uniform' and lists become explicit probabilities here, so the rest of synthface (the plan, the report,
    # the resolved scenario.yaml) only ever sees mappings.
    @field_validator("types")
    @classmethod
    def _types(cls, types: NameWeights, info: ValidationInfo) -> dict[str, float]:
        every = library_names(info, "mask_names") if types == "uniform" else None
        return check_distribution(equal_shares(types, every, "types"), "types")

    @field_validator("wear_styles")
    @classmethod
    def _wear(cls, styles: NameWeights) -> dict[str, float]:
        styles = equal_shares(styles, list(WEAR_STYLES), "wear_styles")
        check_known(styles, WEAR_STYLES, "wear style(s)")
        return check_distribution(styles, "wear_styles")

    @field_validator("min_occluded_fraction")
    @classmethod
    def _min_fraction(cls, minimum: dict[str, float]) -> dict[str, float]:
        check_known(minimum, WEAR_STYLES, "wear style(s)")
        bad = {k: v for k, v in minimum.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"fractions must be in [0, 1], got {bad}")
        return {**MIN_OCCLUDED_FRACTION, **minimum}

    @field_validator("confusers")
    @classmethod
    def _confusers(cls, confusers, info: ValidationInfo) -> dict[str, float]:
        every = library_names(info, "confuser_names") if confusers == "uniform" else None
        confusers = equal_shares(confusers, every, "confusers")
        bad = {k: v for k, v in confusers.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"confuser probabilities must be in [0, 1], got {bad}")
        if sum(confusers.values()) > 1 + WEIGHT_TOLERANCE:
            raise ValueError("confuser probabilities must sum to at most 1")
        return confusers


class FaceQuality(Strict):
    """Which detected faces are usable. Rejected inputs are counted and listed in the report."""

    min_face_px: int = Field(32, ge=1, le=100_000, strict=True, description="Smallest face (landmark box side, source pixels) to use.")
    max_abs_yaw: float = Field(60, gt=0, le=90, description="Largest |yaw| in degrees to use.")
    max_abs_pitch: float = Field(45, gt=0, le=90, description="Largest |pitch| in degrees to use.")
    crop_margin: float = Field(
        0.2, ge=0, le=1,
        description="Context around the face oval in the aligned crop, per side, as a share of the oval's size: the face "
        "fills 1 / (1 + 2 x crop_margin) of the image (0.2: 71%). Photos with less context around the face (tightly "
        "cropped pools such as UTKFace chips) are padded by up to `max_padding`, then zoomed in, down to `min_margin`.",
    )
    max_padding: float = Field(
        0.1, ge=0, le=1,
        description="Most context per side (share of the oval's size) that may be invented beyond the photo's edge, as a "
        "blurred extension of it, when the photo has less than `crop_margin`. 0 = zoom in instead (the face fills more of "
        "the image and a chin-worn mask can fall out of frame).",
    )
    min_margin: float = Field(
        0.05, ge=0, le=1,
        description="Least context per side whatever the photo: keeps the chin (and a mask worn on it) inside the frame.",
    )


class Balance(Strict):
    """How strata are filled from the pool."""

    max_reuse: int = Field(
        5, ge=1, le=MAX_REUSE, strict=True, description="Most samples made from one source face (the demo pool is exempt); 1 to 1000."
    )
    on_shortfall: Literal["warn", "error"] = Field(
        "warn", description="'warn': yield the samples anyway, as close to target as possible; 'error': stop before rendering."
    )


class Scenario(Strict):
    name: str = Field(
        ..., min_length=1, max_length=64, pattern=SAFE_NAME,
        description="Dataset name: letters, digits, '.', '_' and '-', starting with a letter or digit (at most 64). "
        "It names the default output folder (out/<name>) and every sample id, so it can hold no path.",
    )
    description: str = Field("", description="Free text for people.")
    seed: int = Field(
        0, ge=0, le=MAX_SEED, strict=True, description="Seed of every random draw: same scenario and seed give the same bytes."
    )
    n_samples: int = Field(
        200, ge=1, le=MAX_SAMPLES, strict=True, description="Number of samples (twins not counted); a whole number, 1 to 1,000,000."
    )
    image_size: int = Field(224, ge=32, le=1024, strict=True, description="Side of the square aligned crop, pixels.")
    sources: list[SourceSpec] = Field(default_factory=lambda: [SourceSpec(kind="demo")], description="Face pools.")
    splits: Splits = Field(default_factory=Splits)
    age: AgeTarget = Field(default_factory=AgeTarget)
    gender: GenderTarget = Field(default_factory=GenderTarget)
    race: RaceTarget = Field(default_factory=RaceTarget)
    mask: MaskConfig = Field(default_factory=MaskConfig)
    lighting: LightingConfig = Field(default_factory=LightingConfig)
    pair_unmasked: bool = Field(False, description="Also write each masked sample's unmasked twin (same face, crop, lighting).")
    balance: Balance = Field(default_factory=Balance)
    faces: FaceQuality = Field(default_factory=FaceQuality)
    preview_samples: int = Field(36, ge=0, le=400, strict=True, description="Samples shown in preview.jpg.")


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A path as given, or a bundled scenario by name (`all_masked` -> scenarios/all_masked.yaml)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path  # a folder or device is named as such when it is read, not reported as missing
    if path.suffix == "" and len(path.parts) == 1:
        bundled = bundled_dir("scenarios") / f"{path.name}.yaml"
        if bundled.is_file():
            return bundled
    known = ", ".join(sorted(p.stem for p in bundled_dir("scenarios").glob("*.yaml")))
    raise FileNotFoundError(f"scenario {name_or_path!r} not found (as a file, or by name among: {known})")


def parse_scenario(data: object, file: str = "<scenario>", check_paths: bool = True, mask_names: set[str] | None = None,
                   confuser_names: set[str] | None = None) -> Scenario:
    """Validate a loaded YAML document. Raises ScenarioError listing every problem with its key path."""
    if not isinstance(data, dict):
        raise ScenarioError(file, [("", f"expected a mapping of keys, got {type(data).__name__}")])
    try:
        scenario = Scenario.model_validate(data, context={"mask_names": mask_names, "confuser_names": confuser_names})
    except ValidationError as error:
        raise ScenarioError(file, validation_problems(error)) from None
    problems = []
    if mask_names is not None:
        for name in scenario.mask.types:
            if name not in mask_names:
                problems.append((f"mask.types.{name}", f"unknown mask type {name!r}; expected one of {sorted(mask_names)}"))
    if confuser_names is not None:
        for name in scenario.mask.confusers:
            if name not in confuser_names:
                problems.append((f"mask.confusers.{name}", f"unknown confuser {name!r}; expected one of {sorted(confuser_names)}"))
    if check_paths:
        for index, source in enumerate(scenario.sources):
            if source.kind != "demo" and not is_url(source.path) and (source.path is None or not Path(source.path).expanduser().exists()):
                problems.append((f"sources.{index}.path", f"{source.kind} source path {source.path} does not exist"))
    if problems:
        raise ScenarioError(file, problems)
    return scenario


# The generate options that override scenario keys: problems with their values are blamed on the option, not the file.
OVERRIDE_OPTIONS = {"n_samples": "-n/--n-samples", "seed": "--seed", "sources": "--source"}


def load_scenario(name_or_path: str | Path, overrides: dict | None = None, check_paths: bool = True,
                  mask_library=None) -> tuple[Scenario, Path]:
    """Read, override (CLI options win) and validate a scenario. Returns it and the file it came from."""
    path = resolve_scenario_path(name_or_path)
    try:
        data = load_yaml_file(path, "scenario YAML file")
    except YamlError as error:
        raise ScenarioError(str(path), [("", str(error).removeprefix(f"{path}: "))]) from None
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if isinstance(data, dict) and given:
        data = {**data, **given}
    mask_names = confuser_names = None
    if mask_library is not None:
        mask_names = {n for n in mask_library.names() if mask_library.get(n).is_mask}
        confuser_names = {n for n in mask_library.names() if not mask_library.get(n).is_mask}
    try:
        return parse_scenario(data, str(path), check_paths, mask_names, confuser_names), path
    except ScenarioError as error:
        if not given:
            raise
        problems = [(_blame_option(key, given), message) for key, message in error.problems]
        ours = all(key.startswith("option ") for key, _ in problems)
        raise ScenarioError("command line" if ours else f"{path} with command-line options", problems) from None


def _blame_option(key: str, given: dict) -> str:
    """'sources.0.path' -> 'option --source (1st): sources.0.path' when the value came from an option."""
    top, _, rest = key.partition(".")
    if top not in given:
        return key
    option = OVERRIDE_OPTIONS.get(top, top)
    index = rest.split(".")[0]
    which = f" #{int(index) + 1}" if top == "sources" and index.isdigit() else ""
    return f"option {option}{which}: {key}"


def scenario_to_yaml(scenario: Scenario) -> str:
    """The resolved scenario (defaults filled in) as YAML, written next to the dataset."""
    data = scenario.model_copy(update={"lighting": scenario.lighting.filled()}).model_dump(mode="json")
    # Lighting keys a preset sets are listed under lighting.presets; a null beside them would read as "unknown".
    data["lighting"] = {key: value for key, value in data["lighting"].items() if value is not None}
    data["lighting"]["presets"] = {name: {k: v for k, v in keys.items() if v is not None}
                                   for name, keys in data["lighting"].get("presets", {}).items()}
    return yaml.dump(data, Dumper=_ScenarioDumper, sort_keys=False)


class _ScenarioDumper(yaml.SafeDumper):
    """Short lists of numbers ([low, high] ranges, age bins) on one line, as people write them."""


def _represent_list(dumper: yaml.SafeDumper, data: list):
    flat = all(isinstance(item, (int, float, str, bool)) or item is None for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat and len(data) <= 8)


_ScenarioDumper.add_representer(list, _represent_list)
