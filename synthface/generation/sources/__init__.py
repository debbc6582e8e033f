"""Face pools: readers that turn a UTKFace folder, a FairFace label CSV, any labelled table or
the bundled demo photos into labelled :class:`FaceRecord` objects (see docs/sources.md)."""

from synthface.generation.sources.base import (
    SOURCE_KINDS,
    FaceRecord,
    SkippedInput,
    SourceError,
    SourceScan,
    SourceSpec,
    load_source,
    parse_source_arg,
)

__all__ = [
    "SOURCE_KINDS",
    "FaceRecord",
    "SkippedInput",
    "SourceError",
    "SourceScan",
    "SourceSpec",
    "load_source",
    "parse_source_arg",
]
