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

# Where the mask is matters: the three-class target of the correct/incorrect-wear datasets.
MASK_STATES: tuple[str, ...] = ("none", "correct", "incorrect")
CORRECT_WEAR = "proper"  # every other wear style (nose_exposed, chin, strap_loose) is incorrect
# Wear styles that leave the mouth uncovered: a mask pulled down onto the chin.
MOUTH_UNCOVERED_WEAR: frozenset[str] = frozenset({"chin"})
# What the binary `mask` column means for a worn mask (scenario `mask.binary_label`).
BINARY_MASK_RULES: tuple[str, ...] = ("covers_mouth", "worn", "worn_correctly")


def mask_state(worn: bool, wear_style: str) -> str:
    """none / correct / incorrect: a confuser (scarf, hand) or no mask is none."""
    if not worn:
        return "none"
    return "correct" if wear_style == CORRECT_WEAR else "incorrect"


def binary_mask_label(worn: bool, wear_style: str, rule: str) -> int:
    """The binary `mask` label of a sample under a scenario's `mask.binary_label` rule."""
    if not worn:
        return 0
    if rule == "covers_mouth":
        return int(wear_style not in MOUTH_UNCOVERED_WEAR)
    if rule == "worn_correctly":
        return int(wear_style == CORRECT_WEAR)
    if rule == "worn":
        return 1
    raise ValueError(f"unknown mask.binary_label {rule!r}; expected one of {BINARY_MASK_RULES}")


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
