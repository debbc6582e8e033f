"""Label vocabularies shared by every part of synthface: genders, race taxonomies, age bins.

Labels are stored as lower-case strings in datasets; the fixed orders here give the class
indices a model uses, so a checkpoint's heads mean the same thing on any dataset.
"""

from __future__ import annotations

GENDERS: tuple[str, ...] = ("male", "female")

RACE_TAXONOMIES: dict[str, tuple[str, ...]] = {
    # UTKFace file names use 0..4 in this order.
    "utkface5": ("white", "black", "asian", "indian", "others"),
    # FairFace's seven groups, spelled as its label CSV does but in snake case.
    "fairface7": (
        "white",
        "black",
        "east_asian",
        "southeast_asian",
        "indian",
        "middle_eastern",
        "latino_hispanic",
    ),
}

# FairFace -> UTKFace, so pools of both can be mixed in one utkface5 scenario.
# East and Southeast Asian both fall under UTKFace's "asian"; UTKFace has no Middle
# Eastern or Latino group, and its "others" class is documented as covering them.
FAIRFACE7_TO_UTKFACE5: dict[str, str] = {
    "white": "white",
    "black": "black",
    "east_asian": "asian",
    "southeast_asian": "asian",
    "indian": "indian",
    "middle_eastern": "others",
    "latino_hispanic": "others",
}

MASK_CLASSES: tuple[str, ...] = ("unmasked", "masked")


def races(taxonomy: str) -> tuple[str, ...]:
    """The ordered race labels of a taxonomy; a clear error for an unknown name."""
    try:
        return RACE_TAXONOMIES[taxonomy]
    except KeyError:
        known = ", ".join(RACE_TAXONOMIES)
        raise ValueError(f"unknown race taxonomy {taxonomy!r}; expected one of: {known}") from None


def convert_race(label: str, from_taxonomy: str, to_taxonomy: str) -> str:
    """Map a race label between taxonomies (only fairface7 -> utkface5 is lossless enough to offer)."""
    if from_taxonomy == to_taxonomy:
        return label
    if (from_taxonomy, to_taxonomy) == ("fairface7", "utkface5"):
        return FAIRFACE7_TO_UTKFACE5[label]
    raise ValueError(
        f"cannot map race labels from {from_taxonomy} to {to_taxonomy}; "
        "only fairface7 -> utkface5 is defined (utkface5 has no split of 'asian' or 'others')"
    )


def age_bin_label(low: int, high: int) -> str:
    """The label of an inclusive age bin, e.g. (20, 29) -> '20-29'."""
    return f"{low}-{high}"


def parse_age_bin(label: str) -> tuple[int, int]:
    """Inverse of :func:`age_bin_label`."""
    low, high = label.split("-")
    return int(low), int(high)
