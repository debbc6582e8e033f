"""Training of the occlusion-aware multi-task face model (OAMNet).

Modules, one job each: recipe (YAML schema), transforms (albumentations), data (dataset,
sampler, loaders), model (OAMNet), losses, metrics, checkpoint (save/resume/inference),
distributed (torchrun helpers), loop (the trainer) and cli (`synthface train`).
Import the submodules directly; this package imports nothing heavy on its own.
"""
