"""Packed output formats on an existing folder dataset: packing time, bytes on disk and peak
memory per format, then what training sees: the reader's index time and random reads per second
(read + decode, one process), for the folder layout, webdataset shards and parquet files.

    python benchmarks/formats.py out/mixed_50 --pack-size 500MB --reads 2000

The dataset is hard-linked into a temporary folder first (the original is not touched). Each
packing runs in a fresh process, so its peak resident memory (ru_maxrss) is its own; the
"table only" line is the same process reading the table without packing, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASE = "--phase"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(root: Path, name: str, pack_size: str) -> dict:
    """In a fresh process: read the table, pack it (unless `name` is "table"), report time and peak memory."""
    from synthface import formats
    from synthface.dataset import read_metadata

    table = read_metadata(root)
    started = time.perf_counter()
    files = [] if name == "table" else formats.pack(root, table, name, formats.parse_pack_size(pack_size), root / ".synthface-run")
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(), "files": len(files),
            "bytes": sum(path.stat().st_size for path in files)}


def reads(root: Path, count: int, seed: int = 0) -> dict:
    """Index the dataset, then read and decode `count` images in a random order (what a shuffled epoch does)."""
    import cv2

    from synthface import formats
    from synthface.dataset import read_metadata
    from synthface.images import decode_image

    names = read_metadata(root)["file_name"].tolist()
    started = time.perf_counter()
    formats._readers.clear()
    reader = formats.open_dataset(root)
    index_seconds = time.perf_counter() - started
    order = random.Random(seed).choices(names, k=count)
    started = time.perf_counter()
    raw = sum(len(reader.read(name)) for name in order)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for name in order:
        decode_image(reader.read(name), cv2.IMREAD_COLOR, max_pixels=None)
    decode_seconds = time.perf_counter() - started
    return {"format": formats.detect(root).name, "index_s": index_seconds, "reads_per_s": count / read_seconds,
            "read_mb_per_s": raw / read_seconds / 1e6, "read_decode_per_s": count / decode_seconds}


def run_phase(root: Path, name: str, pack_size: str) -> dict:
    done = subprocess.run([sys.executable, __file__, PHASE, name, str(root), "--pack-size", pack_size],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a folder-format dataset (synthface generate without --format)")
    parser.add_argument("--pack-size", default="500MB")
    parser.add_argument("--reads", type=int, default=2000, help="random reads per format")
    parser.add_argument("--rows", type=int, default=0, help="use only the first N rows (0 = all): peak memory should not grow with N")
    parser.add_argument(PHASE, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.dataset, args.phase, args.pack_size)))
        return

    from synthface.dataset import read_metadata, write_metadata

    table = read_metadata(args.dataset)
    table = table.iloc[:args.rows] if args.rows else table
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "dataset"
        shutil.copytree(args.dataset, root, copy_function=os.link,
                        ignore=shutil.ignore_patterns(".synthface-run", "data-*", "metadata.csv", "samples.parquet"))
        write_metadata(root, table)
        folder_bytes = sum((root / name).stat().st_size for column in ("file_name", "occlusion_file")
                           for name in table[column].dropna() if name)
        print(f"{len(table)} images ({(~table['sample_id'].str.endswith('-unmasked')).sum()} samples), "
              f"{folder_bytes / 1e6:.1f} MB of image files; pack size {args.pack_size}")
        base = run_phase(root, "table", args.pack_size)
        print(f"table only: peak RSS {base['peak_rss_mb']:.0f} MB")
        print(f"folder: {json.dumps(reads(root, args.reads))}")
        for name in ("webdataset", "parquet"):
            packed = run_phase(root, name, args.pack_size)
            print(f"{name}: packed in {packed['seconds']:.2f} s ({len(table) / packed['seconds']:.0f} images/s), "
                  f"{packed['files']} files, {packed['bytes'] / 1e6:.1f} MB, peak RSS {packed['peak_rss_mb']:.0f} MB")
            print(f"{name}: {json.dumps(reads(root, args.reads))}")


if __name__ == "__main__":
    main()
