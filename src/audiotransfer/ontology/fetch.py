"""Download the AudioSet metadata (ontology, label index, segment lists) into a cache, with md5 checks.

A file already in the cache with the right checksum is not downloaded again; downloads go to a temporary
file in the cache and are renamed into place only after the checksum matched, so an interrupted download
never leaves a broken file behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from audiotransfer.errors import UserError

ONTOLOGY_URL = "https://raw.githubusercontent.com/audioset/ontology/master/ontology.json"
CSV_BASE_URL = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv"
ONTOLOGY_MD5 = "4880cd66e698acc00c5ee0757e23b993"
# md5 of the published files; None where no checksum is pinned (the large unbalanced list).
KNOWN_MD5: dict[str, str | None] = {
    "ontology.json": ONTOLOGY_MD5,
    "class_labels_indices.csv": "68c0b5c199d6cc789852b144cc3ab500",
    "balanced_train_segments.csv": "0ec13c62ec25d1148b9bf3390dee8bd7",
    "eval_segments.csv": "85e796902a4e6a0898980a55f86b55f3",
    "unbalanced_train_segments.csv": None,
}
STANDARD_FILES = ("ontology.json", "class_labels_indices.csv", "balanced_train_segments.csv", "eval_segments.csv")


def default_url(filename: str) -> str:
    """The canonical address of one metadata file."""
    return ONTOLOGY_URL if filename == "ontology.json" else f"{CSV_BASE_URL}/{filename}"


def fetch_file(url: str, cache_dir: str | Path, md5: str | None = None, progress: bool = True) -> Path:
    """`cache_dir/<name from url>`, downloaded unless already cached with the expected md5."""
    from audiotransfer.progress import progress as show_progress

    target = Path(cache_dir) / url.rstrip("/").rsplit("/", 1)[-1]
    if target.exists() and (md5 is None or _md5(target) == md5):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5(usedforsecurity=False)
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(handle, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with show_progress(total=total, unit="B", unit_scale=True, desc=target.name, enabled=progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if md5 is not None and digest.hexdigest() != md5:
            raise UserError(
                f"{url}: downloaded file has md5 {digest.hexdigest()}, expected {md5}",
                fix="retry; if it persists the source changed: download it by hand and pass its path",
            )
        os.replace(tmp_name, target)
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(
            f"{url}: download failed ({exc})",
            fix=f"check the network, or download it by hand into {target.parent}",
        ) from None
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return target


def fetch_ontology(
    cache_dir: str | Path, url: str = ONTOLOGY_URL, md5: str | None = ONTOLOGY_MD5, progress: bool = True
) -> Path:
    """The path of `ontology.json` in `cache_dir`, downloaded from `url` if needed."""
    return fetch_file(url, cache_dir, md5=md5, progress=progress)


def fetch_metadata(
    cache_dir: str | Path,
    files: Iterable[str] = STANDARD_FILES,
    base_url: str | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Download the named metadata files (default: the four standard ones) into `cache_dir`.

    `base_url` replaces the canonical hosts (one folder holding all files, e.g. a mirror or a test server).
    """
    paths = {}
    for name in files:
        if name not in KNOWN_MD5:
            raise UserError(f"unknown AudioSet metadata file {name!r}", fix=f"choose from: {', '.join(KNOWN_MD5)}")
        url = f"{base_url.rstrip('/')}/{name}" if base_url else default_url(name)
        paths[name] = fetch_file(url, cache_dir, md5=KNOWN_MD5[name], progress=progress)
    return paths


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
