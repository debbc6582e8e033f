"""Generation throughput and memory: images/s cold (landmarks detected) and warm (cached),
peak resident memory of the whole process tree, detection and fit-failure rates.

    python benchmarks/generate.py --scenario mixed_50 --source utkface:../shared/data/utkface-dev -n 3000

Each phase runs `synthface generate` in a fresh process; memory is sampled from /proc every
50 ms over the parent and all its workers: PSS summed (the real footprint) and RSS summed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def process_tree(root_pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    tree, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def tree_memory_bytes(root_pid: int) -> tuple[int, int]:
    """(RSS, PSS) summed over the tree. PSS splits shared pages between the processes that map
    them, so its sum is the tree's real footprint; the RSS sum counts shared libraries per process."""
    rss = pss = 0
    for pid in process_tree(root_pid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, pss


def run_phase(command: list[str], env: dict) -> tuple[float, int, int]:
    """Wall seconds, peak tree RSS and peak tree PSS of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_rss = peak_pss = 0

    def sample() -> None:
        nonlocal peak_rss, peak_pss
        while process.poll() is None:
            rss, pss = tree_memory_bytes(process.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = process.communicate()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"generate failed:\n{errors}")
    return time.perf_counter() - start, peak_rss, peak_pss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="mixed_50")
    parser.add_argument("--source", default=None, help="KIND:PATH face pool (default: the scenario's own)")
    parser.add_argument("-n", "--n-samples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--skip-per-type", action="store_true", help="Skip the per-mask-type fit timings.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="synthface-bench-"))
    env = dict(os.environ, SYNTHFACE_CACHE=str(work / "cache"))
    base = [sys.executable, "-m", "synthface.cli", "generate", args.scenario, "-n", str(args.n_samples), "--quiet",
            "--workers", str(args.workers)]
    if args.source:
        base += ["--source", args.source]
    cold_s, cold_rss, cold_pss = run_phase(base + ["--out", str(work / "cold")], env)
    warm_s, warm_rss, warm_pss = run_phase(base + ["--out", str(work / "warm")], env)
    report = json.loads((work / "warm" / "report.json").read_text())
    cold_timing = json.loads((work / "cold" / ".synthface-run" / "timing.json").read_text())
    warm_timing = json.loads((work / "warm" / ".synthface-run" / "timing.json").read_text())
    pool = report["pool"]
    images = report["written"]["images"]
    rows = [
        ("scenario", args.scenario),
        ("source", args.source or "scenario's own"),
        ("samples / images written", f"{report['written']['samples']} / {images}"),
        ("pool inputs", pool["inputs"]),
        ("faces detected", f"{pool['faces_detected']} ({pool['faces_detected'] / max(1, pool['inputs']):.1%} of inputs)"),
        ("usable faces", pool["usable_faces"]),
        ("skipped by reason", json.dumps(pool["skipped_by_reason"])),
        ("fit failures", f"{report['fit_failures']['count']} ({report['fit_failures']['count'] / max(1, report['written']['samples']):.2%} of samples)"),
        ("workers", warm_timing["workers"]),
        ("cold: landmark stage s (faces/s)", f"{cold_timing['pool_seconds']:.1f} ({pool['inputs'] / cold_timing['pool_seconds']:.1f})"),
        ("cold: whole command s / images/s", f"{cold_s:.1f} / {images / cold_s:.1f}"),
        ("warm: whole command s / images/s", f"{warm_s:.1f} / {images / warm_s:.1f}"),
        ("warm: render stage images/s", f"{warm_timing['rendered_images'] / warm_timing['render_seconds']:.1f}"),
        ("peak memory cold / warm, PSS (MB, process tree)", f"{cold_pss / 2**20:.0f} / {warm_pss / 2**20:.0f}"),
        ("peak memory cold / warm, RSS sum (MB, counts shared libs per process)", f"{cold_rss / 2**20:.0f} / {warm_rss / 2**20:.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if not args.skip_per_type:
        print_per_type(args.source)
    print(f"(outputs in {work}; delete when done)")


def print_per_type(source: str | None, size: int = 224) -> None:
    """Per-mask-type fit time at 224 px (benchmarks/masks.py) on faces of the pool, or the demo faces."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from masks import load_pool_faces, per_type_render_ms

    kind, _, path = (source or "").partition(":")
    if kind == "utkface" and path:
        faces, where = load_pool_faces(Path(path).expanduser(), size, 40), f"40 faces of {path}"
    else:
        from synthface.maskfit.demo import demo_faces

        faces, where = [(face.image, face.points) for face in demo_faces(size)], "the demo faces"
    print(f"\nmask fit per type at {size} px on {where} (median wall / cpu ms)")
    for name, row in per_type_render_ms(faces, repeats=3).items():
        print(f"  {name:<18} {row['median_ms']:6.2f} / {row['cpu_median_ms']:5.2f}")


if __name__ == "__main__":
    main()
