"""`synthface export-layout`: split/label class folders that torchvision ImageFolder reads as they are."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from synthface.dataset import read_metadata, write_metadata
from synthface.export_layout import LayoutError, LayoutOptions, export_layout
from synthface.testing import make_tiny_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data", n_per_split=6, image_size=32, paired=True)
    table = read_metadata(root)
    # Generated datasets carry mask_state and the source photo's own file name.
    table["mask_state"] = ["correct" if m else "none" for m in table["mask"]]
    table["source_file"] = [f"UTKFace/{20 + i}_0_1_2017.jpg" for i in range(len(table))]
    write_metadata(root, table)
    return root


def test_links_by_mask_load_in_imagefolder_with_the_right_labels(cli, tiny, tmp_path):
    from torchvision.datasets import ImageFolder

    out = tmp_path / "by_mask"
    result = cli(["export-layout", tiny, "--by", "mask", "--out", out])
    assert result.exit_code == 0, result.output
    table = read_metadata(tiny)
    for split in ("train", "val", "test"):
        folder = ImageFolder(str(out / split))
        assert folder.classes == ["mask", "no_mask"]
        part = table[table["split"] == split]
        assert len(folder) == len(part)
        layout = pd.read_csv(out / "layout.csv").set_index("file")
        for path, label in folder.samples:
            relative = Path(path).relative_to(out).as_posix()
            row = part[part["sample_id"] == layout.loc[relative, "sample_id"]].iloc[0]
            assert folder.classes[label] == ("mask" if row["mask"] == 1 else "no_mask")
            # The file keeps the source face's name, then the sample id.
            assert Path(path).name.startswith(Path(row["source_file"]).stem + "__")
            assert os.path.islink(path) and not os.path.isabs(os.readlink(path))
        image, _ = folder[0]
        assert image.size == (32, 32)


def test_copies_survive_moving_the_layout_and_other_attributes(cli, tiny, tmp_path):
    out = tmp_path / "by_state"
    assert cli(["export-layout", tiny, "--by", "mask_state", "--out", out, "--copy"]).exit_code == 0
    files = [p for p in (out / "train").rglob("*.jpg")] + [p for p in (out / "train").rglob("*.png")]
    assert files and not any(p.is_symlink() for p in files)
    assert {p.parent.name for p in files} == {"correct", "none"}
    moved = tmp_path / "elsewhere"
    out.rename(moved)
    assert all((moved / p.relative_to(out)).stat().st_size > 0 for p in files)

    result = export_layout(tiny, tmp_path / "by_gender", LayoutOptions(by="gender"))
    assert set(result.counts["train"]) <= {"male", "female"} and result.files == len(read_metadata(tiny))


def test_refuses_non_empty_out_unknown_by_and_paths_outside_the_dataset(cli, tiny, tmp_path):
    out = tmp_path / "layout"
    assert cli(["export-layout", tiny, "--out", out]).exit_code == 0
    again = cli(["export-layout", tiny, "--out", out])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert cli(["export-layout", tiny, "--out", out, "--overwrite"]).exit_code == 0
    bad_by = cli(["export-layout", tiny, "--by", "colour", "--out", tmp_path / "x"])
    assert bad_by.exit_code == 2 and "expected one of" in bad_by.output

    evil = tmp_path / "evil"
    make_tiny_dataset(evil, n_per_split=2, image_size=32)
    table = read_metadata(evil)
    table.loc[0, "file_name"] = "../../etc/passwd"
    write_metadata(evil, table)
    with pytest.raises(LayoutError, match="outside the dataset"):
        export_layout(evil, tmp_path / "evil_out")
