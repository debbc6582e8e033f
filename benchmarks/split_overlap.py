"""How many faces of one scenario's test split are in another scenario's training split, when
every bundled scenario is planned from the same pool (issue 10.2: `compare` then scores a
model on faces it trained on).

    python benchmarks/split_overlap.py --source utkface:/work/shared/data/utkface-dev -n 2000

Plans only (a dry run: landmarks, cached after the first run, and the plan; nothing is rendered).
For each ordered pair (train scenario A, evaluated scenario B) it prints the share of B's test
faces (source faces used by B's test samples) that A uses in its train split, and the same for
B's test samples; then the worst pair. Run it with PYTHONPATH pointing at an older checkout to
measure that version (the API it uses has not changed).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path


def split_faces(plan) -> dict[str, set[str]]:
    """Split -> source ids of the faces the plan's samples use there."""
    faces: dict[str, set[str]] = {}
    for spec in plan.samples:
        faces.setdefault(spec.split, set()).add(plan.faces[spec.face].record.source_id)
    return faces


def main() -> None:
    from synthface.generation.run import GenerateOptions, run_generate
    from synthface.generation.sources.base import parse_source_arg
    from synthface.maskfit import MaskLibrary
    from synthface.paths import bundled_dir
    from synthface.scenario import load_scenario

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="utkface:/work/shared/data/utkface-dev", help="KIND:PATH of the pool")
    parser.add_argument("-n", "--n-samples", type=int, default=2000, help="samples per scenario")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    library = MaskLibrary.load()
    source = parse_source_arg(args.source).model_dump(mode="json", exclude_none=True)
    plans = {}
    for path in sorted(bundled_dir("scenarios").glob("*.yaml")):
        scenario, _ = load_scenario(path, {"sources": [source], "n_samples": args.n_samples}, mask_library=library)
        result = run_generate(scenario, GenerateOptions(out=Path("unused"), workers=args.workers, dry_run=True, quiet=True), library)
        plans[scenario.name] = result.plan
        counts = {s: sum(spec.split == s for spec in result.plan.samples) for s in ("train", "val", "test")}
        print(f"{scenario.name:14s} samples train/val/test {counts['train']}/{counts['val']}/{counts['test']}")

    faces = {name: split_faces(plan) for name, plan in plans.items()}
    print("\nshare of B's test faces (samples) that A trains on")
    print(f"{'A (train)':14s} {'B (test)':14s} {'faces':>8s} {'samples':>8s}")
    worst = (0.0, "", "")
    for train_name, test_name in itertools.permutations(plans, 2):
        seen = faces[train_name].get("train", set())
        test_faces = faces[test_name].get("test", set())
        test_samples = [plans[test_name].faces[s.face].record.source_id for s in plans[test_name].samples if s.split == "test"]
        face_share = len(test_faces & seen) / len(test_faces) if test_faces else 0.0
        sample_share = sum(face in seen for face in test_samples) / len(test_samples) if test_samples else 0.0
        print(f"{train_name:14s} {test_name:14s} {face_share:8.1%} {sample_share:8.1%}")
        worst = max(worst, (face_share, train_name, test_name))
    if worst[0] > 0:
        print(f"\nworst: {worst[0]:.1%} of {worst[2]}'s test faces are in {worst[1]}'s train split")
    else:
        print("\nno scenario's test faces are in another scenario's train split")


if __name__ == "__main__":
    main()
