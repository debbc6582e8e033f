"""Print the markdown table of docs/training.md from the reports run.sh wrote.

Usage: python benchmarks/cpu_comparison/table.py WORK_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RUNS = ("paper", "no_attention", "gender_aware", "curriculum")


def main(work: Path) -> None:
    print("| recipe | split | n | age MAE | gender acc | race acc | mask acc | age MAE unmasked / masked "
          "| gender acc unmasked / masked | paired gender drop | paired age MAE drop | faces trained on |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in RUNS:
        for split in ("val", "test"):
            path = work / "reports" / run / split / "metrics.json"
            if not path.is_file():
                continue
            m = json.loads(path.read_text())
            h, groups = m["headline"], m["occlusion"]["mask"]["groups"]
            un, ma = groups.get("unmasked", {}), groups.get("masked", {})
            paired = m["paired"].get("metrics", {}) if m["paired"] else {}

            def drop(metric: str, scale: float = 1.0, digits: int = 1) -> str:
                entry = paired.get(metric)
                return f"{entry['drop'] * scale:.{digits}f}" if entry else "-"

            seen = m.get("trained_on") or {}
            print(f"| {run} | {split} | {m['n_samples']} | {h['age.mae']:.2f} | {h['gender.accuracy']:.3f} | "
                  f"{h['race.accuracy']:.3f} | {h['mask.accuracy']:.3f} | "
                  f"{un.get('age.mae', float('nan')):.2f} / {ma.get('age.mae', float('nan')):.2f} | "
                  f"{un.get('gender.accuracy', float('nan')):.3f} / {ma.get('gender.accuracy', float('nan')):.3f} | "
                  f"{drop('gender.accuracy', 100)} pts | {drop('age.mae', 1, 2)} y | "
                  f"{seen.get('faces', '-')} of {seen.get('of_faces', '-')} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
