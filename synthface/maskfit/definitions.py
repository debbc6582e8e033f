"""Mask types as data: the YAML schema of `masks/*.yaml`, colour palettes, and the library that loads them.

A definition describes a mask in *face space* (see `canonical.py`: x = +-1 at the cheeks,
y = 0 at the top of the nose bridge, y grows downward, same unit): its outline, its relief
(pleats, cup, fold, seams...), its material, its straps, the palettes it is coloured from
and the wear styles it supports. Adding a type means adding a YAML file, not code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthface.errors import UserError, describe_problems, validation_problems
from synthface.paths import bundled_dir
from synthface.yamlio import YamlError, load_yaml_file

WEAR_STYLES: tuple[str, ...] = ("proper", "nose_exposed", "chin", "strap_loose")
PATTERNS: tuple[str, ...] = ("plain", "stripes", "dots", "checks", "floral")
PALETTES_FILE = "palettes.yaml"

Point = tuple[float, float]


class MaskDefinitionError(UserError, ValueError):
    """A mask definition or palette file is invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pleats(_Strict):
    """Horizontal pleats (surgical masks): folds that open over the face and gather at the side bindings."""

    kind: Literal["pleats"]
    count: int = Field(3, ge=1, le=8, strict=True, description="Number of folds.")
    top: float = Field(0.45, description="Face-space y of the first fold on the midline.")
    bottom: float = Field(1.45, description="Face-space y of the last fold on the midline.")
    gather: float = Field(0.35, ge=0, le=1, description="How much folds converge toward the mask's top/bottom centre at the sides (0: parallel).")
    depth: float = Field(1.0, ge=0, description="Relief strength of each fold.")


class Dome(_Strict):
    """A cup that stands off the face (N95): height falls off from a centre toward the outline."""

    kind: Literal["dome"]
    centre: Point = Field((0.0, 0.95), description="Face-space (x, y) of the highest point.")
    radius: Point = Field((1.0, 0.9), description="Face-space (x, y) radii of the cup.")
    height: float = Field(1.0, ge=0, description="Relief strength.")


class Fold(_Strict):
    """A vertical centre fold (KN95 duckbill, cloth centre seam): two panels meeting at a ridge."""

    kind: Literal["fold"]
    sharpness: float = Field(1.0, ge=0, description="Relief strength of the ridge.")
    seam: bool = Field(True, description="Draw a stitched seam line along the ridge.")


class Hem(_Strict):
    """A band along the outline (binding, hem, rim seal), drawn slightly raised and tinted."""

    kind: Literal["hem"]
    width: float = Field(0.05, gt=0, description="Band width in face units.")
    shade: float = Field(0.92, gt=0, description="Brightness factor of the band relative to the body.")
    sides_only: bool = Field(False, description="Only the left and right edges (surgical side bindings).")


class Wire(_Strict):
    """A nose wire under the top edge: a thin raised ridge across the nose bridge."""

    kind: Literal["wire"]
    width: float = Field(0.35, gt=0, description="Half-length of the wire along the top edge, face units.")
    offset: float = Field(0.05, ge=0, description="Distance below the top edge, face units.")


class Ribs(_Strict):
    """Parallel soft ridges: knit ribs of a neck gaiter or folds of a scarf/bandana."""

    kind: Literal["ribs"]
    period: float = Field(0.25, gt=0, description="Distance between ridges, face units.")
    angle: float = Field(0.0, description="Direction of the ridges in degrees (0: horizontal).")
    depth: float = Field(0.6, ge=0, description="Relief strength.")
    wobble: float = Field(0.0, ge=0, description="Waviness of the ridges, face units.")
    offset: float = Field(0.0, description="Shift of the ridges across their direction, face units (to centre them).")
    span: Optional[Point] = Field(
        None, description="Range (start, end) along the ridges' direction where they exist, face units (unset: everywhere).")
    profile: Literal["wave", "cylinders"] = Field(
        "wave", description="wave: soft sine ridges (knit, drape); cylinders: rounded bands with dark seams (fingers).")


class Valve(_Strict):
    """An exhalation valve: a raised disc with its own colour."""

    kind: Literal["valve"]
    centre: Point = Field((0.45, 1.0), description="Face-space (x, y) centre; +x is the subject's left (image right when frontal).")
    radius: float = Field(0.17, gt=0, description="Radius, face units.")
    color: str = Field("#3c3f44", description="Valve colour, '#rrggbb', or 'body' for the mask colour.")


class Window(_Strict):
    """A clear plastic window over the mouth: the face shows through, with a faint tint and a glint."""

    kind: Literal["window"]
    centre: Point = Field((0.0, 1.02), description="Face-space (x, y) centre.")
    size: Point = Field((0.52, 0.24), description="Face-space half width and half height (an ellipse).")
    opacity: float = Field(0.18, ge=0, le=1, description="How much the plastic hides the face (0: invisible).")
    frame: float = Field(0.035, ge=0, description="Width of the stitched frame around the window, face units.")


Relief = Annotated[Union[Pleats, Dome, Fold, Hem, Wire, Ribs, Valve, Window], Field(discriminator="kind")]


class Material(_Strict):
    """Surface of the mask: its fine texture and how it reflects light."""

    kind: Literal["nonwoven", "woven", "knit", "plastic", "skin"] = Field(
        "woven", description="Fine texture family: nonwoven (speckled, surgical/N95), woven (weave), knit (ribs), plastic, skin.")
    texture: float = Field(0.5, ge=0, le=2, description="Default texture strength (scenarios may override with a range).")
    shading: float = Field(0.55, ge=0, le=2, description="Strength of the relief shading (pleats, cup, folds).")
    gloss: float = Field(0.0, ge=0, le=1, description="Specular highlight strength.")


class Straps(_Strict):
    """Ear loops or head straps, drawn from the mask's sides toward the ears (the far one hidden under yaw)."""

    kind: Literal["none", "ear_loops", "head_straps", "ties"] = Field("ear_loops", description="Strap layout.")
    width: float = Field(0.03, gt=0, description="Strap width, face units.")
    color: str = Field("body", description="'#rrggbb', or 'body' for a shade of the mask colour.")


class Margin(_Strict):
    """How far the mask may extend beyond the face contour (its own thickness, straps, fabric under the chin)."""

    side: float = Field(0.08, ge=0, le=1, description="Beyond the cheek/jaw contour, face units.")
    bottom: float = Field(0.15, ge=0, le=2, description="Below the chin, face units.")


class MaskDefinition(_Strict):
    """One mask (or confuser) type, loaded from `masks/<name>.yaml`."""

    name: str = Field(description="Type name used in scenarios and metadata (mask_type / occluder).")
    description: str = Field("", description="One line for `synthface masks list`.")
    is_mask: bool = Field(True, description="False for confusers (scarf, hand...): labelled mask=0, occluder=<name>.")
    wear_styles: list[Literal["proper", "nose_exposed", "chin", "strap_loose"]] = Field(
        description="Wear styles this type supports; strap_loose only for types with straps (head_straps or ear_loops).")
    outline: list[Point] = Field(
        min_length=3,
        description="Right half of the outline (x >= 0) in face units, from the top centre to the bottom centre; mirrored.")
    smooth: bool = Field(True, description="Round the outline through its points (a closed spline) instead of straight edges.")
    margin: Margin = Field(default_factory=Margin, description="Extent allowed beyond the face contour.")
    material: Material = Field(default_factory=Material, description="Texture and reflectance.")
    relief: list[Relief] = Field(default_factory=list, description="Surface features, drawn in order.")
    straps: Straps = Field(default_factory=Straps, description="Ear loops or head straps.")
    palettes: list[str] = Field(min_length=1, description="Names of palettes in palettes.yaml the colour is drawn from.")
    patterns: dict[Literal["plain", "stripes", "dots", "checks", "floral"], float] = Field(
        default_factory=lambda: {"plain": 1.0}, description="Pattern -> weight.")
    recolor: bool = Field(True, description="Whether colour variation applies (photo templates may opt out).")
    generator: Optional[Literal["hand"]] = Field(
        None, description="Draw the occluder procedurally instead of from `outline`/`relief`: `hand` makes a new hand "
                          "for every sample (pose, view, size, angle, finger spread, skin tone from the face; see "
                          "docs/masks.md). `outline` then only sets the type's nominal extent.")
    skin_from_face: bool = Field(
        False, description="Colour taken from the face's own skin (hands): the palette colour only tints it slightly.")
    image: Optional[str] = Field(
        None, description="Photo template: an RGBA image (path relative to this YAML file) used instead of a flat "
                          "colour; an image without alpha must have a uniform background, which is removed.")
    anchors: Optional[dict[Literal["nose_bridge", "nose_tip", "chin", "left_cheek", "right_cheek", "left_jaw", "right_jaw",
                                   "mouth_left", "mouth_right"], Point]] = Field(
        None, description="Photo template: template pixel (x, y) -> named face point (at least 3). Unset: estimated "
                          "from the alpha outline, matched to `outline`.")
    source: str = Field("", description="The file the definition was loaded from (filled in by the loader).")
    palette_colours: dict[str, list[tuple[int, int, int]]] = Field(
        default_factory=dict,
        description="Every palette known to the library, name -> RGB colours (filled in by the loader, so a "
                    "definition can be sampled on its own and scenarios may name any palette).")

    @field_validator("outline")
    @classmethod
    def _outline(cls, outline: list[Point]) -> list[Point]:
        if any(x < 0 for x, _ in outline):
            raise ValueError("outline gives the right half only: every x must be >= 0")
        if outline[0][0] != 0 or outline[-1][0] != 0:
            raise ValueError("outline must start and end on the midline (x = 0): top centre first, bottom centre last")
        return outline

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, patterns: dict[str, float]) -> dict[str, float]:
        if not patterns or any(w < 0 for w in patterns.values()) or sum(patterns.values()) <= 0:
            raise ValueError("patterns needs at least one non-negative weight and a positive total")
        return patterns

    @field_validator("anchors")
    @classmethod
    def _anchors(cls, anchors):
        if anchors is not None and len(anchors) < 3:
            raise ValueError("give at least 3 anchors (e.g. nose_bridge, chin, left_cheek, right_cheek), or none to estimate them")
        return anchors

    @model_validator(mode="after")
    def _wear(self) -> "MaskDefinition":
        if "strap_loose" in self.wear_styles and self.straps.kind not in ("head_straps", "ear_loops"):
            raise ValueError("wear style strap_loose needs straps.kind head_straps or ear_loops")
        return self

    @property
    def occluder(self) -> str:
        """The metadata `occluder` value: the type name for confusers, 'none' for real masks."""
        return "none" if self.is_mask else self.name

    def supports(self, wear_style: str) -> bool:
        return wear_style in self.wear_styles


def _read_yaml(file: Path) -> object:
    try:
        return load_yaml_file(file, "mask definition (YAML)")
    except YamlError as error:
        raise MaskDefinitionError(str(error)) from None


def load_definition(file: Path) -> MaskDefinition:
    """Parse one mask YAML; errors name the file and the key path."""
    file = Path(file)
    data = _read_yaml(file)
    if not isinstance(data, dict):
        raise MaskDefinitionError(f"{file}: expected a mapping of keys (name, outline, ...), got {type(data).__name__}")
    data.setdefault("name", file.stem)
    try:
        definition = MaskDefinition.model_validate({**data, "source": str(file)})
    except ValidationError as error:
        raise MaskDefinitionError(describe_problems(str(file), "mask definition", validation_problems(error))) from None
    if definition.image is not None:
        definition = _check_photo(definition, file)
    return definition


def _check_photo(definition: MaskDefinition, file: Path) -> MaskDefinition:
    """Resolve a photo template's path and check it can be read and its anchors lie inside it."""
    from synthface.maskfit.photo import PhotoTemplateError, read_rgba

    image = (file.parent / definition.image).resolve()
    if not image.is_file():
        raise MaskDefinitionError(f"{file}: image: file not found: {image}")
    try:
        rgba = read_rgba(image)
    except PhotoTemplateError as error:
        raise MaskDefinitionError(f"{file}: image: {error}") from None
    height, width = rgba.shape[:2]
    for name, (x, y) in (definition.anchors or {}).items():
        if not (0 <= x < width and 0 <= y < height):
            raise MaskDefinitionError(
                f"{file}: anchors.{name}: ({x}, {y}) lies outside the {width}x{height} image {image.name}")
    return definition.model_copy(update={"image": str(image)})


def _parse_hex(colour: str, where: str) -> tuple[int, int, int]:
    text = str(colour).strip()
    if len(text) != 7 or not text.startswith("#"):
        raise MaskDefinitionError(f"{where}: expected a colour '#rrggbb', got {colour!r}")
    try:
        return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    except ValueError:
        raise MaskDefinitionError(f"{where}: expected a colour '#rrggbb', got {colour!r}") from None


def load_palettes(file: Path) -> dict[str, list[tuple[int, int, int]]]:
    """`palettes.yaml`: palette name -> list of '#rrggbb' colours."""
    data = _read_yaml(file)
    if not isinstance(data, dict):
        raise MaskDefinitionError(f"{file}: expected a mapping palette name -> list of '#rrggbb' colours")
    palettes = {}
    for name, colours in data.items():
        if not isinstance(colours, list) or not colours:
            raise MaskDefinitionError(f"{file}: {name}: expected a non-empty list of '#rrggbb' colours")
        palettes[str(name)] = [_parse_hex(c, f"{file}: {name}[{i}]") for i, c in enumerate(colours)]
    return palettes


class UnknownMaskError(KeyError):
    """A mask type name that is not in the library; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class MaskLibrary:
    """Every mask definition and palette from the bundled `masks/` folder plus user folders.

    A user folder's definition replaces a bundled one of the same name; a user `palettes.yaml`
    adds or replaces palettes by name.
    """

    def __init__(self, definitions: dict[str, MaskDefinition], palettes: dict[str, list[tuple[int, int, int]]]):
        self._definitions = definitions
        self.palettes = palettes

    @classmethod
    def load(cls, extra_dirs: Sequence[Path] = ()) -> "MaskLibrary":
        folders = [bundled_dir("masks"), *(Path(d).expanduser() for d in extra_dirs)]
        definitions: dict[str, MaskDefinition] = {}
        palettes: dict[str, list[tuple[int, int, int]]] = {}
        for folder in folders:
            if not folder.is_dir():
                raise MaskDefinitionError(f"--masks {folder}: not a folder")
            if (folder / PALETTES_FILE).is_file():
                palettes.update(load_palettes(folder / PALETTES_FILE))
            for file in sorted(folder.glob("*.yaml")):
                if file.name == PALETTES_FILE:
                    continue
                definition = load_definition(file)
                definitions[definition.name] = definition
        for name, definition in list(definitions.items()):
            missing = [p for p in definition.palettes if p not in palettes]
            if missing:
                raise MaskDefinitionError(
                    f"{definition.source}: palettes: unknown palette(s) {missing}; known: {sorted(palettes)}")
            for strap in (definition.straps.color, *[r.color for r in definition.relief if isinstance(r, Valve)]):
                if strap != "body":
                    _parse_hex(strap, f"{definition.source}: colour")
            definitions[name] = definition.model_copy(update={"palette_colours": palettes})
        return cls(definitions, palettes)

    def names(self) -> list[str]:
        return sorted(self._definitions)

    def get(self, name: str) -> MaskDefinition:
        try:
            return self._definitions[name]
        except KeyError:
            raise UnknownMaskError(f"unknown mask type {name!r}; known types: {', '.join(self.names())}") from None

    def __iter__(self):
        return iter(self._definitions[name] for name in self.names())
