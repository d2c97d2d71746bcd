"""The packed feature store: every clip's log-mel features in a few large files, read by index.

Layout of a store directory:
  store.json          sidecar: recipe, recipe hash, corpus, dtype, counts, version
  shards/NNNNN.bin    raw row-major (frames, n_mels) arrays, clips back to back (float16 by default)
  index.parquet       clip_id, shard, offset, frames (offset and frames in feature frames)
  index/NNNNNN.parquet  index parts committed during an extraction, merged into index.parquet at the end
  errors.csv          clips the last extraction could not read (clip_id, path, error)

Writes are append-only and committed in batches (shard bytes are fsynced before the index part naming
them is renamed into place), so a killed extraction loses at most one uncommitted batch and a rerun
truncates the uncommitted tail and continues. Reads memory-map the shards; a subset manifest selects rows.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from audiotransfer.data.audio import AudioError, audio_info, load_audio
from audiotransfer.data.features import FeatureRecipe, LogMel
from audiotransfer.errors import UserError
from audiotransfer.files import disk_full_is_user_error, make_output_folder, read_sidecar, write_atomic
from audiotransfer.manifest import Manifest

STORE_VERSION = 1
# what marks a folder as a store, finished or not: its sidecar, its writer's lock, a distributed run's parts
STORE_MARKERS = ("store.json", ".lock", "parts")
SHARD_BYTES = 1 << 30
COPY_ELEMENTS = 16384  # below torch's parallel grain size (32768): copies stay on the calling thread
INDEX_SCHEMA = pa.schema([("clip_id", pa.string()), ("shard", pa.int32()), ("offset", pa.int64()),
                          ("frames", pa.int64())])


def _file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def lost_rows(root: Path, index: pd.DataFrame, frame_bytes: int) -> np.ndarray:
    """Mask of the index rows whose bytes their shard file under `root` no longer holds (truncated or lost)."""
    sizes = {s: _file_size(root / "shards" / f"{int(s):05d}.bin") for s in index["shard"].unique()}
    ends = (index["offset"] + index["frames"]).to_numpy(np.int64) * frame_bytes
    return ends > index["shard"].map(sizes).to_numpy(np.int64)


def _read_index(root: Path) -> pd.DataFrame:
    """The merged index plus any committed parts, first occurrence of a clip id kept."""
    tables = [pq.read_table(root / "index.parquet")] if (root / "index.parquet").exists() else []
    tables += [pq.read_table(p) for p in sorted((root / "index").glob("*.parquet"))]
    if not tables:
        return INDEX_SCHEMA.empty_table().to_pandas()
    frame = pa.concat_tables([t.cast(INDEX_SCHEMA) for t in tables]).to_pandas()
    return frame.drop_duplicates("clip_id", keep="first").reset_index(drop=True)


class FeatureStore:
    """Random-access reads of an extracted store: `rows`, `lengths`, `read_batch`, `read`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        sidecar = self.root / "store.json"
        if not sidecar.exists():
            raise UserError(f"{sidecar}: not a feature store (store.json missing)",
                            fix="run `audiotransfer features extract` first, or check the --store path")
        self.info: dict[str, Any] = read_sidecar(sidecar, "store sidecar", STORE_VERSION)
        self.recipe = FeatureRecipe(**self.info["recipe"])
        self.corpus: str = self.info.get("corpus", "")
        self.dtype = np.dtype(self.info.get("dtype", "float16"))
        index = _read_index(self.root)
        self.clip_ids: pd.Index = pd.Index(index["clip_id"].astype(str))
        self._shard = index["shard"].to_numpy(np.int32)
        self._offset = index["offset"].to_numpy(np.int64)
        self._frames = index["frames"].to_numpy(np.int64)
        self._maps: dict[int, torch.Tensor] = {}
        self._fds: dict[int, int] = {}
        self._check_shards()

    def _check_shards(self) -> None:
        """A shard shorter than the index says (truncated, lost) is an error here, never zeros read later."""
        if not self.num_clips:
            return
        ends = pd.Series((self._offset + self._frames) * self.dtype.itemsize * self.recipe.n_mels).groupby(
            self._shard).max()
        for shard, need in ends.items():
            path = self.root / "shards" / f"{int(shard):05d}.bin"
            if _file_size(path) < need:
                raise UserError(
                    f"{path}: shard holds {_file_size(path):,} bytes but the store's index needs {int(need):,} "
                    "(the file was truncated or replaced)",
                    fix="rerun `audiotransfer features extract` (or `study run`): clips the shard lost are "
                        "dropped from the index and extracted again",
                )

    @property
    def num_clips(self) -> int:
        return len(self.clip_ids)

    @property
    def floor(self) -> float:
        return self.recipe.floor_db

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r}, clips={self.num_clips}, recipe={self.recipe.hash})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_maps"], state["_fds"] = {}, {}  # memory maps and files are reopened in the receiving process
        return state

    def rows(self, clip_ids: Sequence[str] | np.ndarray | pd.Series) -> np.ndarray:
        """Store rows of the given clip ids (int64); a UserError names the missing ones."""
        ids = pd.Index(np.asarray(clip_ids, dtype=object).astype(str))
        rows = self.clip_ids.get_indexer(ids)
        missing = ids[rows < 0]
        if len(missing):
            raise UserError(
                f"{self.root}: {len(missing)} of {len(ids)} clips are not in the store "
                f"(e.g. {', '.join(map(str, missing[:5]))})",
                fix="extract features for this manifest into the store (`audiotransfer features extract`)",
            )
        return rows.astype(np.int64)

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        """Number of frames of each row's clip."""
        return self._frames[np.asarray(rows, dtype=np.int64)]

    def _shard_tensor(self, shard: int) -> torch.Tensor:
        if shard not in self._maps:
            path = self.root / "shards" / f"{shard:05d}.bin"
            n_mels = self.recipe.n_mels
            # copy-on-write map: writable for torch, never written back to the file
            mm = np.memmap(path, dtype=self.dtype, mode="c", shape=(path.stat().st_size // (
                self.dtype.itemsize * n_mels), n_mels))
            self._maps[shard] = torch.from_numpy(mm)
        return self._maps[shard]

    def _prefetch(self, shards: list[int], begins: list[int], counts: list[int]) -> None:
        """Ask the kernel to read every crop of a batch now (POSIX_FADV_WILLNEED, asynchronous): on a
        store larger than RAM the disk then serves the whole batch at a deep queue instead of one page
        fault at a time. A no-op where the platform lacks posix_fadvise."""
        if not hasattr(os, "posix_fadvise"):
            return
        size = self.dtype.itemsize * self.recipe.n_mels
        for shard, begin, n in zip(shards, begins, counts, strict=True):
            if shard not in self._fds:
                self._fds[shard] = os.open(self.root / "shards" / f"{shard:05d}.bin", os.O_RDONLY)
            os.posix_fadvise(self._fds[shard], begin * size, n * size, os.POSIX_FADV_WILLNEED)

    def read(self, row: int) -> np.ndarray:
        """All frames of one clip, float32 (frames, n_mels)."""
        shard = self._shard_tensor(int(self._shard[row]))
        start = int(self._offset[row])
        return shard[start:start + int(self._frames[row])].float().numpy()

    def read_batch(
        self,
        rows: np.ndarray,
        frames: int,
        crop: Literal["random", "center"] = "random",
        rng: np.random.Generator | None = None,
        starts: np.ndarray | None = None,
        dtype: type[np.floating[Any]] = np.float32,
    ) -> np.ndarray:
        """Crops of `frames` frames, float32 (B, frames, n_mels); short clips padded with the floor value.

        `starts` (first frame of each crop) overrides `crop`; `dtype=np.float16` skips the conversion
        (half the bytes to copy and to send to an accelerator, which converts exactly)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self._frames[rows]
        spare = np.maximum(lengths - frames, 0)
        if starts is not None:
            starts = np.minimum(np.asarray(starts, dtype=np.int64), spare)
        elif crop == "random":
            starts = (rng or np.random.default_rng()).integers(0, spare + 1)
        elif crop == "center":
            starts = spare // 2
        else:
            raise ValueError(f"crop must be 'random' or 'center', not {crop!r}")
        take = np.minimum(lengths, frames)
        out = np.full((len(rows), frames, self.recipe.n_mels), self.floor, dtype=dtype)
        target = torch.from_numpy(out)  # shares memory: torch converts float16 -> float32 fast (F16C)
        begins = self._offset[rows] + starts
        step = COPY_ELEMENTS // self.recipe.n_mels
        shards, begins, take = self._shard[rows].tolist(), begins.tolist(), take.tolist()
        self._prefetch(shards, begins, take)
        for i, (shard, begin, n) in enumerate(zip(shards, begins, take, strict=True)):
            source = self._shard_tensor(shard)
            for a in range(0, n, step):  # pieces below torch's parallel grain: no thread hand-off per crop
                b = min(a + step, n)
                target[i, a:b].copy_(source[begin + a:begin + b])
        return out


class StoreWriter:
    """Appends clips to a store directory; `commit()` makes the appended clips durable."""

    def __init__(self, root: str | Path, recipe: FeatureRecipe, corpus: str = "",
                 dtype: str = "float16", shard_bytes: int = SHARD_BYTES) -> None:
        self.root = Path(root)
        self.recipe = recipe
        sidecar = self.root / "store.json"
        if sidecar.exists():
            info = read_sidecar(sidecar, "store sidecar", STORE_VERSION)
            if info.get("recipe_hash") != recipe.hash:
                raise UserError(
                    f"{sidecar}: field 'recipe_hash' is {info.get('recipe_hash')}, the requested recipe "
                    f"hashes to {recipe.hash}",
                    fix="use the store's recipe, or a new --store directory for a different recipe",
                )
            if corpus and info.get("corpus") and info["corpus"] != corpus:
                raise UserError(f"{sidecar}: field 'corpus' is {info['corpus']!r}, not {corpus!r}",
                                fix="use one store per corpus (clip ids of different corpora may clash)")
            corpus = corpus or info.get("corpus", "")
            dtype = info.get("dtype", dtype)
        self.corpus = corpus
        self.dtype = np.dtype(dtype)
        self.frame_bytes = self.dtype.itemsize * recipe.n_mels
        self.shard_frames = max(1, shard_bytes // self.frame_bytes)
        make_output_folder(self.root, STORE_MARKERS, "feature store")
        (self.root / "shards").mkdir(parents=True, exist_ok=True)
        (self.root / "index").mkdir(exist_ok=True)
        self._lock = open(self.root / ".lock", "w")  # noqa: SIM115 - held until close(); the OS drops it on a kill
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise UserError(f"{self.root}: another process is writing to this store",
                            fix="wait for it to finish (or stop it); a rerun then resumes") from None
        if not sidecar.exists():
            self._write_sidecar(num_clips=0, num_frames=0)
        self.index = _read_index(self.root)
        self.done: set[str] = set(self.index["clip_id"])
        self._recover()
        self._pending: list[tuple[str, int, int, int]] = []
        self._file = open(self._shard_path(self.shard), "ab")  # noqa: SIM115 - closed in close()

    def _shard_path(self, shard: int) -> Path:
        return self.root / "shards" / f"{shard:05d}.bin"

    def _recover(self) -> None:
        """Cut every shard back to its committed extent (drops what a killed run left uncommitted); clips
        whose bytes a shard no longer holds (a truncated or lost file) leave the index, to be extracted again."""
        lost = lost_rows(self.root, self.index, self.frame_bytes)
        if lost.any():
            damaged = sorted({self._shard_path(int(s)).name for s in self.index["shard"][lost]})
            print(f"features: shard(s) {', '.join(damaged)} in {self.root / 'shards'} are shorter than the index "
                  f"says; {int(lost.sum())} clips dropped from the store, to be extracted again", file=sys.stderr)
            self.index = self.index[~lost].reset_index(drop=True)
            self.done = set(self.index["clip_id"])
            self._write_index()
        extent = (self.index["offset"] + self.index["frames"]).groupby(self.index["shard"]).max()
        for path in sorted((self.root / "shards").glob("*.bin")):
            committed = int(extent.get(int(path.stem), 0)) * self.frame_bytes
            if path.stat().st_size > committed:
                os.truncate(path, committed)
        self.shard = int(extent.index.max()) if len(extent) else 0
        self.offset = int(extent.get(self.shard, 0))

    def _write_index(self) -> None:
        """Merge the index into index.parquet (atomically) and drop the committed parts."""
        table = pa.Table.from_pandas(self.index, schema=INDEX_SCHEMA, preserve_index=False)
        write_atomic(self.root / "index.parquet", lambda p: pq.write_table(table, p))
        for part in (self.root / "index").glob("*.parquet"):
            part.unlink()

    def add(self, clip_id: str, features: np.ndarray) -> None:
        """Append one clip's (frames, n_mels) features; durable after the next `commit()`."""
        if features.ndim != 2 or features.shape[1] != self.recipe.n_mels or len(features) == 0:
            raise ValueError(f"clip {clip_id!r}: features of shape {features.shape}, "
                             f"expected (frames > 0, {self.recipe.n_mels})")
        if self.offset and self.offset + len(features) > self.shard_frames:
            self.commit()
            self._file.close()
            self.shard, self.offset = self.shard + 1, 0
            self._file = open(self._shard_path(self.shard), "ab")  # noqa: SIM115
        self._file.write(np.ascontiguousarray(features, dtype=self.dtype).tobytes())
        self._pending.append((clip_id, self.shard, self.offset, len(features)))
        self.offset += len(features)
        self.done.add(clip_id)

    @property
    def pending(self) -> int:
        """Clips added since the last commit."""
        return len(self._pending)

    def commit(self) -> None:
        """Flush the shard to disk, then publish the pending index rows as a new index part."""
        if not self._pending:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        part = pd.DataFrame(self._pending, columns=INDEX_SCHEMA.names)
        parts = sorted((self.root / "index").glob("*.parquet"))
        number = int(parts[-1].stem) + 1 if parts else 0
        table = pa.Table.from_pandas(part, schema=INDEX_SCHEMA, preserve_index=False)
        write_atomic(self.root / "index" / f"{number:06d}.parquet", lambda p: pq.write_table(table, p))
        self.index = pd.concat([self.index, part], ignore_index=True)
        self._pending.clear()

    def adopt(self, part: Path, rows: pd.DataFrame) -> int:
        """Move the shards of another store of the same recipe (a distributed extraction's part) into this
        one, renamed not copied, and index `rows` of its index (clip_id, shard, offset, frames) that this
        store lacks; return how many. The caller checks that those rows' bytes are all there."""
        rows = rows[~rows["clip_id"].isin(self.done)]
        if rows.empty:
            return 0
        self.commit()
        self._file.close()
        numbers = [int(p.stem) for p in (self.root / "shards").glob("*.bin")]
        first = max([self.shard, *numbers]) + 1
        mapping = {shard: first + k for k, shard in enumerate(sorted(rows["shard"].unique()))}
        for old, new in mapping.items():
            os.replace(part / "shards" / f"{old:05d}.bin", self._shard_path(new))
        self._pending += list(zip(rows["clip_id"], rows["shard"].map(mapping), rows["offset"], rows["frames"],
                                  strict=True))
        self.done.update(rows["clip_id"])
        self.shard, self.offset = first + len(mapping), 0
        self._file = open(self._shard_path(self.shard), "ab")  # noqa: SIM115 - closed in close()
        self.commit()
        return len(rows)

    def close(self) -> FeatureStore:
        """Commit, merge the index parts into index.parquet, update the sidecar; return the store."""
        self.commit()
        self._file.close()
        self._write_index()
        self._write_sidecar(num_clips=len(self.index), num_frames=int(self.index["frames"].sum()))
        self._lock.close()
        return FeatureStore(self.root)

    def _write_sidecar(self, num_clips: int, num_frames: int) -> None:
        from audiotransfer import __version__

        info = {
            "what": "audiotransfer feature store",
            "format_version": STORE_VERSION,
            "recipe": self.recipe.model_dump(),
            "recipe_hash": self.recipe.hash,
            "corpus": self.corpus,
            "dtype": self.dtype.name,
            "num_clips": num_clips,
            "num_frames": num_frames,
            "bytes": num_frames * self.frame_bytes,
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "audiotransfer_version": __version__,
        }
        write_atomic(self.root / "store.json", lambda p: p.write_text(json.dumps(info, indent=1) + "\n"))


def write_store(store_dir: str | Path, recipe: FeatureRecipe, corpus: str,
                features: Mapping[str, np.ndarray]) -> FeatureStore:
    """Pack given (frames, n_mels) arrays into a store without audio; clips already in it are kept."""
    writer = StoreWriter(store_dir, recipe, corpus)
    for clip_id, array in features.items():
        if str(clip_id) not in writer.done:
            writer.add(str(clip_id), np.asarray(array))
    return writer.close()


# --------------------------------------------------------------------------------------------- extraction
_WORKER: dict[str, Any] = {}


def _init_worker(recipe: FeatureRecipe, threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
    _WORKER["logmel"] = LogMel(recipe).eval()
    _WORKER["recipe"] = recipe


def _extract_one(task: tuple[int, str, float, float]) -> tuple[int, str, np.ndarray | None, str]:
    """Features of one clip as (position, path, float16 array, "") or (position, path, None, error)."""
    position, path, offset, duration = task
    recipe: FeatureRecipe = _WORKER["recipe"]
    if not os.path.exists(path):
        return position, path, None, "missing: file not found"
    try:
        samples = load_audio(path, recipe.sample_rate, offset=offset,
                             duration=None if np.isnan(duration) else duration)
        if len(samples) < recipe.win_length:
            return position, path, None, f"too short: {len(samples)} samples, one frame needs {recipe.win_length}"
        with torch.inference_mode():
            logmel = _WORKER["logmel"](torch.from_numpy(samples)[None])[0]
    except AudioError as exc:
        return position, path, None, str(exc)
    except Exception as exc:  # a file that breaks decoding in another way is reported, not fatal
        return position, path, None, f"failed: {exc!r}"
    return position, path, logmel.to(torch.float16).numpy(), ""


def _estimate_frames(paths: list[str], durations: np.ndarray, recipe: FeatureRecipe,
                     sample_size: int = 1000) -> int:
    """Frames the clips will take, from headers (soundfile.info), extrapolated from a sample if many."""
    picked = np.arange(len(paths))
    if len(paths) > sample_size:
        picked = np.random.default_rng(0).choice(len(paths), sample_size, replace=False)
    total = 0
    for i in picked:
        seconds = durations[i]
        if np.isnan(seconds):
            try:
                n, sr = audio_info(paths[i])
            except AudioError:
                continue
            seconds = n / sr
        total += recipe.frames_for(seconds) or 0
    return int(total * len(paths) / max(len(picked), 1))


def _tasks(manifest: Manifest, todo: np.ndarray) -> Iterator[tuple[int, str, float, float]]:
    clips = manifest.clips
    root = Path(manifest.meta["root"])
    offsets = clips["offset"].fillna(0.0).to_numpy(float) if "offset" in clips else np.zeros(len(clips))
    durations = clips["duration"].to_numpy(float) if "duration" in clips else np.full(len(clips), np.nan)
    paths = clips["path"].astype(str).to_numpy()
    for i in todo:
        yield int(i), str(root / paths[i]), float(offsets[i]), float(durations[i])


def _check_space(writer: StoreWriter, store_dir: Path, tasks: list[tuple[int, str, float, float]],
                 recipe: FeatureRecipe, num_clips: int) -> None:
    """Say what is left to extract and the disk it needs; a UserError when the disk is too small."""
    durations = np.array([t[3] for t in tasks], dtype=float)
    need = _estimate_frames([t[1] for t in tasks], durations, recipe) * writer.frame_bytes
    free = shutil.disk_usage(store_dir).free
    print(f"features: {num_clips - len(tasks)} of {num_clips} clips already in {store_dir}; "
          f"extracting {len(tasks)} (recipe {recipe.hash}), about {need / 1e6:,.1f} MB needed, "
          f"{free / 1e9:,.1f} GB free", file=sys.stderr)
    if need > free:
        writer.close()
        raise UserError(f"{store_dir}: about {need / 1e9:.1f} GB needed but {free / 1e9:.1f} GB free",
                        fix="free disk space or choose another --store directory")


def extract_features(
    manifest: Manifest,
    store_dir: str | Path,
    recipe: FeatureRecipe | None = None,
    jobs: int = 1,
    on_error: Literal["skip", "stop"] = "skip",
    progress: bool = True,
    commit_every: int = 256,
) -> FeatureStore:
    """Decode, resample and log-mel every clip of `manifest` into the store at `store_dir`.

    Reads `meta["root"]/path` (optionally the window `offset`, `duration` seconds); clips already in the
    store are skipped, so a killed run resumes where its last commit left off. Unusable files go to
    `errors.csv`; `on_error="stop"` raises a UserError at the first one, after committing finished clips.
    """
    recipe = recipe or FeatureRecipe()
    if on_error not in ("skip", "stop"):
        raise UserError(f"on_error is {on_error!r}", fix="use 'skip' or 'stop'")
    if jobs < 1:
        raise UserError(f"jobs is {jobs}: nothing would be extracted", fix="use jobs >= 1")
    if "path" not in manifest.clips or "root" not in manifest.meta:
        raise UserError(f"manifest {manifest.name!r} has no audio paths (column 'path', meta 'root')",
                        fix="build it with a corpus loader (audiotransfer.data.corpora.load_corpus)")
    store_dir = Path(store_dir)
    writer = StoreWriter(store_dir, recipe, manifest.meta.get("corpus", ""))
    clip_ids = manifest.clips["clip_id"].astype(str).to_numpy()
    todo = np.flatnonzero([c not in writer.done for c in clip_ids])
    tasks = list(_tasks(manifest, todo))
    _check_space(writer, store_dir, tasks, recipe, len(clip_ids))
    errors_path = store_dir / "errors.csv"
    with disk_full_is_user_error(store_dir):
        store, failures = _extract(writer, tasks, clip_ids, errors_path, jobs, on_error, progress, commit_every)
    if failures:
        print(f"features: {failures} clips could not be used; see {errors_path}", file=sys.stderr)
    return store


def _extract(writer: StoreWriter, tasks: list[tuple[int, str, float, float]], clip_ids: np.ndarray,
             errors_path: Path, jobs: int, on_error: str, progress: bool,
             commit_every: int) -> tuple[FeatureStore, int]:
    """The extraction loop: features into the writer, failures into errors.csv; (store, failures)."""
    recipe = writer.recipe
    failures, last_commit = 0, time.monotonic()
    with open(errors_path, "w", newline="") as handle, _results(tasks, recipe, jobs) as results:
        report = csv.writer(handle)
        report.writerow(["clip_id", "path", "error"])
        try:
            for position, path, feats, error in tqdm(results, total=len(tasks), unit="clip", desc="extract",
                                                     disable=not progress, file=sys.stderr):
                clip_id = str(clip_ids[position])
                if feats is not None:
                    writer.add(clip_id, feats)
                    if writer.pending >= commit_every or time.monotonic() - last_commit > 10:
                        writer.commit()
                        last_commit = time.monotonic()
                    continue
                failures += 1
                report.writerow([clip_id, path, error])
                handle.flush()
                if on_error == "stop":
                    raise UserError(f"{path}: {error} (clip {clip_id})",
                                    fix="repair or remove the file, or rerun with --on-error skip; "
                                        "finished clips are kept")
        finally:
            store = writer.close()
    return store, failures


@contextmanager
def _results(tasks: list[tuple[int, str, float, float]], recipe: FeatureRecipe,
             jobs: int) -> Iterator[Iterator[tuple[int, str, np.ndarray | None, str]]]:
    """Results of `_extract_one` over the tasks, as they finish: from `jobs` worker processes, or from
    this process when jobs == 1. Workers are spawned (not forked: torch's thread pools are not fork-safe)."""
    if jobs <= 1:
        _init_worker(recipe, None)
        yield map(_extract_one, tasks)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(jobs, initializer=_init_worker, initargs=(recipe, 1)) as pool:
        yield pool.imap_unordered(_extract_one, tasks, chunksize=4)
