"""Generation throughput and memory: images/s cold (landmarks detected) and warm (cached),
peak resident memory of the whole process tree and of each worker, detection and fit-failure rates.

    python benchmarks/generate.py --scenario mixed_50 --source utkface:../shared/data/utkface-dev -n 3000
    python benchmarks/generate.py --source utkface:../shared/data/utkface-dev -n 2000 --executor ray --skip-per-type

Each phase runs `synthface generate` in a fresh process; memory is sampled from /proc every
50 ms over the parent and all its workers: PSS summed (the real footprint) and RSS summed, and
the largest PSS / RSS of any one worker (pool process or Ray actor). With `--executor ray` the
same phases run on the local executor and on Ray (a Ray instance the run starts, `--workers`
CPUs), and the table compares them: images/s, Ray's overhead, and whether the bytes are the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
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


def process_memory_bytes(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process; (0, 0) once it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


def is_worker(pid: int) -> bool:
    """A render/detection worker: a spawned pool process or a synthface Ray actor (not Ray's own daemons)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ")
    except OSError:
        return False
    return command.startswith(b"ray::_RayWorker") or b"spawn_main" in command


@dataclass
class Phase:
    seconds: float
    tree_rss: int  # peak of the summed RSS of the process tree
    tree_pss: int  # peak of the summed PSS
    worker_rss: int  # peak RSS of any one worker
    worker_pss: int  # peak PSS of any one worker


def run_phase(command: list[str], env: dict) -> Phase:
    """Wall seconds and peak memory (tree and per worker) of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = Phase(0.0, 0, 0, 0, 0)

    def sample() -> None:
        while process.poll() is None:
            rss = pss = 0
            for pid in process_tree(process.pid):
                one_rss, one_pss = process_memory_bytes(pid)
                rss, pss = rss + one_rss, pss + one_pss
                if is_worker(pid):
                    peak.worker_rss, peak.worker_pss = max(peak.worker_rss, one_rss), max(peak.worker_pss, one_pss)
            peak.tree_rss, peak.tree_pss = max(peak.tree_rss, rss), max(peak.tree_pss, pss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = process.communicate()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"generate failed:\n{errors}")
    peak.seconds = time.perf_counter() - start
    return peak


def dataset_digest(out: Path) -> str:
    """One hash over the tables and every image and occlusion map, to compare two runs' bytes."""
    digest = hashlib.sha256()
    for path in [out / "metadata.csv", out / "samples.parquet", *sorted((out / "images").glob("*")), *sorted((out / "occlusion").glob("*"))]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def mb(value: int) -> str:
    return f"{value / 2**20:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="mixed_50")
    parser.add_argument("--source", default=None, help="KIND:PATH face pool (default: the scenario's own)")
    parser.add_argument("-n", "--n-samples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="ray: run every phase on the local executor and on Ray, and compare")
    parser.add_argument("--skip-per-type", action="store_true", help="Skip the per-mask-type fit timings.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="synthface-bench-"))
    base = [sys.executable, "-m", "synthface.cli", "generate", args.scenario, "-n", str(args.n_samples), "--quiet",
            "--workers", str(args.workers)]
    if args.source:
        base += ["--source", args.source]
    executors = ("local", "ray") if args.executor == "ray" else ("local",)
    phases: dict[tuple[str, str], Phase] = {}
    for executor in executors:
        env = dict(os.environ, SYNTHFACE_CACHE=str(work / f"cache-{executor}"))  # each executor detects the pool itself once
        for phase in ("cold", "warm"):
            phases[executor, phase] = run_phase(base + ["--executor", executor, "--out", str(work / f"{executor}-{phase}")], env)
    report = json.loads((work / "local-warm" / "report.json").read_text())
    timing = {key: json.loads((work / f"{key[0]}-{key[1]}" / ".synthface-run" / "timing.json").read_text()) for key in phases}
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
        ("workers", timing["local", "warm"]["workers"]),
    ]
    for executor in executors:
        cold, warm = phases[executor, "cold"], phases[executor, "warm"]
        cold_timing, warm_timing = timing[executor, "cold"], timing[executor, "warm"]
        rows += [
            (f"{executor}: cold landmark stage s (faces/s)", f"{cold_timing['pool_seconds']:.1f} ({pool['inputs'] / cold_timing['pool_seconds']:.1f})"),
            (f"{executor}: cold whole command s / images/s", f"{cold.seconds:.1f} / {images / cold.seconds:.1f}"),
            (f"{executor}: warm whole command s / images/s", f"{warm.seconds:.1f} / {images / warm.seconds:.1f}"),
            (f"{executor}: warm render stage images/s", f"{warm_timing['rendered_images'] / warm_timing['render_seconds']:.1f}"),
            (f"{executor}: peak memory cold / warm, PSS (MB, process tree)", f"{mb(cold.tree_pss)} / {mb(warm.tree_pss)}"),
            (f"{executor}: peak memory cold / warm, RSS sum (MB, counts shared libs per process)", f"{mb(cold.tree_rss)} / {mb(warm.tree_rss)}"),
            (f"{executor}: peak memory of one worker cold / warm, PSS (MB)", f"{mb(cold.worker_pss)} / {mb(warm.worker_pss)}"),
            (f"{executor}: peak memory of one worker cold / warm, RSS (MB)", f"{mb(cold.worker_rss)} / {mb(warm.worker_rss)}"),
        ]
    if args.executor == "ray":
        def render_rate(executor: str) -> float:
            return timing[executor, "warm"]["rendered_images"] / timing[executor, "warm"]["render_seconds"]

        same = dataset_digest(work / "local-warm") == dataset_digest(work / "ray-warm")
        rows += [
            ("ray overhead, warm render stage (local images/s / ray images/s - 1)", f"{render_rate('local') / render_rate('ray') - 1:+.1%}"),
            ("ray overhead, warm whole command (ray s / local s - 1)",
             f"{phases['ray', 'warm'].seconds / phases['local', 'warm'].seconds - 1:+.1%}"),
            ("ray overhead, cold landmark stage (ray s / local s - 1)",
             f"{timing['ray', 'cold']['pool_seconds'] / timing['local', 'cold']['pool_seconds'] - 1:+.1%}"),
            ("same bytes local vs ray (tables, images, occlusion maps)", "yes" if same else "NO"),
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
