"""Dataset output formats: the folder layout, webdataset tar shards and parquet files.

Rendering always goes through the folder layout (each image staged atomically and journaled,
see generate.py), so interrupted runs resume the same way in every format. A packed format then
packs the finished samples in plan order into numbered files (`data-000000.tar`, ...), one file
at a time (staged beside it, then renamed), and drops the staged images once the run is done.
The metadata table (metadata.csv, samples.parquet) is written in every format.

Readers give training and evaluation the bytes of any file the metadata lists (`file_name`,
`occlusion_file`) whatever the format; `detect` tells the format from the folder's contents.
See docs/dataset-format.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import tarfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthface.dataset import IMAGES_DIR, OCCLUSION_DIR, TWIN_SUFFIX, DatasetError, staged_file, typed_table
from synthface.errors import UserError
from synthface.paths import UnsafePathError, inside

PACK_JOURNAL = "packed.jsonl"  # in the run folder: which packed files are finished, for a resumed packing
PACK_VERSION = 1  # part of each packed file's journal digest: a change of layout repacks
ROW_GROUP_ROWS = 100  # parquet rows per row group: Hugging Face's own choice for image datasets
DEFAULT_PACK_SIZE = "500MB"
DATA_FILE = re.compile(r"^data-\d{6}\.(tar|parquet)$")


class FormatError(UserError, ValueError):
    """A format name or pack size a user typed is not valid."""


# --- pack size ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PackSize:
    """How much goes in one packed file: a number of samples, or about a number of bytes."""

    samples: int | None = None
    bytes: int | None = None

    def __str__(self) -> str:
        return f"{self.samples} samples" if self.samples else f"{self.bytes} bytes"


UNITS = {"kb": 10**3, "mb": 10**6, "gb": 10**9}


def parse_pack_size(text: str) -> PackSize:
    """'1000' -> 1000 samples per file; '500MB' (kB, MB, GB) -> about that many bytes per file."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG][bB])?\s*", str(text))
    if not match or float(match.group(1)) <= 0:
        raise FormatError(f"pack size {text!r}: expected a number of samples (e.g. 1000) or a size such as 500MB or 1GB")
    number, unit = match.groups()
    if unit is None:
        if "." in number:
            raise FormatError(f"pack size {text!r}: a number of samples is a whole number")
        return PackSize(samples=int(number))
    return PackSize(bytes=int(float(number) * UNITS[unit.lower()]))


# --- samples: a row and its unmasked twin travel together ----------------------------------------
def base_id(sample_id: str) -> str:
    return sample_id[: -len(TWIN_SUFFIX)] if sample_id.endswith(TWIN_SUFFIX) else sample_id


def sample_starts(table: pd.DataFrame) -> list[int]:
    """The first row of each sample, in table order, then len(table): a sample's row is followed by
    its twin's (finalise_table puts them next to each other), and a pair never spans two files."""
    bases = [base_id(str(sample_id)) for sample_id in table["sample_id"]]
    starts = [position for position, (base, before) in enumerate(zip(bases, [None, *bases])) if base != before]
    if len(starts) != len(set(bases)):
        raise DatasetError("metadata rows of one sample are not next to each other; cannot pack it")
    return [*starts, len(bases)]


CHUNK_ROWS = 1000  # rows turned into dicts at a time while packing (a whole table of them would not fit)


def records(table: pd.DataFrame) -> Iterator[dict]:
    """The rows of `table` as dicts, a chunk at a time."""
    for start in range(0, len(table), CHUNK_ROWS):
        yield from table.iloc[start:start + CHUNK_ROWS].to_dict("records")


def file_columns(row: dict) -> list[tuple[str, str]]:
    """(column, relative file) of the files a row lists: its image, then its occlusion map if any."""
    return [(column, str(row[column])) for column in ("file_name", "occlusion_file") if isinstance(row.get(column), str) and row[column]]


def row_json(row: dict) -> bytes:
    """A metadata row as JSON: missing values as null, numpy scalars as plain numbers (floats
    are written exactly, so the table reads back equal)."""
    def plain(value):
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return None
        return value

    return json.dumps({key: plain(value) for key, value in row.items()}, ensure_ascii=False, allow_nan=False).encode()


# --- the formats ---------------------------------------------------------------------------------
class Reader:
    """The bytes of the files a dataset's metadata lists, by their relative name."""

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def missing(self, names) -> list[str]:
        return [str(name) for name in names if not self.has(str(name))]


class FolderReader(Reader):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def has(self, name: str) -> bool:
        try:
            return inside(self.root, name).is_file()
        except UnsafePathError:
            return False

    def read(self, name: str) -> bytes:
        try:
            return inside(self.root, name).read_bytes()
        except (OSError, UnsafePathError) as error:
            raise DatasetError(f"{self.root}: cannot read {name} listed in the metadata ({error})") from None


class Format:
    """One output format: how its files are named, written and read."""

    name = ""
    suffix = ""  # of its data files; "" for the folder layout

    def data_files(self, root: Path) -> list[Path]:
        """This format's data files in `root`, in order."""
        if not self.suffix:
            return []
        return sorted(path for path in Path(root).glob(f"data-*{self.suffix}") if DATA_FILE.match(path.name))

    def prepare(self, table: pd.DataFrame):
        """What every file of one packing shares (parquet: the schema, from the whole table, so
        that all files agree), passed to write_file."""
        return None

    def write_file(self, handle, root: Path, rows: pd.DataFrame, shared) -> None:
        """Write the samples of `rows` (whole samples, in order) into the open file `handle`."""
        raise NotImplementedError

    def reader(self, root: Path) -> Reader:
        raise NotImplementedError

    def read_table(self, root: Path) -> pd.DataFrame:
        """The metadata table from the data files alone (what a reader without metadata.csv sees)."""
        raise NotImplementedError


class Folder(Format):
    name = "folder"

    def reader(self, root: Path) -> Reader:
        return FolderReader(root)

    def read_table(self, root: Path) -> pd.DataFrame:
        from synthface.dataset import read_metadata

        return read_metadata(root)


# webdataset: one sample per key, its files named <key>.<kind>; the key is the sample id with dots
# made underscores (webdataset splits a name at its first dot).
def sample_key(sample_id: str) -> str:
    return sample_id.replace(".", "_")


def tar_member(file_name: str) -> str:
    """The tar member that holds the file the metadata calls `file_name`:
    images/<id>.jpg -> <key>.jpg, images/<id>-unmasked.jpg -> <key>.unmasked.jpg,
    occlusion/<id>.png -> <key>.occlusion.png."""
    folder, _, base = file_name.rpartition("/")
    stem, _, extension = base.rpartition(".")
    if folder == OCCLUSION_DIR:
        return f"{sample_key(stem)}.occlusion.{extension}"
    if stem.endswith(TWIN_SUFFIX):
        return f"{sample_key(base_id(stem))}.unmasked.{extension}"
    return f"{sample_key(stem)}.{extension}"


def json_member(file_name: str) -> str:
    """The member of a row's JSON: beside its image (<key>.json, <key>.unmasked.json)."""
    return tar_member(file_name).rsplit(".", 1)[0] + ".json"


def tar_entry(name: str, size: int) -> tarfile.TarInfo:
    """A member header with nothing of the machine or the clock in it: same samples, same bytes."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class TarReader(Reader):
    """Random access into tar shards: an index of member offsets read from the headers (no data
    is read to build it), then a seek and a read per file. Handles open lazily per process, so
    the reader can be handed to DataLoader workers."""

    def __init__(self, files: list[Path]) -> None:
        self.files = [str(path) for path in files]
        self.index: dict[str, tuple[int, int, int]] = {}
        for number, path in enumerate(self.files):
            with tarfile.open(path, "r:") as tar:
                for member in tar:
                    if member.isfile() and not member.name.endswith(".json"):  # rows come from the metadata table
                        self.index[member.name] = (number, member.offset_data, member.size)
        self._handles: dict[int, object] = {}
        self._pid = os.getpid()

    def __getstate__(self):
        return {"files": self.files, "index": self.index}

    def __setstate__(self, state) -> None:
        self.__dict__.update(state, _handles={}, _pid=os.getpid())

    def has(self, name: str) -> bool:
        return tar_member(name) in self.index

    def read(self, name: str) -> bytes:
        try:
            number, offset, size = self.index[tar_member(name)]
        except KeyError:
            raise DatasetError(f"{name} is listed in the metadata but in none of the tar shards") from None
        if self._pid != os.getpid():  # a forked worker: never share a file position with the parent
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(number)
        if handle is None:
            handle = self._handles[number] = open(self.files[number], "rb")  # noqa: SIM115 - kept open for the reader's life
        handle.seek(offset)
        return handle.read(size)


class WebDataset(Format):
    name = "webdataset"
    suffix = ".tar"

    def write_file(self, handle, root: Path, rows: pd.DataFrame, shared) -> None:
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for row in records(rows):
                for _, name in file_columns(row):
                    data = inside(root, name).read_bytes()
                    tar.addfile(tar_entry(tar_member(name), len(data)), io.BytesIO(data))
                data = row_json(row)
                tar.addfile(tar_entry(json_member(row["file_name"]), len(data)), io.BytesIO(data))

    def reader(self, root: Path) -> Reader:
        return TarReader(self.data_files(root))

    def read_table(self, root: Path) -> pd.DataFrame:
        rows = []
        for path in self.data_files(root):
            with tarfile.open(path, "r:") as tar:
                for member in tar:
                    if member.name.endswith(".json"):
                        rows.append(json.loads(tar.extractfile(member).read()))
        return typed_table(pd.DataFrame(rows))


def image_type():
    """Hugging Face's Image feature as arrow stores it."""
    import pyarrow as pa

    return pa.struct([("bytes", pa.binary()), ("path", pa.string())])


class ParquetReader(Reader):
    """Random access into parquet files: an index of (file, row group, row) per listed file, then
    one row group's image column read per miss (a few kept, since nearby rows are often asked for
    together). Parquet has no finer random access: a shuffled read costs a row group (100 images)."""

    def __init__(self, files: list[Path]) -> None:
        import pyarrow.parquet as pq

        self.files = [str(path) for path in files]
        self.index: dict[str, tuple[int, int, int, str]] = {}
        for number, path in enumerate(self.files):
            parquet = pq.ParquetFile(path)
            for group in range(parquet.num_row_groups):
                names = parquet.read_row_group(group, columns=["file_name", "occlusion_file"]).to_pydict()
                for row, (image, occlusion) in enumerate(zip(names["file_name"], names["occlusion_file"])):
                    self.index[image] = (number, group, row, "image")
                    if occlusion:
                        self.index[occlusion] = (number, group, row, "occlusion")
        self._cache: OrderedDict = OrderedDict()
        self._opened: dict = {}  # file number -> ParquetFile (its footer parsed once)
        self._pid = os.getpid()

    def __getstate__(self):
        return {"files": self.files, "index": self.index}

    def __setstate__(self, state) -> None:
        self.__dict__.update(state, _cache=OrderedDict(), _opened={}, _pid=os.getpid())

    def has(self, name: str) -> bool:
        return name in self.index

    def read(self, name: str) -> bytes:
        import pyarrow.parquet as pq

        try:
            number, group, row, column = self.index[name]
        except KeyError:
            raise DatasetError(f"{name} is listed in the metadata but in none of the parquet files") from None
        key = (number, group, column)
        if self._pid != os.getpid():  # a forked worker opens its own files
            self._opened, self._cache, self._pid = {}, OrderedDict(), os.getpid()
        values = self._cache.get(key)
        if values is None:
            if number not in self._opened:
                self._opened[number] = pq.ParquetFile(self.files[number])
            values = self._opened[number].read_row_group(group, columns=[column]).column(0).combine_chunks().field("bytes")
            self._cache[key] = values
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return values[row].as_py()


class Parquet(Format):
    name = "parquet"
    suffix = ".parquet"

    def prepare(self, table: pd.DataFrame):
        return self.schema(table)

    def schema(self, table: pd.DataFrame):
        """The metadata columns (typed as pandas writes them), then `image` and `occlusion` as
        Hugging Face Image features (struct<bytes, path>, named in the schema's metadata)."""
        import pyarrow as pa

        schema = pa.Schema.from_pandas(table, preserve_index=False)
        schema = schema.append(pa.field("image", image_type())).append(pa.field("occlusion", image_type()))
        features = {"info": {"features": {"image": {"_type": "Image"}, "occlusion": {"_type": "Image"}}}}
        return schema.with_metadata({**(schema.metadata or {}), b"huggingface": json.dumps(features).encode()})

    def write_file(self, handle, root: Path, rows: pd.DataFrame, shared) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = shared
        metadata_columns = list(rows.columns)
        metadata_schema = pa.schema([schema.field(name) for name in metadata_columns])
        # Images are JPEG/PNG already: no compression, dictionary or statistics for them.
        with pq.ParquetWriter(handle, schema, compression={name: "zstd" for name in metadata_columns} | {"image": "none", "occlusion": "none"},
                              use_dictionary=metadata_columns, write_statistics=metadata_columns) as writer:
            for start in range(0, len(rows), ROW_GROUP_ROWS):
                part = rows.iloc[start:start + ROW_GROUP_ROWS]
                images, occlusions = [], []
                for row in part.to_dict("records"):
                    images.append({"bytes": inside(root, row["file_name"]).read_bytes(), "path": row["file_name"]})
                    occlusion = row.get("occlusion_file")
                    occlusions.append({"bytes": inside(root, occlusion).read_bytes(), "path": occlusion}
                                      if isinstance(occlusion, str) and occlusion else None)
                columns = pa.Table.from_pandas(part, schema=metadata_schema, preserve_index=False)
                batch = columns.append_column(schema.field("image"), pa.array(images, image_type()))
                batch = batch.append_column(schema.field("occlusion"), pa.array(occlusions, image_type()))
                writer.write_table(batch.replace_schema_metadata(schema.metadata))

    def reader(self, root: Path) -> Reader:
        return ParquetReader(self.data_files(root))

    def read_table(self, root: Path) -> pd.DataFrame:
        import pyarrow.parquet as pq

        files = self.data_files(root)
        if not files:
            return pd.DataFrame()
        columns = [name for name in pq.read_schema(files[0]).names if name not in ("image", "occlusion")]
        return typed_table(pd.concat([pq.read_table(path, columns=columns).to_pandas() for path in files], ignore_index=True))


FOLDER, WEBDATASET, PARQUET = Folder(), WebDataset(), Parquet()
FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (FOLDER, WEBDATASET, PARQUET)}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; expected one of {list(FORMATS)}") from None


def detect(root: Path) -> Format:
    """The format of a dataset folder, from its data files: tar shards, parquet files, or neither (folder)."""
    found = [fmt for fmt in (WEBDATASET, PARQUET) if fmt.data_files(root)]
    if len(found) > 1:
        raise DatasetError(f"{root}: holds both webdataset and parquet data files; keep one format per folder")
    return found[0] if found else FOLDER


_readers: OrderedDict = OrderedDict()  # a few recent readers: evaluation opens one dataset many times


def open_dataset(root: Path) -> Reader:
    """A reader of the files a dataset's metadata lists, in whatever format the folder holds.

    Packed readers index their files once; the index is reused while the data files are unchanged."""
    root = Path(root)
    fmt = detect(root)
    if not fmt.suffix:
        return fmt.reader(root)
    key = (os.path.realpath(root), fmt.name, tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in fmt.data_files(root)))
    if key not in _readers:
        _readers[key] = fmt.reader(root)
        while len(_readers) > 4:
            _readers.popitem(last=False)
    return _readers[key]


def read_listed_image(root: Path, name: str, flags: int, reader: Reader | None = None) -> np.ndarray:
    """An image the metadata lists, decoded by OpenCV (`flags`: BGR or grey), in any dataset format;
    `reader`: the dataset's open_dataset reader, when the caller keeps one."""
    from synthface.images import decode_image

    try:
        return decode_image((reader or open_dataset(Path(root))).read(name), flags, max_pixels=None)
    except ValueError as error:
        raise DatasetError(f"{root}: cannot read {name} listed in the metadata ({error})") from None


# --- packing --------------------------------------------------------------------------------------
def finished_packing(out: Path, name: str) -> Reader | None:
    """The reader of a finished run's packed files in format `name` (its metadata table written
    last), or None: a --resume in the same format counts the samples they hold as done."""
    from synthface.dataset import METADATA_CSV, METADATA_PARQUET

    out = Path(out)
    fmt = get_format(name)
    finished = (out / METADATA_PARQUET).exists() or (out / METADATA_CSV).exists()
    if not fmt.suffix or not finished or detect(out) is not fmt:
        return None
    return fmt.reader(out)


def plan_files(root: Path, table: pd.DataFrame, size: PackSize) -> list[tuple[int, int]]:
    """The table rows [start, stop) of each packed file, in order; files hold whole samples (a
    sample and its twin). By bytes, a file closes before the sample that would take it past the
    size (a file holds at least one sample); sizes count the files and the JSON row, plus a tar
    header per member."""
    starts = sample_starts(table)
    if size.samples:
        return [(starts[i], starts[min(i + size.samples, len(starts) - 1)]) for i in range(0, len(starts) - 1, size.samples)]
    row_bytes = [sum(inside(root, name).stat().st_size + 1024 for _, name in file_columns(row)) + len(row_json(row)) + 1024
                 for row in records(table)]
    files, first, used = [], 0, 0
    for start, stop in zip(starts, starts[1:]):
        need = sum(row_bytes[start:stop])
        if start > first and used + need > size.bytes:
            files.append((first, start))
            first, used = start, 0
        used += need
    if len(table):
        files.append((first, len(table)))
    return files


def file_digest(fmt: Format, table: pd.DataFrame, start: int, stop: int) -> str:
    """What decides a packed file's bytes, given one plan (generate refuses to mix plans): the
    format and the samples in it."""
    ids = table["sample_id"].iloc[start:stop].astype(str).tolist()
    return hashlib.sha256(json.dumps([fmt.name, PACK_VERSION, ids]).encode()).hexdigest()


def data_file_name(number: int, fmt: Format) -> str:
    return f"data-{number:06d}{fmt.suffix}"


def pack(out: Path, table: pd.DataFrame, name: str, size: PackSize, run_dir: Path | None = None, quiet: bool = True) -> list[Path]:
    """Pack the staged samples of `table` into `name`-format files in `out`; return them.

    Each file is staged and renamed, then noted in the run folder's pack journal, so a packing
    that is killed resumes at the first file not yet done. Data files of other formats or of an
    earlier, larger packing are removed. The folder format packs nothing (it removes such files)."""
    from synthface.progress import progress_bar

    out = Path(out)
    fmt = get_format(name)
    written: list[Path] = []
    if fmt.suffix:
        shared = fmt.prepare(table)
        journal = (run_dir or out) / PACK_JOURNAL
        done, layouts = {}, {}
        if journal.exists():
            for line in journal.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    if "layout" in entry:
                        layouts[entry["key"]] = [tuple(rows) for rows in entry["layout"]]
                    else:
                        done[entry["file"]] = entry["digest"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by a kill
        journal.parent.mkdir(parents=True, exist_ok=True)
        # Sizing files by bytes reads the staged images; a finished run has removed them, so a
        # resumed packing reuses the layout journaled for the same samples and size.
        layout_key = hashlib.sha256(json.dumps([str(size), table["sample_id"].astype(str).tolist()]).encode()).hexdigest()
        files = layouts.get(layout_key)
        with open(journal, "a") as log:
            if files is None:
                files = plan_files(out, table, size)
                log.write(json.dumps({"key": layout_key, "layout": [list(rows) for rows in files]}) + "\n")
                log.flush()
        with open(journal, "a") as log, progress_bar(f"packing {fmt.name}", len(files), quiet) as advance:
            for number, (start, stop) in enumerate(files):
                path = out / data_file_name(number, fmt)
                digest = file_digest(fmt, table, start, stop)
                if not (path.is_file() and done.get(path.name) == digest):
                    unstaged = [name for row in records(table.iloc[start:stop]) for _, name in file_columns(row)
                                if not (out / name).is_file()]
                    if unstaged:
                        raise FormatError(f"{out}: cannot write {path.name}: {len(unstaged)} image(s) it needs are not staged "
                                          f"(e.g. {unstaged[0]}); a finished {fmt.name} run keeps only its packed files, so "
                                          "--resume must use the same --pack-size; use --overwrite to start again")
                    with staged_file(path) as (handle, tmp):
                        fmt.write_file(handle, out, table.iloc[start:stop], shared)
                        handle.close()
                        os.replace(tmp, path)
                    log.write(json.dumps({"file": path.name, "digest": digest}) + "\n")
                    log.flush()
                written.append(path)
                advance()
    for path in list(Path(out).iterdir()) if Path(out).exists() else ():
        if DATA_FILE.match(path.name) and path not in written:
            path.unlink()
    return written


def drop_staged(out: Path, name: str) -> None:
    """After a packed run: remove the staged images and maps (the data files hold them now)."""
    if get_format(name).suffix:
        for folder in (IMAGES_DIR, OCCLUSION_DIR):
            shutil.rmtree(Path(out) / folder, ignore_errors=True)
