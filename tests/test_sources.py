"""Source readers on tiny real pools built in a temp dir from the bundled public-domain photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import cbook
from PIL import Image
from pydantic import ValidationError
from skimage.data import astronaut

from synthface.generation.sources import SourceError, SourceSpec, load_source, parse_source_arg
from synthface.generation.sources.labels import OPEN_BIN_MAX_AGE, parse_age, parse_gender, parse_race
from synthface.generation.sources.utkface import parse_utkface_name


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """The two real faces, downsized so the files stay tiny."""
    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    return [np.asarray(Image.fromarray(image).resize((96, 96))) for image in (astronaut(), hopper)]


def _save(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG")


# --- UTKFace ---------------------------------------------------------------------------------


def test_utkface_folder_reads_labels_from_names_and_reports_bad_names(tmp_path: Path, photos) -> None:
    good = {
        "36_1_0_20170116174525125.jpg.chip.jpg": (36.0, "female", "white"),
        "77_1_0_20170109142408075.jpg": (77.0, "female", "white"),
        "nested/5_0_2_20170110220111082.jpg.chip.jpg": (5.0, "male", "asian"),
    }
    bad = {
        "39_1_20170116174525125.jpg.chip.jpg": "expected 4 fields",  # race missing (as in real UTKFace)
        "abc_1_0_20170116174525125.jpg": "age field 'abc'",
        "30_2_0_20170116174525125.jpg": "gender field '2'",
        "30_0_7_20170116174525125.jpg": "race index 7 out of range",
        "0_0_0_20170116174525125.jpg": "age field '0'",
    }
    for index, name in enumerate([*good, *bad]):
        _save(tmp_path / name, photos[index % 2])
    (tmp_path / "README.txt").write_text("not a face")
    (tmp_path / ".DS_Store").write_bytes(b"")  # hidden files are ignored, not reported

    scan = load_source(parse_source_arg(f"utkface:{tmp_path}"))

    assert [r.source_id for r in scan.records] == sorted(f"utkface:{name}" for name in good)
    for record in scan.records:
        name = record.source_id.removeprefix("utkface:")
        assert (record.age, record.gender, record.race) == good[name]
        assert record.path == tmp_path / name and record.path.is_file()
        assert record.race_taxonomy == "utkface5" and record.source_dataset == "utkface"
        assert record.age_range is None
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert set(reasons) == {*bad, "README.txt"}
    for name, expected in bad.items():
        assert expected in reasons[name], reasons[name]
    assert reasons["README.txt"] == "not an image file: extension .txt"
    assert all(reasons[name].startswith("bad UTKFace file name: ") for name in bad)  # "category: detail"
    assert not scan.reuse_unlimited


def test_utkface_order_is_deterministic(tmp_path: Path, photos) -> None:
    for name in ["9_0_1_2017.jpg", "10_1_3_2017.jpg", "1_0_4_2017.jpg"]:
        _save(tmp_path / name, photos[0])
    first = load_source(SourceSpec(kind="utkface", path=tmp_path))
    second = load_source(SourceSpec(kind="utkface", path=tmp_path))
    assert first.records == second.records
    assert [r.race for r in first.records] == ["indian", "others", "black"]  # 10_, 1_, 9_ sorted as text


def test_utkface_name_parser() -> None:
    assert parse_utkface_name("26_1_3_20170119193052316.jpg.chip.jpg") == (26, "female", "indian")
    with pytest.raises(ValueError, match="4 fields"):
        parse_utkface_name("26_1_20170119193052316.jpg")


# --- FairFace --------------------------------------------------------------------------------


def _fairface_folder(root: Path, photos) -> None:
    for index, name in enumerate(["train/1.jpg", "train/2.jpg", "val/1.jpg"]):
        _save(root / name, photos[index % 2])
    (root / "fairface_label_train.csv").write_text(
        "file,age,gender,race,service_test\n"
        "train/1.jpg,30-39,Female,East Asian,True\n"
        "train/2.jpg,more than 70,Male,Latino_Hispanic,False\n"
        "train/3.jpg,20-29,Male,White,False\n"  # image missing
        "train/1.jpg,30-39,Female,East Asian,True\n"  # duplicate
    )
    (root / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\n"
        "val/1.jpg,0-2,Female,Middle Eastern,True\n"
        "val/2.jpg,20-29,Unknown,White,True\n"  # bad gender
    )


def test_fairface_reads_bins_and_taxonomy(tmp_path: Path, photos) -> None:
    _fairface_folder(tmp_path, photos)
    scan = load_source(parse_source_arg(f"fairface:{tmp_path}"))

    by_id = {r.source_id: r for r in scan.records}
    assert sorted(by_id) == ["fairface:train/1.jpg", "fairface:train/2.jpg", "fairface:val/1.jpg"]
    first = by_id["fairface:train/1.jpg"]
    assert (first.age, first.age_range, first.gender, first.race) == (34.5, (30, 39), "female", "east_asian")
    oldest = by_id["fairface:train/2.jpg"]
    assert oldest.age_range == (70, OPEN_BIN_MAX_AGE) and oldest.race == "latino_hispanic" and oldest.gender == "male"
    baby = by_id["fairface:val/1.jpg"]
    assert (baby.age, baby.age_range, baby.race) == (1.0, (0, 2), "middle_eastern")
    assert all(r.race_taxonomy == "fairface7" and r.path.is_file() for r in scan.records)

    reasons = [s.reason for s in scan.skipped]
    assert len(reasons) == 3
    assert any(r.startswith("image file not found:") and "train/3.jpg" in r for r in reasons)
    assert any(r.startswith("duplicate row:") for r in reasons)
    assert any("gender 'Unknown'" in r for r in reasons)
    assert any(s.path.endswith("fairface_label_val.csv:3") for s in scan.skipped)  # file and line


def test_fairface_explicit_label_file_and_missing_labels(tmp_path: Path, photos) -> None:
    _fairface_folder(tmp_path, photos)
    only_val = load_source(SourceSpec(kind="fairface", path=tmp_path, labels=tmp_path / "fairface_label_val.csv"))
    assert [r.source_id for r in only_val.records] == ["fairface:val/1.jpg"]

    empty = tmp_path / "no_labels"
    empty.mkdir()
    (empty / "train").mkdir()
    with pytest.raises(SourceError, match="fairface_label_train.csv"):
        load_source(SourceSpec(kind="fairface", path=empty / "train"))


# --- Table -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_source_csv_and_parquet(tmp_path: Path, photos, fmt: str) -> None:
    _save(tmp_path / "img" / "a.jpg", photos[0])
    _save(tmp_path / "img" / "b.jpg", photos[1])
    table = pd.DataFrame(
        {
            "file": ["img/a.jpg", "img/b.jpg", "img/missing.jpg", "img/a.jpg"],
            "age": ["36", "77", "20", "36"],
            "gender": ["F", "female", "m", "1"],
            "race": ["0", "white", "black", "0"],
        }
    )
    path = tmp_path / f"faces.{fmt}"
    table.to_csv(path, index=False) if fmt == "csv" else table.to_parquet(path, index=False)

    scan = load_source(parse_source_arg(f"table:{path}"))
    assert [(r.source_id, r.age, r.gender, r.race) for r in scan.records] == [
        ("table:img/a.jpg", 36.0, "female", "white"),
        ("table:img/b.jpg", 77.0, "female", "white"),
    ]
    assert scan.records[0].path == tmp_path / "img" / "a.jpg"
    assert [s.reason for s in scan.skipped] == [
        f"image file not found: {tmp_path / 'img' / 'missing.jpg'}",
        "duplicate row: img/a.jpg is listed twice",
    ]
    # CSV rows are named by their line in the file (the header is line 1); parquet rows by their number.
    expected = [f"{path}:4", f"{path}:5"] if fmt == "csv" else [f"{path} row 3", f"{path} row 4"]
    assert [s.path for s in scan.skipped] == expected


def test_table_source_custom_columns_and_fairface_taxonomy(tmp_path: Path, photos) -> None:
    _save(tmp_path / "x.jpg", photos[0])
    _save(tmp_path / "y.jpg", photos[1])
    pd.DataFrame({"image": ["x.jpg", "y.jpg"], "years": [40, 8], "sex": [1, 0], "ethnicity": [3, 4]}).to_parquet(
        tmp_path / "labels.parquet"
    )
    spec = SourceSpec(
        kind="table",
        path=tmp_path / "labels.parquet",
        race_taxonomy="fairface7",
        file_column="image",
        age_column="years",
        gender_column="sex",
        race_column="ethnicity",
    )
    scan = load_source(spec)
    assert [(r.gender, r.race, r.race_taxonomy) for r in scan.records] == [
        ("female", "southeast_asian", "fairface7"),  # class indices of fairface7
        ("male", "indian", "fairface7"),
    ]


def test_table_source_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("path,age,gender,race\na.jpg,3,m,0\n")
    with pytest.raises(SourceError, match=r"missing column\(s\) file \('file'\).*file_column"):
        load_source(SourceSpec(kind="table", path=path))


# --- Demo ------------------------------------------------------------------------------------


def test_demo_source_points_at_real_public_domain_photos() -> None:
    scan = load_source(parse_source_arg("demo"))
    assert scan.reuse_unlimited and not scan.skipped
    assert [(r.source_id, r.gender, r.race, r.age) for r in scan.records] == [
        ("demo:astronaut.png", "female", "white", 36.0),
        ("demo:grace_hopper.jpg", "female", "white", 77.0),
    ]
    for record in scan.records:
        with Image.open(record.path) as image:
            assert min(image.size) >= 512  # the full portraits, not thumbnails


# --- Spec and CLI argument -------------------------------------------------------------------


def test_parse_source_arg_accepts_kind_and_path(tmp_path: Path) -> None:
    spec = parse_source_arg("UTKFace:~/faces")
    assert spec.kind == "utkface" and spec.path == Path("~/faces").expanduser()
    assert parse_source_arg("demo").path is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("celeba:/data", "unknown kind 'celeba'"),
        ("utkface", "missing path"),
        ("table:", "missing path"),
        ("demo:/somewhere", "takes no path"),
    ],
)
def test_parse_source_arg_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_source_arg(text)


def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=f"{tmp_path / 'nowhere'} does not exist"):
        load_source(SourceSpec(kind="utkface", path=tmp_path / "nowhere"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SourceError, match="is not a folder"):
        load_source(SourceSpec(kind="utkface", path=tmp_path / "file.txt"))


def test_source_spec_validation() -> None:
    with pytest.raises(ValidationError, match="needs a path"):
        SourceSpec(kind="fairface")
    with pytest.raises(ValidationError, match="extra"):
        SourceSpec(kind="demo", colour="red")
    with pytest.raises(ValidationError, match="unknown race taxonomy"):
        SourceSpec(kind="table", path=Path("t.csv"), race_taxonomy="fitzpatrick6")
    with pytest.raises(ValidationError, match="only applies to fairface"):
        SourceSpec(kind="utkface", path=Path("x"), labels=Path("l.csv"))


def test_label_parsers() -> None:
    assert parse_gender("Male") == parse_gender("m") == parse_gender(0) == parse_gender("0.0") == "male"
    assert parse_race("Latino_Hispanic", "fairface7") == "latino_hispanic"
    assert parse_race(3.0, "utkface5") == "indian"
    assert parse_age("3-9") == (6.0, (3, 9))
    assert parse_age(" 42 ") == (42.0, None)
    for bad in ["", "old", "-3", "130", "9-3"]:
        with pytest.raises(ValueError):
            parse_age(bad)
