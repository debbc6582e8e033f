"""Run a scenario: pool -> plan -> render (worker pool) -> metadata, report, preview.

Interruption safety: each rendered sample's image is written atomically, then its metadata
row is appended to a journal (`.synthface-run/rows.jsonl`). `resume=True` skips samples
already journaled (with their files present). The metadata table is written only at the end,
atomically, from the journal, so a killed run never leaves a table that claims missing images.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from synthface.dataset import (
    COLUMNS,
    IMAGES_DIR,
    METADATA_CSV,
    METADATA_PARQUET,
    OCCLUSION_DIR,
    SKIPPED_PARQUET,
    TWIN_SUFFIX,
    atomic_write_bytes,
    remove_staged_leftovers,
    typed_table,
    write_metadata,
)
from synthface.errors import UserError
from synthface.formats import DEFAULT_PACK_SIZE
from synthface.generation.executors import Executor, WorkerJob, make_executor
from synthface.generation.landmark_table import LandmarkTable
from synthface.generation.plan import PLAN_FILE, Plan, PoolFace, SampleSpec, build_plan, plan_bytes, shard
from synthface.generation.pool import PoolReport, build_pool
from synthface.generation.render import PoolLandmarks
from synthface.generation.runlock import LOCK_FILE, check_not_being_written, output_lock
from synthface.landmarks import LandmarkCache, resolve_model_path
from synthface.paths import UnsafePathError, inside
from synthface.progress import progress_bar
from synthface.scenario import Scenario, scenario_to_yaml

RUN_DIR = ".synthface-run"
JOURNAL = "rows.jsonl"
RUN_INFO = "run.json"
TIMING = "timing.json"  # stage timings of the last run (kept out of report.json, which is deterministic)
OUTPUT_FILES = ("scenario.yaml", "report.json", "report.md", "preview.jpg", SKIPPED_PARQUET)  # besides the metadata and folders


class GenerateError(UserError, RuntimeError):
    """The run cannot start or continue; the message says what to do."""


@dataclass
class GenerateOptions:
    out: Path | str  # a folder, or an fsspec URL (s3://...): then written in `staging` and uploaded when finished
    workers: int = 0  # 0 = all cores
    dry_run: bool = False
    plan_only: bool = False  # detect and plan, write OUT/.synthface-run/plan.parquet and stop (render later with resume)
    resume: bool = False
    overwrite: bool = False
    shard: tuple[int, int] | None = None  # (i, n), 1-based
    mask_dirs: tuple[Path, ...] = ()
    landmarker: Path | None = None
    cache_dir: Path | None = None
    quiet: bool = False
    output_format: str = "folder"  # folder / webdataset / parquet (synthface.formats)
    pack_size: str = DEFAULT_PACK_SIZE  # samples or bytes per packed file, e.g. "1000" or "500MB"
    executor: str = "local"  # where detection and rendering run: "local" (process pool) or "ray" (synthface.generation.executors)
    ray_address: str | None = None  # --executor ray: "auto", "ray://HOST:PORT", or None for a Ray instance of this run
    landmark_table: Path | None = None  # a shared landmark table (synthface detect --cache DIR) instead of the per-user cache
    staging: Path | None = None  # --out URL: the local folder written before the upload (default: one in the cache per URL)


@dataclass
class GenerateResult:
    plan: Plan
    pool_report: PoolReport
    report: dict
    out: Path | None
    rendered: int = 0
    reused: int = 0
    failures: list[dict] = field(default_factory=list)
    url: str | None = None  # where the dataset was uploaded, for an --out URL (`out` is then its staging folder)

    @property
    def location(self) -> str:
        """Where the dataset is, as the user named it."""
        return self.url or str(self.out)


def run_generate(scenario: Scenario, options: GenerateOptions, library=None) -> GenerateResult:
    """Build the plan and, unless dry_run, render it into options.out.

    `library`: the mask library already loaded from options.mask_dirs (the CLI loads it to
    validate the scenario); loaded here when not given. A run that writes holds the output's
    lock from the start (before the pool stage), so a second run on the same --out stops at once.
    An --out URL is written in a local staging folder (holding its lock) and uploaded at the end.
    """
    if options.dry_run:
        return _run_generate(scenario, options, library)
    url, out = staged_location(options.out, options.staging)
    options = dataclasses.replace(options, out=out)
    # A folder that is not a synthface run's is refused before the pool stage and without leaving a lock file in
    # it; a synthface folder goes on to its lock (a run writing it is named) and then to the same refusal.
    if has_outputs(out) and not (options.resume or options.overwrite) and not (out / RUN_DIR / LOCK_FILE).exists():
        what = f"{url}: its staging folder {out} holds a run that was not uploaded" if url else f"{out} is not empty"
        raise GenerateError(f"{what}: pass --resume to continue that run or --overwrite to start again")
    with output_lock(out, RUN_DIR, "generate"):
        if url is not None:
            check_remote_output(url, out, options.resume, options.overwrite, options.quiet)
        result = _run_generate(scenario, options, library)
        if url is not None:
            upload_output(out, url, options.quiet)
            result.url = url
        return result


# --- outputs at a URL (synthface.storage): staged locally, uploaded when finished ---------------
def staged_location(out: Path | str, staging: Path | None = None) -> tuple[str | None, Path]:
    """(URL, local folder) of an output: for a URL, the folder it is written in before the
    upload (`staging`, or one in the cache for that URL); for a path or file:// URL, (None, it)."""
    from synthface import storage

    local = storage.local_path(out)
    if local is not None:
        return None, local
    return str(out), Path(staging) if staging else storage.staging_folder(str(out))


def check_remote_output(url: str, staging: Path, resume: bool, overwrite: bool, quiet: bool) -> None:
    """Refuse a non-empty URL without --resume/--overwrite; on --resume with no local staging
    (another machine, a cleaned cache), fetch the run from the URL to continue it."""
    from synthface import storage

    remote = storage.remote_names(url)
    if remote and not (resume or overwrite):
        raise GenerateError(f"{url} is not empty: pass --resume to continue that run or --overwrite to start again")
    if remote and resume and not has_outputs(staging):
        storage.mirror(url, "the run to resume", quiet, target=staging)


def written_by_synthface(name: str) -> bool:
    """`name` (relative to an output) is a file a run or merge writes, so a later upload may replace or remove it."""
    from synthface.formats import DATA_FILE

    top = name.split("/", 1)[0]
    return top in (METADATA_PARQUET, METADATA_CSV, *OUTPUT_FILES, IMAGES_DIR, OCCLUSION_DIR, RUN_DIR) or bool(DATA_FILE.match(top))


def upload_output(out: Path, url: str, quiet: bool) -> None:
    """Upload a finished output folder to `url`, the metadata table last (it marks a finished dataset);
    what an earlier run of it left there and this one did not write is removed."""
    from synthface import storage

    local_only = {f"{RUN_DIR}/{LOCK_FILE}", storage.MANIFEST}
    storage.upload(out, url, last=(METADATA_CSV, METADATA_PARQUET), skip=local_only.__contains__,
                   owned=written_by_synthface, quiet=quiet)


def _run_generate(scenario: Scenario, options: GenerateOptions, library=None) -> GenerateResult:
    from synthface import formats

    formats.get_format(options.output_format)  # a typo fails before any detection work
    formats.parse_pack_size(options.pack_size)
    started = time.perf_counter()
    model_path = resolve_model_path(options.landmarker)
    cache = LandmarkTable(options.landmark_table, model_path) if options.landmark_table else LandmarkCache(options.cache_dir, model_path)
    executor = make_executor(options.executor, options.workers, options.ray_address)
    try:
        return _run_stages(scenario, options, library, executor, cache, model_path, started, time.perf_counter() - started)
    finally:
        executor.close()


def _run_stages(scenario: Scenario, options: GenerateOptions, library, executor: Executor, cache: LandmarkCache | LandmarkTable,
                model_path: Path, started: float, executor_seconds: float) -> GenerateResult:
    from synthface import formats
    from synthface.generation.report import build_report, write_report, write_skipped_table
    from synthface.maskfit import MaskLibrary

    pack_size = formats.parse_pack_size(options.pack_size)
    if not (options.dry_run or options.plan_only):
        # The render workers start now: they import and set up while this process reads the pool and plans.
        executor.start(render_job(scenario, options.mask_dirs, options.out),
                       scenario.n_samples // options.shard[1] if options.shard else scenario.n_samples)
    pool_started = time.perf_counter()
    library = library or MaskLibrary.load(options.mask_dirs)
    faces, landmarks, pool_report = build_pool(scenario, scenario.sources, cache, executor, model_path, options.quiet)
    if not faces:
        raise GenerateError(f"no usable face in the pool ({pool_report.n_inputs} inputs; reasons: {pool_report.reasons()})")
    pool_seconds = time.perf_counter() - pool_started
    plan = build_plan(scenario, faces, wear_styles_of={name: library.get(name).wear_styles for name in library.names()})
    if scenario.balance.on_shortfall == "error" or options.dry_run or options.plan_only:
        planned = build_report(scenario, plan, pool_report, None, [])
        shortfall = planned["shortfall"] if scenario.balance.on_shortfall == "error" else []
        if shortfall:
            worst = ", ".join(f"{s['stratum']} {s['achieved']}/{s['target']:.1f}" for s in shortfall[:5])
            raise GenerateError(f"the pool cannot meet the targets (on_shortfall: error): {len(shortfall)} strata short, e.g. {worst}")
        if options.dry_run:
            return GenerateResult(plan, pool_report, planned, None)

    samples = shard(plan.samples, *options.shard) if options.shard else plan.samples
    out = prepare_output(options, scenario, plan)
    # The plan stage's artifact: the whole plan (every shard's), one row per sample, fingerprint in its metadata.
    atomic_write_bytes(out / RUN_DIR / PLAN_FILE, plan_bytes(plan))
    if options.plan_only:
        return GenerateResult(plan, pool_report, planned, out)
    journal = out / RUN_DIR / JOURNAL
    # A finished packed run no longer has its staged images: its data files vouch for its samples.
    done, failures = read_journal(journal, out, formats.finished_packing(out, options.output_format))
    todo = [spec for spec in samples if spec.sample_id not in done]
    render_started = time.perf_counter()
    pool_landmarks = PoolLandmarks.save(out / RUN_DIR, landmarks)
    rendered = render_all(scenario, plan, library, options.mask_dirs, pool_landmarks, out, todo, executor, journal, failures, options.quiet)
    render_seconds = time.perf_counter() - render_started
    # A writer killed mid-file (SIGKILL, a lost Ray worker, an earlier run) leaves its temporary; this run holds the lock.
    for folder in (out, out / IMAGES_DIR, out / OCCLUSION_DIR, out / RUN_DIR):
        remove_staged_leftovers(folder)

    rows = [row for spec in samples for row in done.get(spec.sample_id, [])] + rendered
    table = finalise_table(rows)
    # Packed formats pack the staged images before the table is written: the table marks a finished dataset.
    formats.pack(out, table, options.output_format, pack_size, out / RUN_DIR, options.quiet)
    write_metadata(out, table)
    report = build_report(scenario, plan, pool_report, table, failures, shard=options.shard)
    write_skipped_table(out, pool_report)
    write_report(out, report)
    atomic_write_bytes(out / "scenario.yaml", scenario_to_yaml(scenario).encode())
    if scenario.preview_samples:
        from synthface.generation.preview import contact_sheet

        contact_sheet(out, table, scenario.preview_samples)
    formats.drop_staged(out, options.output_format)  # last: a kill before it leaves the staging for --resume
    timing = {"executor": executor.name, "workers": executor.workers, "executor_start_seconds": executor_seconds, "pool_seconds": pool_seconds, "render_seconds": render_seconds,
              "rendered_samples": len(todo),
              "rendered_images": len(rendered), "total_seconds": time.perf_counter() - started}
    atomic_write_bytes(out / RUN_DIR / TIMING, json.dumps(timing, indent=1).encode())
    return GenerateResult(plan, pool_report, report, out, rendered=len(todo), reused=len(samples) - len(todo), failures=failures)


def clear_outputs(out: Path) -> None:
    """Remove what a run or merge writes into `out` (written_by_synthface; and only that: --overwrite
    must not delete a user's other files if pointed at the wrong folder). Metadata goes first, so a
    reader never sees a table that lists deleted images. The lock file stays: this process holds it,
    and a new file in its place would let a second writer in."""
    for name in (METADATA_PARQUET, METADATA_CSV):
        (out / name).unlink(missing_ok=True)
    for entry in sorted(out.iterdir()) if out.is_dir() else ():
        if not written_by_synthface(entry.name):
            continue
        if entry.name == RUN_DIR and entry.is_dir():
            for inner in entry.iterdir():
                if inner.is_dir():
                    shutil.rmtree(inner, ignore_errors=True)
                elif inner.name != LOCK_FILE:
                    inner.unlink(missing_ok=True)
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def has_outputs(out: Path) -> bool:
    """`out` holds anything besides this run's own lock file."""
    if not out.is_dir():
        return False
    return any(entry.name != RUN_DIR or any(inner.name != LOCK_FILE for inner in entry.iterdir()) for entry in out.iterdir())


def prepare_output(options: GenerateOptions, scenario: Scenario, plan: Plan) -> Path:
    """Create or check the output folder; refuse to mix runs of different plans."""
    out = Path(options.out)
    info_file = out / RUN_DIR / RUN_INFO
    info = {"scenario": scenario.name, "plan": plan.fingerprint(), "shard": list(options.shard) if options.shard else None}
    started = has_outputs(out)
    if started and options.overwrite:
        clear_outputs(out)
    elif started and options.resume:
        if not info_file.exists():
            raise GenerateError(f"{out}: --resume given but this folder was not written by synthface generate")
        previous = json.loads(info_file.read_text())
        if previous != info:
            raise GenerateError(
                f"{out}: --resume refused: the folder holds another plan ({previous}); this run is {info}. "
                "Use the same scenario, seed, -n and --shard, or --overwrite."
            )
    elif started:
        raise GenerateError(f"{out} is not empty: pass --resume to continue that run or --overwrite to start again")
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(info_file, json.dumps(info).encode())
    return out


def _journaled_file(out: Path, relative: str) -> bool:
    """A journaled file exists inside `out` (a journal edited to point elsewhere is not trusted)."""
    try:
        return inside(out, relative).is_file()
    except UnsafePathError:
        return False


def read_journal(journal: Path, out: Path, packed=None) -> tuple[dict[str, list[dict]], list[dict]]:
    """Rows of finished samples whose files all exist (staged in `out`, or in the `packed` reader
    of a finished webdataset/parquet run), by sample_id; plus the fit failures seen."""
    def exists(relative: str) -> bool:
        return _journaled_file(out, relative) or (packed is not None and packed.has(relative))

    done: dict[str, list[dict]] = {}
    failures: list[dict] = []
    if not journal.exists():
        return done, failures
    for line in journal.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        failures.extend(entry.get("failures", []))
        rows = entry.get("rows", [])
        if rows and all(exists(r["file_name"]) and (not r["occlusion_file"] or exists(r["occlusion_file"])) for r in rows):
            done[entry["sample_id"]] = rows
    return done, failures


# --- render workers (what each worker of the executor runs) ------------------------------
_setup = None  # (scenario, mask library, output folder) of this worker
_context = None


def _init_worker(scenario_json: str, mask_dirs, out: str) -> None:
    global _setup, _context
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the pool
    # albumentations imports torch when it can (for ToTensorV2), which costs ~300 MB of private
    # memory per process; render workers never use torch, so keep it out of them.
    sys.modules.setdefault("torch", None)
    import cv2

    from synthface.maskfit import MaskLibrary

    cv2.setNumThreads(1)  # one process per core already
    _setup, _context = (Scenario.model_validate_json(scenario_json), MaskLibrary.load(mask_dirs), Path(out)), None


def _render(item: tuple[SampleSpec, dict[int, PoolFace]]):
    global _context
    from synthface.generation.render import PoolLandmarks, RenderContext, render_sample

    if _context is None:  # at the first task: workers may start before the pool's landmarks are saved (render_job)
        scenario, library, out = _setup
        # No list of the pool's faces here: each task brings the few it may use (see SamplesWithFaces).
        _context = RenderContext(scenario, {}, library, PoolLandmarks.open(out / RUN_DIR), out)
    spec, faces = item
    _context.faces = faces  # the faces cached by index in the context are the same faces: indices are the plan's
    return render_sample(_context, spec)


def render_job(scenario: Scenario, mask_dirs: tuple[Path, ...], out: Path) -> WorkerJob:
    """What each render worker runs: the set-up gets what a worker needs to build its own RenderContext (paths
    absolute, for workers started elsewhere). The pool's landmarks are opened at the first task, so the workers
    can be started (Executor.start) while the driver still reads the pool and plans."""
    return WorkerJob(_init_worker, (scenario.model_dump_json(), tuple(Path(d).absolute() for d in mask_dirs),
                                    str(Path(out).absolute())), _render)


class SamplesWithFaces(Sequence):
    """Render tasks: each sample with the pool faces it may use (its face and its alternates), so a
    worker's memory does not grow with the pool (the faces' records cost ~0.8 KB each in a worker,
    0.8 GB at a million faces). Built on demand, not held as a list."""

    def __init__(self, specs: list[SampleSpec], faces: list[PoolFace]):
        self.specs, self.faces = specs, faces

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        spec = self.specs[index]
        return spec, {face: self.faces[face] for face in (spec.face, *spec.alternates)}


def render_all(scenario: Scenario, plan: Plan, library, mask_dirs: tuple[Path, ...], landmarks, out: Path,
               todo: list[SampleSpec], executor: Executor, journal: Path, failures: list[dict], quiet: bool) -> list[dict]:
    """Render `todo` on `executor`, journaling each finished sample as it comes back; returns the new rows."""
    from synthface.generation.render import RenderContext, render_sample

    rows: list[dict] = []
    if not todo:
        return rows
    journal.parent.mkdir(parents=True, exist_ok=True)
    job = render_job(scenario, mask_dirs, out)
    in_process = {}

    def inline(item: tuple[SampleSpec, dict[int, PoolFace]]):
        if "context" not in in_process:
            in_process["context"] = RenderContext(scenario, plan.faces, library, landmarks, out)
        return render_sample(in_process["context"], item[0])

    # closing(): an error in this loop (a full disk) stops the workers now, not when the generator is collected.
    outcomes = closing(executor.map_unordered(job, SamplesWithFaces(todo, plan.faces), inline))
    with open(journal, "a") as log, progress_bar("rendering", len(todo), quiet) as advance, outcomes as results:
        for _, outcome in results:
            sample_id = plan.samples[outcome.index].sample_id
            log.write(json.dumps({"sample_id": sample_id, "rows": outcome.rows, "failures": outcome.failures}) + "\n")
            log.flush()
            rows.extend(outcome.rows)
            failures.extend(outcome.failures)
            advance()
    return rows


def finalise_table(rows: list[dict]) -> pd.DataFrame:
    """Rows in plan order (each sample before its twin), documented columns first, typed."""
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in COLUMNS.items()})
    table["_twin"] = table["sample_id"].str.endswith(TWIN_SUFFIX)
    table = table.sort_values(["plan_index", "_twin"], kind="stable").drop(columns=["_twin", "plan_index"])
    return typed_table(table[sorted(table.columns)])  # undocumented columns in name order


def merge_shards(shard_dirs: Sequence[Path | str], out: Path | str, overwrite: bool = False, output_format: str = "folder",
                 pack_size: str = DEFAULT_PACK_SIZE, quiet: bool = True) -> pd.DataFrame:
    """Join the outputs of `--shard i/n` runs of one plan (in any format) into one dataset at `out` (holding its lock).

    Shards and `out` may be URLs: shards are mirrored first; a URL `out` is merged in its staging
    folder and uploaded."""
    from synthface import storage

    url, target = staged_location(out)
    for location in shard_dirs:
        if (local := storage.local_path(location)) is not None:
            check_not_being_written(local, RUN_DIR, "shard")
    shards = [storage.mirror(str(location), f"shard {location}", quiet) for location in shard_dirs]
    with output_lock(target, RUN_DIR, "merge"):
        if url is not None and storage.remote_names(url) and not overwrite:
            raise GenerateError(f"{url} is not empty: pass --overwrite")
        # A URL's staging folder holds nothing the user could lose: an earlier merge, uploaded or not.
        table = _merge_into(shards, target, overwrite or url is not None, output_format, pack_size)
        if url is not None:
            upload_output(target, url, quiet)
        return table


def _merge_into(shard_dirs: list[Path], out: Path, overwrite: bool, output_format: str, pack_size: str) -> pd.DataFrame:
    from synthface import formats
    from synthface.generation.report import merge_reports, write_report

    formats.get_format(output_format)
    size = formats.parse_pack_size(pack_size)

    infos = []
    for directory in shard_dirs:
        info_file = Path(directory) / RUN_DIR / RUN_INFO
        if not (Path(directory) / METADATA_CSV).exists() or not info_file.exists():
            raise GenerateError(f"{directory}: not a finished synthface shard (no {METADATA_CSV} or run info)")
        infos.append(json.loads(info_file.read_text()))
    plans = {info["plan"] for info in infos}
    if len(plans) != 1:
        raise GenerateError(f"shards come from different plans ({sorted(plans)}); merge only shards of one scenario, seed and -n")
    counts = {info["shard"][1] if info["shard"] else 1 for info in infos}
    indices = sorted(info["shard"][0] for info in infos if info["shard"])
    if len(counts) != 1 or indices != list(range(1, counts.pop() + 1)):
        raise GenerateError(f"expected every shard 1..n exactly once, got {[info['shard'] for info in infos]}")
    if has_outputs(out):
        if not overwrite:
            raise GenerateError(f"{out} is not empty: pass --overwrite")
        clear_outputs(out)
    from synthface.dataset import read_metadata

    tables = []
    for directory in shard_dirs:
        table = read_metadata(Path(directory))
        reader = formats.open_dataset(Path(directory))  # packed shards are unpacked into the staging layout
        for column in ("file_name", "occlusion_file"):
            for relative in table[column].dropna():
                if relative:
                    # Shard metadata is data, not trusted paths: both ends must stay in their folders.
                    try:
                        source, target = inside(directory, relative), inside(out, relative)
                    except UnsafePathError as error:
                        raise GenerateError(f"{directory}: metadata lists {relative!r}, outside the shard: {error}") from None
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if isinstance(reader, formats.FolderReader):
                        shutil.copy2(source, target)
                    else:
                        atomic_write_bytes(target, reader.read(relative))
        tables.append(table)
    merged = pd.concat(tables, ignore_index=True)
    merged = merged.assign(_order=merged["sample_id"].str.replace(TWIN_SUFFIX, "", regex=False), _twin=merged["sample_id"].str.endswith(TWIN_SUFFIX))
    merged = merged.sort_values(["_order", "_twin"], kind="stable").drop(columns=["_order", "_twin"]).reset_index(drop=True)
    formats.pack(out, merged, output_format, size, out / RUN_DIR)
    write_metadata(out, merged)
    shutil.copy2(Path(shard_dirs[0]) / "scenario.yaml", out / "scenario.yaml")
    if (Path(shard_dirs[0]) / SKIPPED_PARQUET).exists():  # every shard scanned the whole pool: their tables are the same
        shutil.copy2(Path(shard_dirs[0]) / SKIPPED_PARQUET, out / SKIPPED_PARQUET)
    reports = [json.loads((Path(d) / "report.json").read_text()) for d in shard_dirs]
    write_report(out, merge_reports(reports, merged))
    from synthface.generation.preview import contact_sheet

    contact_sheet(out, merged, 36)
    formats.drop_staged(out, output_format)
    return merged
