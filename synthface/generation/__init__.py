"""Generation: a scenario and face pools in, a balanced masked-face dataset out.

The modules, in the order data flows through them (`run.py` drives the stages):

1. Pool stage: `sources/` reads each pool (UTKFace, FairFace, a table, the demo; mirrored first
   when it is at a URL) into labelled face records; `pool.py` finds their landmarks
   (synthface.landmarks, cached per user or in a shared `landmark_table.py`) and keeps the
   usable faces.
2. Plan stage: `balance.py` turns the scenario's targets into quotas; `plan.py` decides every
   sample (face, mask, wear, light, split, seed) and writes the plan table.
3. Render stage, one sample at a time in the workers: `align.py` frames the face, `capture.py`
   estimates the photo's blur, noise and colour, `foreground.py` finds objects in front of the
   mouth, synthface.maskfit fits and draws the mask, `lighting.py` relights and degrades the
   image; `render.py` puts these together.
4. Write: images and rows go through synthface.dataset (the format training reads) and
   synthface.formats (webdataset/parquet packing); `report.py` and `preview.py` write the
   balance report and contact sheet.
5. Running it: `executors.py` (local process pool or Ray actors, built on `workers.py`),
   `runlock.py` (one writer per output), `run.py` (stages, journal, resume, merge) and `cli.py`
   (`synthface generate`, `detect`, `merge`).
"""
