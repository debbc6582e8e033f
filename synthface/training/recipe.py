"""Training recipes: a validated YAML schema (unknown keys rejected) and command-line overrides.

A recipe is plain YAML (see train/*.yaml and docs/training.md). Every section is a
pydantic model with `extra="forbid"`, so a typo such as `lerning_rate` fails loudly with
the key's dotted path instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthface.errors import UserError, describe_problems, validation_problems
from synthface.yamlio import YamlError, load_yaml_file, load_yaml_text

TASKS = ("age", "gender", "race", "mask")
# Validation metrics early stopping may watch, and whether lower is better.
STOPPING_METRICS: dict[str, str] = {
    "val_loss": "min",
    "val_age_mae": "min",
    "val_gender_acc": "max",
    "val_race_acc": "max",
    "val_mask_acc": "max",
    "val_mean_acc": "max",
}
BALANCE_COLUMNS = ("gender", "race", "mask", "age_bin", "mask_type", "mask_state", "wear_style")
BACKBONE_NAMES = ("resnet50", "resnet18", "mobilenet_v3_small")


class RecipeError(UserError, ValueError):
    """A recipe file or override is invalid; the message names the key and what was expected."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    backbone: Literal["resnet50", "resnet18", "mobilenet_v3_small"] = Field(
        "resnet50", description="the trunk: resnet50 (the paper), resnet18 or mobilenet_v3_small (light, for CPUs)")
    attention: bool = Field(True, description="spatial attention before pooling (False = the ablation)")
    backbone_weights: str = Field("imagenet", description="'imagenet', 'none' or a path to a state-dict file of the backbone")
    gender_aware_age: bool = Field(False, description="feed the gender head's probabilities into the age head")
    mask_target: Literal["auto", "binary", "state"] = Field(
        "auto", description="mask head target: binary `mask`, 3-class `mask_state`, or auto (state when the data has it)")
    head_dropout: float = Field(0.3, ge=0.0, lt=1.0, description="dropout inside every task head")
    age_max: float = Field(120.0, gt=0, description="upper bound of the age output, years")


class DataSection(_Section):
    image_size: int = Field(224, ge=32, le=1024, strict=True, description="square input size in pixels")
    batch_size: int = Field(128, ge=2, le=65_536, strict=True, description="images per step per GPU/process")
    workers: int = Field(8, ge=0, le=256, strict=True, description="data-loading processes per GPU/process")
    prefetch_factor: int = Field(4, ge=1, le=256, strict=True, description="batches each worker keeps ready")
    train_split: str = "train"
    val_split: str = "val"
    val_holdout: float = Field(0.1, ge=0, lt=1, description="share of source faces held out for validation when the val split is empty")
    val_data: str | None = Field(None, description="dataset whose val split validates (default: --data or the last curriculum phase)")
    balance_by: list[str] = Field(default_factory=list, description="columns whose joint groups are sampled equally")

    @field_validator("balance_by")
    @classmethod
    def _known_columns(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in BALANCE_COLUMNS]
        if unknown:
            raise ValueError(f"unknown column(s) {unknown}; expected some of {list(BALANCE_COLUMNS)}")
        return value


class AffineSection(_Section):
    p: float = Field(0.5, ge=0, le=1)
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = Field(0.05, ge=0, le=0.5, description="fraction of the image size")
    rotate: float = Field(10.0, ge=0, le=180, description="degrees, both ways")


class ColorSection(_Section):
    p: float = Field(0.5, ge=0, le=1)
    brightness: float = Field(0.2, ge=0, le=1)
    contrast: float = Field(0.2, ge=0, le=1)
    saturation: float = Field(0.2, ge=0, le=1)
    hue: float = Field(0.0, ge=0, le=0.5, description="off by default: hue shifts change skin tone, a race cue")


class MixSection(_Section):
    kind: Literal["none", "mixup", "cutmix", "both"] = Field("none", description="batch mixing; both = one of the two per batch")
    alpha: float = Field(0.2, gt=0, description="Beta(alpha, alpha) draws the mixing share")
    p: float = Field(1.0, ge=0, le=1, description="probability that a batch is mixed")


class AugmentSection(_Section):
    hflip: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    affine: AffineSection = Field(default_factory=AffineSection)
    color: ColorSection = Field(default_factory=ColorSection)
    mix: MixSection = Field(default_factory=MixSection)


class LossSection(_Section):
    weighting: Literal["fixed", "uncertainty"] = "fixed"
    lambdas: dict[str, float] = Field(default_factory=lambda: {task: 1.0 for task in TASKS})
    age: Literal["l1", "smooth_l1"] = "smooth_l1"
    age_scale: float = Field(10.0, gt=0, description="years per unit of the age loss")
    class_weights: bool = Field(False, description="inverse-frequency class weights for gender/race/mask")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="label smoothing of the gender/race/mask cross-entropies")

    @field_validator("lambdas")
    @classmethod
    def _all_tasks(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; expected {list(TASKS)}")
        if any(weight < 0 for weight in value.values()):
            raise ValueError("lambdas must be >= 0")
        return {task: float(value.get(task, 1.0)) for task in TASKS}


class OptimSection(_Section):
    epochs: int = Field(30, ge=1, le=100_000, strict=True)
    max_steps: int | None = Field(None, ge=1, le=10**12, strict=True, description="stop after this many optimizer steps in total (the schedule still spans all epochs)")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    schedule: Literal["cosine", "onecycle"] = "cosine"
    grad_clip: float | None = Field(5.0, gt=0, description="max global gradient norm; null = off")


class EarlyStoppingSection(_Section):
    metric: str = "val_loss"
    patience: int = Field(5, ge=1, le=100_000, strict=True, description="epochs without improvement before stopping")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in STOPPING_METRICS:
            raise ValueError(f"unknown metric {value!r}; expected one of {list(STOPPING_METRICS)}")
        return value


class RuntimeSection(_Section):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field("auto", description="auto = bf16 on CUDA, fp32 on CPU")
    channels_last: bool = True
    compile: bool = False
    checkpoint_every_steps: int = Field(0, ge=0, le=10**12, strict=True, description="also write last.pt every N steps (0 = per epoch)")
    log_every_steps: int = Field(20, ge=1, le=10**9, strict=True, description="progress-bar refresh (a GPU sync) every N steps")


class PhaseSection(_Section):
    data: str = Field(..., description="dataset folder of this phase (relative paths: from the current directory)")
    epochs: int = Field(..., ge=1)
    name: str | None = Field(None, description="shown in the log; default: the folder name")

    @property
    def label(self) -> str:
        return self.name or Path(self.data).name


class Recipe(_Section):
    name: str = "oam_resnet50"
    seed: int = Field(0, ge=0, le=2**63 - 1, strict=True)
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    augment: AugmentSection = Field(default_factory=AugmentSection)
    loss: LossSection = Field(default_factory=LossSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    early_stopping: EarlyStoppingSection = Field(default_factory=EarlyStoppingSection)
    runtime: RuntimeSection = Field(default_factory=RuntimeSection)
    curriculum: list[PhaseSection] = Field(
        default_factory=list, description="phases trained in order, each on its own dataset; empty = one phase on --data")

    @model_validator(mode="after")
    def _curriculum_epochs(self) -> Recipe:
        # With a curriculum the phases set the length of training; optim.epochs follows them.
        if self.curriculum:
            total = sum(phase.epochs for phase in self.curriculum)
            if "epochs" in self.optim.model_fields_set and self.optim.epochs != total:
                raise ValueError(f"optim.epochs ({self.optim.epochs}) differs from the curriculum's total epochs "
                                 f"({total}); with a curriculum, set the epochs of each phase instead")
            self.optim.epochs = total
        return self

    @model_validator(mode="after")
    def _warmup_fits(self) -> Recipe:
        if self.optim.warmup_epochs > self.optim.epochs:
            raise ValueError(f"optim.warmup_epochs ({self.optim.warmup_epochs}) exceeds optim.epochs ({self.optim.epochs})")
        return self


def parse_recipe(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a recipe mapping; RecipeError lists every bad key with its dotted path."""
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise RecipeError(describe_problems(source, "training recipe", validation_problems(error))) from None


def load_recipe(path: Path | str) -> Recipe:
    """Read and validate a recipe YAML file."""
    path = Path(path)
    try:
        data = load_yaml_file(path, "training recipe (YAML)") or {}
    except YamlError as error:
        raise RecipeError(str(error)) from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections, found {type(data).__name__}")
    return parse_recipe(data, str(path))


def resolve_recipe_path(name_or_path: str) -> Path:
    """A recipe file path, or the name of a bundled recipe (`oam_resnet50` -> train/oam_resnet50.yaml)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path  # a folder or device is named as such when it is read, not reported as missing
    from synthface.paths import bundled_dir

    bundled = bundled_dir("train") / f"{path.stem}.yaml"
    if bundled.is_file():
        return bundled
    names = sorted(p.stem for p in bundled_dir("train").glob("*.yaml"))
    raise RecipeError(f"{name_or_path}: no such recipe file, and no bundled recipe of that name (bundled: {names})")


def with_overrides(recipe: Recipe, overrides: dict[str, Any]) -> Recipe:
    """A copy of `recipe` with dotted-key overrides applied (e.g. {"optim.lr": 3e-4}), re-validated."""
    data = recipe.model_dump(mode="json")
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise RecipeError(f"override {dotted!r}: {part!r} is not a recipe section")
            node = node[part]
        if leaf not in node:
            raise RecipeError(f"override {dotted!r}: unknown key {leaf!r}; known here: {sorted(node)}")
        node[leaf] = value
    return parse_recipe(data, "recipe with overrides")


def parse_set_option(text: str) -> tuple[str, Any]:
    """`key.path=value` from `--set`, the value read as YAML (so 0.5, true, [race] work)."""
    if "=" not in text:
        raise RecipeError(f"--set {text!r}: expected KEY=VALUE, e.g. --set model.head_dropout=0.5")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), load_yaml_text(raw, f"--set {text!r}")
    except YamlError as error:
        raise RecipeError(f"{error}; quote YAML-special values, e.g. --set name='\"a: b\"'") from None
