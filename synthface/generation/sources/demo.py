"""The bundled offline demo pool: public-domain portraits that ship inside installed packages.

It lets the bundled scenarios run on a fresh machine without any download. Two faces cannot
meet most balance targets (both are white women); the plan may reuse them without limit
(`reuse_unlimited=True`) and its report shows which targets the pool misses.

Provenance
----------
* ``astronaut.png`` from scikit-image (``skimage.data.astronaut()``): NASA portrait of the
  astronaut Eileen Collins (born 19 November 1956), from the NASA Great Images collection,
  https://flic.kr/p/r9qvLn ; scikit-image's docstring states "No known copyright restrictions,
  released into the public domain". The photo is undated in both sources; she wears the orange
  launch-and-entry suit of her early years as an astronaut (selected 1990, first flight
  STS-63 in February 1995), so we label her age as 36 (photo c. 1992-1993, +/- 2 years).
* ``grace_hopper.jpg`` from matplotlib's sample data (``matplotlib.cbook.get_sample_data``):
  the US Navy portrait of Commodore Grace M. Hopper (born 9 December 1906); the file's JPEG
  comment names its source, https://commons.wikimedia.org/wiki/File:Grace_Hopper.jpg , a US
  Navy photograph (work of the US federal government, public domain) dated January 1984.
  She held the rank shown, Commodore, from 8 November 1983 (US Navy biography), so the photo
  shows her at 77.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from synthface.generation.sources.base import FaceRecord, SourceScan, SourceSpec
from synthface.paths import cache_dir

TAXONOMY = "utkface5"  # "white" is spelled the same in fairface7


@dataclass(frozen=True)
class DemoFace:
    name: str  # file name, also the source id's path part
    age: float
    gender: str
    race: str


ASTRONAUT = DemoFace(name="astronaut.png", age=36.0, gender="female", race="white")
GRACE_HOPPER = DemoFace(name="grace_hopper.jpg", age=77.0, gender="female", race="white")
DEMO_FACES: tuple[DemoFace, ...] = (ASTRONAUT, GRACE_HOPPER)


def astronaut_path() -> Path:
    """scikit-image's astronaut file; written once to the cache if this scikit-image keeps it elsewhere."""
    import skimage

    bundled = Path(skimage.__file__).parent / "data" / ASTRONAUT.name
    if bundled.is_file():
        return bundled
    cached = cache_dir() / "demo" / ASTRONAUT.name
    if not cached.is_file():
        from PIL import Image
        from skimage.data import astronaut

        from synthface.dataset import atomic_write_bytes

        buffer = io.BytesIO()
        Image.fromarray(astronaut()).save(buffer, format="PNG")
        atomic_write_bytes(cached, buffer.getvalue())
    return cached


def grace_hopper_path() -> Path:
    """matplotlib's Grace Hopper sample photo (always shipped as a file in mpl-data)."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data(GRACE_HOPPER.name, asfileobj=False))


def load_demo(spec: SourceSpec | None = None) -> SourceScan:
    """The two demo faces as records; the pool may reuse them without limit."""
    paths = {ASTRONAUT.name: astronaut_path(), GRACE_HOPPER.name: grace_hopper_path()}
    records = [
        FaceRecord(
            source_id=f"demo:{face.name}",
            path=paths[face.name],
            source_dataset="demo",
            age=face.age,
            age_range=None,
            gender=face.gender,
            race=face.race,
            race_taxonomy=TAXONOMY,
        )
        for face in DEMO_FACES
    ]
    return SourceScan(records=records, skipped=[], reuse_unlimited=True)


def demo_photo(name: str):
    """A demo photo as an RGB uint8 array: 'astronaut' or 'grace_hopper' (file names work too)."""
    import cv2
    import numpy as np

    stem = Path(name).stem
    paths = {Path(ASTRONAUT.name).stem: astronaut_path, Path(GRACE_HOPPER.name).stem: grace_hopper_path}
    if stem not in paths:
        raise ValueError(f"unknown demo photo {name!r}; expected one of {sorted(paths)}")
    bgr = cv2.imdecode(np.fromfile(str(paths[stem]()), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
