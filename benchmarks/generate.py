"""Generation throughput and memory: images/s cold (landmarks detected) and warm (cached),
peak resident memory of the whole process tree, detection and fit-failure rates.

    python benchmarks/generate.py --scenario mixed_50 --source utkface:../shared/data/utkface-dev -n 3000

Each phase runs `synthface generate` in a fresh process; memory is sampled from /proc every
50 ms over the parent and all its workers (summed), so the figure is the real footprint.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_phase(command: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and peak tree RSS of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, tree_rss_bytes(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = process.communicate()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"generate failed:\n{errors}")
    return time.perf_counter() - start, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="mixed_50")
    parser.add_argument("--source", default=None, help="KIND:PATH face pool (default: the scenario's own)")
    parser.add_argument("-n", "--n-samples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=None, help="(informational) the scenario's image_size is used")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="synthface-bench-"))
    env = dict(os.environ, SYNTHFACE_CACHE=str(work / "cache"))
    base = [sys.executable, "-m", "synthface.cli", "generate", args.scenario, "-n", str(args.n_samples), "--quiet",
            "--workers", str(args.workers)]
    if args.source:
        base += ["--source", args.source]
    cold_s, cold_peak = run_phase(base + ["--out", str(work / "cold")], env)
    warm_s, warm_peak = run_phase(base + ["--out", str(work / "warm")], env)
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
        ("peak RSS cold / warm (MB, whole process tree)", f"{cold_peak / 2**20:.0f} / {warm_peak / 2**20:.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"(outputs in {work}; delete when done)")


if __name__ == "__main__":
    main()
