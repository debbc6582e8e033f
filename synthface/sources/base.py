"""The common shape of every face pool: a source spec in, labelled face records out.

Each pool format (UTKFace, FairFace, a generic table, the bundled demo) has its own module
that turns a :class:`SourceSpec` into a :class:`SourceScan`. Inputs that cannot be used are
never dropped silently: they come back as :class:`SkippedInput` with the reason, so the
generation report can list them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthface.errors import UserError
from synthface.paths import is_url
from synthface.taxonomy import RACE_TAXONOMIES

SourceKind = Literal["utkface", "fairface", "table", "demo"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


class SourceError(UserError, ValueError):
    """A source cannot be read at all (missing folder, unreadable table); the message says what to fix."""


class SourceSpec(BaseModel):
    """Where a face pool lives and how to read it (one entry of a scenario's `sources:` list)."""

    model_config = ConfigDict(extra="forbid")

    kind: SourceKind = Field(
        description="Pool format: utkface (labels in file names), fairface (label CSV + images), "
        "table (any CSV/parquet with file,age,gender,race columns) or demo (bundled public-domain faces)."
    )
    path: str | Path | None = Field(
        default=None,
        description="utkface/fairface: the image folder; table: the CSV or parquet file; demo: not used. "
        "A local path or an fsspec URL (s3://bucket/faces, gs://..., file://...): a URL is mirrored into the cache "
        "first, fetching only new or changed objects (docs/scale.md).",
    )
    labels: str | Path | None = Field(
        default=None,
        description="fairface only: the label CSV (a path or URL). Default: fairface_label_train.csv and "
        "fairface_label_val.csv found in `path` or its parent folder.",
    )
    race_taxonomy: str = Field(
        default="utkface5",
        description="table only: the taxonomy of the race column (utkface5 or fairface7); labels or class indices.",
    )
    file_column: str = Field(default="file", description="table only: column with the image path (relative to the table's folder).")
    age_column: str = Field(default="age", description="table only: column with the age in years (or an age bin such as '20-29').")
    gender_column: str = Field(default="gender", description="table only: column with the gender (male/female/m/f/0/1).")
    race_column: str = Field(default="race", description="table only: column with the race label or index.")

    @field_validator("path", "labels")
    @classmethod
    def _path_or_url(cls, value: Path | str | None) -> Path | str | None:
        """A URL stays text (a Path would fold s3://b into s3:/b); anything else is a local path."""
        if value is None or is_url(value):
            return value
        return Path(value).expanduser()

    @field_validator("race_taxonomy")
    @classmethod
    def _known_taxonomy(cls, value: str) -> str:
        if value not in RACE_TAXONOMIES:
            raise ValueError(f"unknown race taxonomy {value!r}; expected one of {sorted(RACE_TAXONOMIES)}")
        return value

    @model_validator(mode="after")
    def _path_given_where_needed(self) -> SourceSpec:
        if self.kind != "demo" and self.path is None:
            raise ValueError(f"a {self.kind} source needs a path (e.g. {self.kind}:/data/faces)")
        if self.labels is not None and self.kind != "fairface":
            raise ValueError(f"'labels' only applies to fairface sources, not {self.kind}")
        return self


@dataclass(frozen=True)
class FaceRecord:
    """One labelled real face of a pool. Labels use taxonomy.py's lower-case spellings; None = unknown."""

    source_id: str  # stable unique "<kind>:<path relative to the source root>"
    path: Path  # the image file
    source_dataset: str  # the source kind: utkface / fairface / table / demo
    age: float | None  # years (FairFace: midpoint of its bin)
    age_range: tuple[int, int] | None  # inclusive bin when the pool gives ages as bins (FairFace)
    gender: str | None
    race: str | None
    race_taxonomy: str
    origin: str | None = None  # the object's URL where the pool was mirrored from object storage (for reports)

    @property
    def location(self) -> str:
        """Where the user's file is: its URL for a mirrored pool, else its path."""
        return self.origin or str(self.path)


@dataclass(frozen=True)
class SkippedInput:
    """An input a reader could not use, with the reason (reported, never silently dropped).

    `reason` reads "category: detail" (e.g. "bad label: gender 'x' is not ..."), so reports
    can count skipped inputs per category."""

    path: str  # the file, or "table.csv:LINE" / "table.csv row N" for a table row
    reason: str
    source: str = ""  # the source it came from, as given to --source (KIND:PATH); set by the pool stage


@dataclass
class SourceScan:
    """The result of reading one pool."""

    records: list[FaceRecord]
    skipped: list[SkippedInput] = field(default_factory=list)
    reuse_unlimited: bool = False  # the demo pool may reuse its few faces without a max_reuse cap


def parse_source_arg(text: str) -> SourceSpec:
    """Parse the CLI form `kind:path` (or just `demo`) into a SourceSpec."""
    kind, sep, path = text.partition(":")
    kind = kind.strip().lower()
    if kind not in SOURCE_KINDS:
        raise ValueError(f"--source {text!r}: unknown kind {kind!r}; expected KIND:PATH with KIND one of {', '.join(SOURCE_KINDS)}")
    if kind == "demo":
        if path:
            raise ValueError(f"--source {text!r}: the demo source takes no path; write just 'demo'")
        return SourceSpec(kind="demo")
    if not sep or not path.strip():
        raise ValueError(f"--source {text!r}: missing path; expected {kind}:PATH")
    return SourceSpec(kind=kind, path=path.strip())


def require_path(spec: SourceSpec, *, want_dir: bool) -> Path:
    """The spec's path, checked to exist (as a folder or a file); a SourceError naming it otherwise."""
    assert spec.path is not None  # guaranteed by SourceSpec's validator
    path = spec.path
    if not path.exists():
        raise SourceError(f"{spec.kind} source: {path} does not exist")
    if want_dir and not path.is_dir():
        raise SourceError(f"{spec.kind} source: {path} is not a folder; expected the folder of images")
    if not want_dir and not path.is_file():
        raise SourceError(f"{spec.kind} source: {path} is not a file; expected a CSV or parquet table")
    return path


def load_source(spec: SourceSpec, quiet: bool = False) -> SourceScan:
    """Read a pool into labelled face records, dispatching on its kind (a pool at a URL is mirrored
    first, with a progress bar unless `quiet`)."""
    if is_url(spec.path) or is_url(spec.labels):
        from synthface.sources.remote import load_remote_source

        return load_remote_source(spec, quiet)
    # Imported here so each reader's dependencies (pandas, skimage) load only when used.
    if spec.kind == "utkface":
        from synthface.sources.utkface import load_utkface

        return load_utkface(spec)
    if spec.kind == "fairface":
        from synthface.sources.fairface import load_fairface

        return load_fairface(spec)
    if spec.kind == "table":
        from synthface.sources.table import load_table

        return load_table(spec)
    from synthface.sources.demo import load_demo

    return load_demo(spec)
