"""Write the synthetic world to disk in the layouts the rest of the toolkit already reads.

Layout of `out_dir`:
```
world.json                      sidecar: parameters, version, counts, complete flag
ontology.json                   the AudioSet ontology fragment (real JSON format)
class_labels_indices.csv        index,mid,display_name of the synthetic classes
train_segments.csv              AudioSet segment lists (3 '#' lines, YTID, start, end, "mid,mid")
eval_segments.csv
audio/Y{ytid}.wav               pre-training clips, 16 kHz 16-bit PCM
tasks/{scenes,birds,commands}/meta.csv     clip_id,path,label,split,speaker (path relative to out_dir)
tasks/{task}/audio/{clip_id}.wav
```
`remove_audio` deletes the WAVs of a world whose features are extracted (the demo does, keeping its folder
small); `generate_world` renders them again, identical, from the seed.
Generation is cached (same parameters -> nothing to do), resumable (finished WAVs, written atomically,
are skipped) and parallel (chunks of clips over processes); every clip depends only on its seed and
index, so the output is identical for any number of workers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

import audiotransfer.data.synthetic.world as world
from audiotransfer.data.synthetic.classes import CLASSES
from audiotransfer.data.synthetic.sources import SR
from audiotransfer.errors import UserError
from audiotransfer.files import make_output_folder, write_atomic
from audiotransfer.progress import progress as show_progress

VERSION = 3
TASKS = ("scenes", "birds", "commands")
CHUNK = 64
_YTID_PREFIX = {"train": "syntr", "eval": "synev"}


def fragment_path() -> Path:
    return Path(str(resources.files("audiotransfer.data.synthetic") / "fragment.json"))


def ytid(part: str, index: int) -> str:
    """An 11-character YouTube-style id: 'syntr000042' (train) or 'synev000042' (eval)."""
    return f"{_YTID_PREFIX[part]}{index:06d}"


def write_wav(path: Path, audio: np.ndarray) -> None:
    """16-bit PCM with explicit rounding, written to a temporary name then renamed (atomic)."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    write_atomic(path, lambda tmp: sf.write(tmp, pcm, SR, subtype="PCM_16", format="WAV"), suffix=".part")


def _render(part: str, index: int, spec: dict[str, str], seed: int) -> np.ndarray:
    if part in _YTID_PREFIX:
        return world.render_pretrain(seed, part, index).audio
    return world.render_task(part, seed, index, spec)


def _work(chunk: list[tuple[str, int, dict[str, str], str]], seed: int, root: str) -> int:
    """Render and write the clips of one chunk that are not on disk yet (worker process)."""
    for part, index, spec, rel in chunk:
        path = Path(root) / rel
        if not path.exists():
            write_wav(path, _render(part, index, spec, seed))
    return len(chunk)


def _segments(path: Path, part: str, count: int, seed: int) -> None:
    rows = [(ytid(part, i), world.pretrain_labels(seed, part, i)) for i in range(count)]
    labels = {lab for _, labs in rows for lab in labs}
    lines = [
        f"# Segments csv created by audiotransfer synthetic world v{VERSION} (seed {seed})",
        f"# num_ytids={count}, num_segs={count}, num_unique_labels={len(labels)}, "
        f"num_positive_labels={sum(len(labs) for _, labs in rows)}",
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    end = f"{world.CLIP_SECONDS:.3f}"
    lines += [f'{y}, 0.000, {end}, "{",".join(labs)}"' for y, labs in rows]
    path.write_text("\n".join(lines) + "\n")


def _task_meta(task: str, size: int, seed: int, num_speakers: int) -> pd.DataFrame:
    rows = []
    for i in range(size):
        spec = world.task_spec(task, seed, i, num_speakers)
        clip_id = f"{task}_{i:05d}"
        rows.append({"clip_id": clip_id, "path": f"tasks/{task}/audio/{clip_id}.wav", **spec})
    return pd.DataFrame(rows, columns=["clip_id", "path", "label", "split", "speaker"])


def _items(out: Path, params: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, str], str]]:
    for part, count in (("train", params["num_pretrain"]), ("eval", params["num_eval"])):
        for i in range(count):
            yield part, i, {}, f"audio/Y{ytid(part, i)}.wav"
    for task in TASKS:
        meta = pd.read_csv(out / "tasks" / task / "meta.csv", dtype=str, keep_default_na=False)
        for i, row in enumerate(meta.to_dict("records")):
            yield task, i, {k: row[k] for k in ("label", "split", "speaker")}, row["path"]


def _check_sidecar(out: Path, params: dict[str, Any], audio: bool = True) -> bool:
    """True when `out` already holds this exact world (with its audio, unless `audio` is False);
    UserError when it holds another one."""
    sidecar = out / "world.json"
    if not sidecar.exists():
        return False
    info = json.loads(sidecar.read_text())
    if info.get("params") != params or info.get("version") != VERSION:
        raise UserError(
            f"{sidecar}: field 'params' ({info.get('params')}, version {info.get('version')}) differs from the "
            f"requested world ({params}, version {VERSION})",
            fix="pass another --out folder, or delete this one to regenerate it",
        )
    return bool(info.get("complete")) and (not audio or info.get("audio", "kept") == "kept")


def remove_audio(out_dir: str | Path) -> int:
    """Delete a complete world's audio files (once its features are extracted they are not read again),
    keeping its metadata; the sidecar says so. `generate_world` renders them again, bit for bit, from the
    seed. Returns the bytes freed."""
    out = Path(out_dir)
    sidecar = out / "world.json"
    info = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    if not info.get("complete"):
        raise UserError(
            f"{sidecar}: the world is not complete; its audio is still needed",
            fix="finish generating it first (generate_world / audiotransfer synth generate)",
        )
    freed = 0
    for path in [*out.glob("audio/*.wav"), *out.glob("tasks/*/audio/*.wav")]:
        freed += path.stat().st_size
        path.unlink()
    info["audio"] = "removed"
    write_atomic(sidecar, lambda p: p.write_text(json.dumps(info, indent=1) + "\n"))
    return freed


def generate_world(
    out_dir: str | Path,
    seed: int = 0,
    num_pretrain: int = 5000,
    num_eval: int = 1000,
    num_scenes: int = 480,
    num_birds: int = 480,
    num_commands: int = 720,
    num_speakers: int = 60,
    jobs: int | None = None,
    progress: bool = True,
    audio: bool = True,
) -> Path:
    """Generate (or finish, or find) the synthetic world in `out_dir`; returns `out_dir`.

    A complete world whose audio was removed (`remove_audio`) gets it rendered again when `audio` is True,
    and is taken as it is when False (a study whose features are extracted needs no audio)."""
    params = {"seed": seed, "num_pretrain": num_pretrain, "num_eval": num_eval, "num_scenes": num_scenes,
              "num_birds": num_birds, "num_commands": num_commands, "num_speakers": num_speakers}  # fmt: skip
    for key, value in params.items():
        if value < 0 or (key == "num_speakers" and value < 7):  # checked before anything is written
            raise UserError(
                f"generate_world: field {key!r} is {value}", fix="use a non-negative seed and counts, >= 7 speakers"
            )
    out = Path(out_dir)
    make_output_folder(out, ["world.json"], "synthetic world")
    if _check_sidecar(out, params, audio):
        return out
    sidecar: dict[str, Any] = {"what": "audiotransfer synthetic world", "version": VERSION, "params": params,
                               "sample_rate": SR, "complete": False}  # fmt: skip
    (out / "world.json").write_text(json.dumps(sidecar, indent=1) + "\n")  # first: the folder is ours
    for sub in ("audio", *(f"tasks/{t}/audio" for t in TASKS)):
        (out / sub).mkdir(parents=True, exist_ok=True)

    (out / "ontology.json").write_text(fragment_path().read_text())
    index_lines = ["index,mid,display_name"] + [f'{i},{c.id},"{c.name}"' for i, c in enumerate(CLASSES)]
    (out / "class_labels_indices.csv").write_text("\n".join(index_lines) + "\n")
    _segments(out / "train_segments.csv", "train", num_pretrain, seed)
    _segments(out / "eval_segments.csv", "eval", num_eval, seed)
    sizes = {"scenes": num_scenes, "birds": num_birds, "commands": num_commands}
    for task in TASKS:
        _task_meta(task, sizes[task], seed, num_speakers).to_csv(out / "tasks" / task / "meta.csv", index=False)

    items = list(_items(out, params))
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    bar = show_progress(total=len(items), desc="synthetic world", unit="clip", enabled=progress)
    workers = jobs or os.cpu_count() or 1
    if workers == 1:
        for chunk in chunks:
            bar.update(_work(chunk, seed, str(out)))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for future in as_completed([pool.submit(_work, c, seed, str(out)) for c in chunks]):
                bar.update(future.result())
    bar.close()
    sidecar.update(complete=True, audio="kept", counts={"train": num_pretrain, "eval": num_eval, **sizes},
                   classes=len(CLASSES))  # fmt: skip
    (out / "world.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    return out
