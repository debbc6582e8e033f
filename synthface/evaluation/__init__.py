"""Evaluation of trained models: metrics, fairness, occlusion robustness, plots and reports.

Module map (one job each):

- `metrics`     pure metric functions on numpy arrays (age regression, classification heads)
- `grouping`    the same metrics per group (fairness, occlusion splits) and the disparity across groups
- `robustness`  masked-vs-unmasked drop on `pair_id` twins with a bootstrap confidence interval
- `saliency`    where the model looks: attention and Grad-CAM mass on occluded pixels
- `inference`   runs a checkpoint over a dataset and returns the per-sample predictions table
- `plots`       matplotlib figures (PNG)
- `gallery`     faces with attention / Grad-CAM maps over them (correct and wrong predictions)
- `report`      metrics.json, predictions table, report.md
- `evaluate`, `compare`, `predict`, `export`, `efficiency`   what the CLI commands call
- `cli`         registers `synthface evaluate / compare / predict / export`
"""
