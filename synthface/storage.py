"""Object storage (fsspec URLs: s3://, gs://, file://, ...) at the edges of a run.

synthface works on local folders: scanning a pool, the landmark cache, the journal and resume,
packing and the output lock all rely on files. A URL is therefore met at the edges:

- an input (a face pool, a shard to merge, a dataset to train on) is **mirrored** into
  synthface's cache, object by object, fetching only objects that are new or changed since the
  last mirror (size and ETag/mtime), and removing local files whose object is gone;
- an output is **staged** in a local folder (`--staging`, default in the cache) and **uploaded**
  when the run has finished, data first and the metadata table last, as on a local disk where
  the table marks a finished dataset. An object already there with the same content is skipped,
  so an interrupted upload resumes.

`file://` URLs are plain local paths and are used in place. Other schemes need their fsspec
package: s3fs for s3:// (the `cluster` extra), gcsfs for gs://. Credentials and endpoints come
from the usual places (AWS_* variables, ~/.aws, fsspec's FSSPEC_S3_* variables).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from synthface.errors import UserError
from synthface.paths import cache_dir, is_url

MANIFEST = ".synthface-mirror.json"  # beside a mirror's files: what each was fetched as
PART_SUFFIX = ".synthface-part"  # a file being fetched; renamed into place once whole
MANIFEST_SECONDS = 10  # how often a long mirror saves its manifest (rewriting it per chunk is quadratic at 1M objects)
CHUNK = 64  # objects per fsspec call: fsspec fetches a call's objects concurrently; the bar advances per call


class StorageError(UserError, OSError):
    """A URL cannot be read or written (no such object, no fsspec backend, refused credentials)."""


def local_path(location: str | Path) -> Path | None:
    """The local path `location` names (a path, or a file:// URL), or None for a remote URL."""
    text = str(location)
    if not is_url(text):
        return Path(text).expanduser()
    if text.lower().startswith("file://"):
        return Path(text[len("file://"):])
    return None


def filesystem(url: str):
    """(fsspec filesystem, path within it) for a URL; StorageError naming the package a scheme needs."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise StorageError(f"{url}: URLs need fsspec: pip install -e '.[cluster]'") from None
    try:
        fs, path = url_to_fs(url)
    except ImportError as error:  # fsspec says which package the scheme needs (s3fs, gcsfs, ...)
        raise StorageError(f"{url}: {error}") from None
    except ValueError as error:  # an unknown protocol
        raise StorageError(f"{url}: {error}") from None
    return fs, path.rstrip("/")


def cache_folder(kind: str, url: str) -> Path:
    """A folder in the cache that belongs to one URL (its name: the URL's last part and a hash)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rsplit("/", 1)[-1]) or "root"
    return cache_dir() / kind / f"{name}-{hashlib.sha256(url.rstrip('/').encode()).hexdigest()[:12]}"


def staging_folder(url: str) -> Path:
    """Where a run whose output is `url` is written before the upload (kept for --resume)."""
    return cache_folder("staging", url)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Wait for other processes mirroring the same URL (two runs starting at once share one download)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _etag(info: dict) -> str:
    """An object's ETag in a listing ('' where the store gives none), without the quotes S3 puts round it."""
    return str(info.get("ETag") or info.get("etag") or "").strip('"')


def _stamp(info: dict) -> str:
    """What identifies an object's version in a listing: its size and ETag (or modification time)."""
    version = _etag(info) or info.get("mtime") or info.get("LastModified") or info.get("updated") or ""
    return f"{info.get('size')}|{version}"


@dataclass
class Listing:
    """The objects at a URL: {relative POSIX path: info}; `single`: the URL names one object (its
    name is the key), not a prefix."""

    objects: dict[str, dict]
    single: bool = False


def _listing(fs, root: str, url: str, missing_ok: bool = False) -> Listing:
    """Every object under `root`; with `missing_ok`, nothing there is an empty listing, not an error."""
    try:
        info = fs.info(root)
    except FileNotFoundError:
        if missing_ok:
            return Listing({})
        raise StorageError(f"{url}: no such object or prefix") from None
    except Exception as error:  # noqa: BLE001 - backends raise their own errors (credentials, network, permissions)
        raise StorageError(f"{url}: cannot be read ({type(error).__name__}: {error})") from None
    if info.get("type") != "directory":
        return Listing({root.rsplit("/", 1)[-1]: info}, single=True)
    found = fs.find(root, detail=True)
    return Listing({name[len(root) + 1:]: entry for name, entry in sorted(found.items())
                    if entry.get("type") != "directory" and name.startswith(root + "/")})


def mirror(url: str, what: str, quiet: bool = False, target: Path | None = None) -> Path:
    """A local copy of the object or prefix `url`, up to date (see the module's docstring).

    Returns the local folder for a prefix, the local file for one object. `target`: the folder
    to mirror into (default: one in the cache for this URL). `what` names the input in messages.
    """
    local = local_path(url)
    if local is not None:
        return local
    fs, root = filesystem(url)
    listing = _listing(fs, root, url)
    objects, single = listing.objects, listing.single
    folder = target or cache_folder("mirror", url)
    with _folder_lock(folder):
        manifest_file = folder / MANIFEST
        manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
        for leftover in folder.rglob(f"*{PART_SUFFIX}"):
            leftover.unlink()
        gone = [] if single else [name for name in manifest if name not in objects]  # one object shares its folder
        for name in gone:
            (folder / name).unlink(missing_ok=True)
            del manifest[name]
        saved = time.monotonic()
        wanted = [name for name, info in objects.items()
                  if manifest.get(name) != _stamp(info) or not (folder / name).is_file()]
        from synthface.progress import progress_bar

        with progress_bar(f"fetching {what}", len(wanted), quiet or not wanted) as advance:
            for start in range(0, len(wanted), CHUNK):
                names = wanted[start:start + CHUNK]
                parts = [folder / f"{name}{PART_SUFFIX}" for name in names]
                for part in parts:
                    part.parent.mkdir(parents=True, exist_ok=True)
                remote = [root if single else f"{root}/{name}" for name in names]
                try:
                    fs.get(remote, [str(part) for part in parts])
                except Exception as error:  # noqa: BLE001 - backends raise their own errors
                    raise StorageError(f"{url}: fetching {len(names)} objects failed ({type(error).__name__}: {error})") from None
                for name, part in zip(names, parts):
                    os.replace(part, folder / name)
                    manifest[name] = _stamp(objects[name])
                if time.monotonic() - saved > MANIFEST_SECONDS:  # an interrupted mirror keeps what it fetched
                    _write_json(manifest_file, manifest)
                    saved = time.monotonic()
                advance(len(names))
        _write_json(manifest_file, manifest)
    return folder / next(iter(objects)) if single else folder


def _write_json(path: Path, data: dict) -> None:
    from synthface.dataset import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(data, sort_keys=True).encode())


def remote_names(url: str) -> list[str]:
    """Relative names of the objects under `url` (empty when there is none); StorageError when its
    bucket does not exist, so a run that will upload there fails before its work, not after."""
    fs, root = filesystem(url)
    bucket = root.split("/", 1)[0]
    try:
        bucket_exists = fs.exists(bucket)
    except Exception as error:  # noqa: BLE001 - backends raise their own errors (credentials, network)
        raise StorageError(f"{url}: cannot be read ({type(error).__name__}: {error})") from None
    if not bucket_exists:
        raise StorageError(f"{url}: bucket {bucket} does not exist (create it first)")
    return list(_listing(fs, root, url, missing_ok=True).objects)


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - compared with S3's ETag of a single-part upload, not for security
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same_object(path: Path, info: dict | None) -> bool:
    """The object already holds this file's bytes (size and, where the store gives one, an MD5 ETag)."""
    if info is None or info.get("size") != path.stat().st_size:
        return False
    etag = _etag(info)
    return bool(re.fullmatch(r"[0-9a-f]{32}", etag)) and etag == _md5(path)


@dataclass
class UploadResult:
    uploaded: int = 0
    unchanged: int = 0
    removed: int = 0
    bytes: int = 0


def upload(folder: Path, url: str, *, last: tuple[str, ...] = (), skip: Callable[[str], bool] = lambda name: False,
           owned: Callable[[str], bool] = lambda name: False, quiet: bool = False) -> UploadResult:
    """Copy the files of `folder` to the prefix `url`.

    `last`: names uploaded after everything else (the table that marks a finished dataset).
    `skip(name)`: files not to upload. `owned(name)`: objects this upload may remove when the
    folder no longer has them (what an earlier run of the same output wrote); others are left.
    """
    fs, root = filesystem(url)
    existing = _listing(fs, root, url, missing_ok=True).objects
    names = sorted(str(path.relative_to(folder).as_posix()) for path in folder.rglob("*") if path.is_file())
    names = [name for name in names if not skip(name) and not name.endswith(PART_SUFFIX)]
    ordered = [name for name in names if name not in last] + [name for name in last if name in names]
    result = UploadResult()
    todo = []
    for name in ordered:
        if _same_object(folder / name, existing.get(name)):
            result.unchanged += 1
        else:
            todo.append(name)
    from synthface.progress import progress_bar

    with progress_bar(f"uploading to {url}", len(todo), quiet or not todo) as advance:
        for start in range(0, len(todo), CHUNK):
            batch = todo[start:start + CHUNK]
            try:
                fs.put([str(folder / name) for name in batch], [f"{root}/{name}" for name in batch])
            except Exception as error:  # noqa: BLE001 - backends raise their own errors
                raise StorageError(f"{url}: uploading failed ({type(error).__name__}: {error}); "
                                   "the run is kept in its staging folder: run the same command with --resume to upload again") from None
            result.uploaded += len(batch)
            result.bytes += sum((folder / name).stat().st_size for name in batch)
            advance(len(batch))
    written = set(names)
    stale = [name for name in existing if name not in written and owned(name)]
    if stale:
        fs.rm([f"{root}/{name}" for name in stale])
        result.removed = len(stale)
    return result
