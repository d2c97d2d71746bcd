"""Running a study: prepare its data, then execute its runs in dependency order, resumably.

`run(path)` validates the whole study, builds manifests and feature stores (once), plans the runs and
executes the unfinished ones on a backend with N parallel workers. Each result is committed to the
results store the moment its run ends, so an interrupted study loses nothing that finished and a rerun
resumes (a half-finished run continues from its own checkpoint). A failed run is retried, then recorded
with its error; the runs that depend on it are marked blocked and everything else carries on.
"""

from __future__ import annotations

import fcntl
import logging
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from audiotransfer.errors import UserError
from audiotransfer.files import make_output_folder, write_atomic
from audiotransfer.progress import progress as show_progress
from audiotransfer.study.backends import Backend, RunFn, make_backend
from audiotransfer.study.layout import StudyDir, pretrain_id
from audiotransfer.study.plan import Plan, Run, check_resumable, make_plan
from audiotransfer.study.prepare import DataIndex, prepare_features, prepare_manifests
from audiotransfer.study.spec import SCRATCH, Study, load_study
from audiotransfer.study.store import ResultStore
from audiotransfer.training.result import RunResult

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one `run` call did: run ids by what happened to them."""

    study_dir: Path
    skipped: list[str] = field(default_factory=list)  # finished before this call
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run id -> error
    blocked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked

    def __repr__(self) -> str:
        return (
            f"Outcome('{self.study_dir}', done {len(self.done)}, skipped {len(self.skipped)} (finished before), "
            f"failed {len(self.failed)}, blocked {len(self.blocked)})"
        )


def execute_run(run: Run) -> RunResult:
    """Train one run with the training engine (in a worker) and return its result, with its `model.pt`."""
    from audiotransfer.data.store import FeatureStore
    from audiotransfer.manifest import Manifest
    from audiotransfer.training import finetune, pretrain
    from audiotransfer.training.checkpoint import CHECKPOINT, MODEL

    _log_attempt(run.out_dir)
    manifest = Manifest.load(run.manifest)
    store = FeatureStore(run.store)
    recipe = run.recipe
    if run.kind == "pretrain":
        result = pretrain(manifest, store, recipe, run.out_dir, progress=False)
    else:
        init = Path(run.init) if run.init else None
        result = finetune(
            manifest,
            store,
            recipe,
            run.out_dir,
            init=init,
            progress=False,
            format=run.format,
            embedding_cache=run.embedding_cache,
        )
    if not run.keep_checkpoint:  # model.pt and metrics.json hold the result; a CNN10 resume state is ~60 MB
        (run.out_dir / CHECKPOINT).unlink(missing_ok=True)
    return replace(result, checkpoint=str(run.out_dir / MODEL))


def _log_attempt(out_dir: Path) -> None:
    """Append where and when this attempt of a run started to `RUN/attempts.jsonl` (a run retried after
    its node died has one line per node)."""
    import json
    import os
    import socket
    import time

    node = None
    if "ray" in sys.modules:
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    out_dir.mkdir(parents=True, exist_ok=True)
    line = {"host": socket.gethostname(), "pid": os.getpid(), "ray_node": node, "started": time.time()}
    with open(out_dir / "attempts.jsonl", "a") as handle:
        handle.write(json.dumps(line) + "\n")


def open_study(
    path: str | Path, overrides: Mapping[str, Any] | None = None, force: bool = False
) -> tuple[Study, ResultStore]:
    """Validate a study and bind its results store (refusing a store of another study). Its `out` folder is
    new, empty, a study's (results.sqlite), or the folder of the study's own YAML (`out: .`); any other
    folder is refused unless `force`."""
    study = load_study(path, overrides)
    own = Path(study.path).resolve().parent == Path(study.out).resolve()
    make_output_folder(study.out, [StudyDir(study.out).results.name], "study folder", force=force or own)
    store = ResultStore(StudyDir(study.out).results)
    store.claim(study.identity, where=str(study.path))
    return study, store


def prepare(
    study: Study,
    store: ResultStore,
    jobs: int = 1,
    features: bool = True,
    progress: bool = True,
    distributed: bool = False,
) -> tuple[DataIndex, Plan]:
    """The plan, checked against finished runs before anything is written; then manifests (and features),
    recorded in the store. A finished run whose folder was deleted is redone."""
    finished = store.runs().query("status == 'done'")
    gone = [r for r in finished["run_id"] if not StudyDir(study.out).run_dir(r).is_dir()]
    kept = finished[~finished["run_id"].isin(gone)]
    configs = dict(zip(kept["run_id"], kept["config"], strict=True))
    data = prepare_manifests(study, check=lambda d: check_resumable(make_plan(study, d), configs))
    store.reopen(gone)
    if features:
        prepare_features(study, data, jobs=jobs, progress=progress, distributed=distributed)
    _put_states(study, store, data)
    for name, d in data.tasks.items():
        recipe = next(iter(study.finetune_recipes[name].values()))
        frames = recipe.frames or study.features.frames_for(d.clip_seconds)
        store.put_task(
            name,
            corpus=d.corpus,
            task_type=d.task_type,
            num_classes=d.num_classes,
            manifest_path=str(d.manifest),
            store_path=str(d.store),
            frames=frames,
        )
    return data, make_plan(study, data)


def _put_states(study: Study, store: ResultStore, data: DataIndex) -> None:
    """Record each state's data and the front-end it reads (its own, or the study's `features`)."""
    from audiotransfer.study.frontends import frontend_name

    def front(name: str) -> dict[str, str]:
        recipe = data.frontends.get(name, study.features)
        return {"frontend": frontend_name(recipe), "frontend_hash": recipe.hash}

    for name, d in data.states.items():
        store.put_state(
            name,
            corpus=d.corpus,
            num_clips=d.num_train,
            num_classes=d.num_classes,
            subset_hash=d.hash,
            manifest_path=str(d.manifest),
            store_path=str(d.store),
            checkpoint=str(StudyDir(study.out).model(pretrain_id(name))),
            labels=d.labels,
            **front(name),
        )
    for name, ckpt in study.checkpoint_states.items():
        known = ckpt.pretraining  # what a public model was pre-trained on, where the study says
        counts = {"num_clips": known.clips, "num_classes": known.classes} if known else {}
        labels = {"labels": study.checkpoint_labels[name]} if name in study.checkpoint_labels else {}
        store.put_state(name, checkpoint=str(ckpt.checkpoint), **counts, **labels, **front(name))
    if study.spec.include_scratch:
        store.put_state(SCRATCH, num_clips=0, num_classes=0, **front(SCRATCH))


def run(
    path: str | Path,
    jobs: int = 1,
    backend: str = "local",
    retries: int = 0,
    mlflow: str | None = None,
    progress: bool = True,
    overrides: Mapping[str, Any] | None = None,
    run_fn: RunFn = execute_run,
    ray_address: str | None = None,
    force: bool = False,
) -> Outcome:
    """Run (or resume) the study in `path`; see the module docstring. Also `audiotransfer.run_study`.
    `force` lets it write into an existing folder that is not a study.

    Runs every pre-training and fine-tuning run of the study YAML at `path` (`jobs` at a time, on the
    `local` or `ray` backend), records each in `OUT/results.sqlite` and returns what happened. Run it again
    and finished runs are skipped, a half-finished one resumes. Here a study of one task (two classes of
    tones in `class_name/*.wav` folders), the scratch control alone, a linear probe:

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np, soundfile as sf
        >>> from audiotransfer import load_results, run_study
        >>> folder = Path(tempfile.mkdtemp())
        >>> for label, hz in (("low", 300), ("high", 2000)):
        ...     (folder / "clips" / label).mkdir(parents=True)
        ...     for i in range(10):
        ...         tone = 0.3 * np.sin(2 * np.pi * hz * (1 + i / 20) * np.arange(8000) / 16000)
        ...         sf.write(folder / "clips" / label / f"{i}.wav", tone, 16000)
        >>> _ = (folder / "study.yaml").write_text('''
        ... name: tones
        ... out: study
        ... features: demo
        ... downstream: {tones: {corpus: folder, root: clips}}
        ... protocols: [linear]
        ... seeds: [1]
        ... recipes: {finetune: {model: cnn6, width: 0.125, epochs: 2}}
        ... ''')
        >>> run_study(folder / "study.yaml", progress=False)  # doctest: +ELLIPSIS
        Outcome('.../study', done 1, skipped 0 (finished before), failed 0, blocked 0)
        >>> res = load_results(folder / "study")
        >>> res
        StudyResults('tones', 1 runs (1 done), 5 test scores, 1 states, 1 tasks, 0 notes)
        >>> res.test.query("metric == 'uar'")[["state", "task", "protocol", "seed"]].to_dict("records")
        [{'state': 'scratch', 'task': 'tones', 'protocol': 'linear', 'seed': 1}]
    """
    if jobs < 1:
        raise UserError(f"jobs is {jobs}: nothing would run", fix="use --jobs 1 or more")
    study, store = open_study(path, overrides, force=force)
    with _lock(StudyDir(study.out)):
        target = _resolved_target(study)
        res = study.spec.resources
        executor = make_backend(backend, jobs, res.num_cpus, res.num_gpus, address=ray_address)
        try:  # the Ray backend connects first: the features are extracted over the same cluster
            _, plan = prepare(study, store, jobs=jobs, progress=progress, distributed=backend == "ray")
        except BaseException:
            executor.close(cancel=True)
            raise
        _write_resolved(study, target)
        from audiotransfer import __version__

        store.register([r.record(__version__) for r in plan])
        store.reset_unfinished()
        on_done = None
        if mlflow:
            from audiotransfer.study.mlflow_export import export_runs

            def on_done(run_id: str) -> None:
                export_runs(study.out, mlflow, run_ids=[run_id])

        return execute(
            plan,
            store,
            executor,
            jobs=jobs,
            retries=retries,
            run_fn=run_fn,
            progress=progress,
            on_done=on_done,
            study_dir=study.out,
        )


def execute(
    plan: Plan,
    store: ResultStore,
    backend: Backend,
    jobs: int = 1,
    retries: int = 0,
    run_fn: RunFn = execute_run,
    progress: bool = True,
    on_done: Callable[[str], None] | None = None,
    study_dir: Path | None = None,
) -> Outcome:
    """Execute the plan's unfinished runs on `backend`, at most `jobs` at a time, recording every outcome."""
    status = store.status()
    outcome = Outcome(study_dir or Path("."), skipped=[r for r in plan.runs if status.get(r) == "done"])
    finished = set(outcome.skipped)
    # pre-training first (each unlocks many fine-tunes), then the longest runs first (fewer idle workers at the
    # end); among equals one seed after another, so the probes of one state and task that share embeddings
    # (training.embedding_cache) do not compute them side by side
    pending = sorted(
        (r for r in plan.runs if r not in finished),
        key=lambda r: (plan.runs[r].kind != "pretrain", -plan.runs[r].cost, plan.runs[r].seed or 0),
    )
    attempts: dict[str, int] = {}
    inflight: dict[Any, str] = {}
    bar = show_progress(total=len(plan), initial=len(finished), unit="run", desc="study", enabled=progress)
    try:
        while pending or inflight:
            _submit_ready(plan, store, backend, run_fn, jobs, pending, finished, inflight)
            if not inflight:  # only runs whose parents never finished are left
                break
            for handle in backend.wait(list(inflight), timeout=1.0):
                run_id = inflight.pop(handle)
                try:
                    result = backend.result(handle)
                except Exception as exc:
                    attempts[run_id] = attempts.get(run_id, 0) + 1
                    if attempts[run_id] <= retries:
                        pending.insert(0, run_id)
                        continue
                    pending = _fail(plan, store, outcome, pending, run_id, exc, bar)
                    continue
                _done(store, outcome, run_id, result, bar, on_done)
                finished.add(run_id)
            bar.set_postfix(
                running=len(inflight), failed=len(outcome.failed), blocked=len(outcome.blocked), refresh=False
            )
            bar.refresh()
    except BaseException:
        backend.close(cancel=True)
        store.reset_unfinished()
        raise
    finally:
        bar.close()
    backend.close()
    return outcome


def _submit_ready(
    plan: Plan,
    store: ResultStore,
    backend: Backend,
    run_fn: RunFn,
    jobs: int,
    pending: list[str],
    finished: set[str],
    inflight: dict[Any, str],
) -> None:
    """Start pending runs whose parents are finished, up to `jobs` in flight (updates pending and inflight)."""
    for run_id in list(pending):
        if len(inflight) >= jobs:
            break
        if all(d in finished for d in plan.dependencies(run_id)):
            pending.remove(run_id)
            store.mark_running(run_id)
            inflight[backend.submit(run_fn, plan.runs[run_id])] = run_id


def _fail(
    plan: Plan, store: ResultStore, outcome: Outcome, pending: list[str], run_id: str, exc: BaseException, bar: tqdm
) -> list[str]:
    """Record a run that failed for good and block what depends on it; return the runs still pending."""
    error = _describe(exc)
    store.mark_failed(run_id, error)
    outcome.failed[run_id] = error
    blocked = [d for d in plan.dependents(run_id) if d in pending]
    pending = [p for p in pending if p not in blocked]
    store.mark_blocked(blocked, f"needs {run_id}, which failed")
    outcome.blocked += blocked
    bar.update(1 + len(blocked))
    log.warning("failed: %s: %s", run_id, error_summary(error))
    return pending


def _done(
    store: ResultStore,
    outcome: Outcome,
    run_id: str,
    result: RunResult,
    bar: tqdm,
    on_done: Callable[[str], None] | None,
) -> None:
    """Record a finished run, then call the after-run hook (whose failure only warns)."""
    store.mark_done(run_id, result)
    outcome.done.append(run_id)
    bar.update(1)
    if on_done is not None:
        try:
            on_done(run_id)
        except Exception as exc:  # e.g. an unreachable MLflow server: the result is safe in the store
            log.warning("warning: %s: after-run hook failed: %s", run_id, exc)


def error_summary(error: str) -> str:
    """One line for a recorded error: a user error's message with its fix, else a traceback's last line."""
    message, sep, fix = error.strip().rpartition("\n  fix: ")
    if sep:
        return " ".join(message.split()) + f" (fix: {' '.join(fix.split())})"
    lines = error.strip().splitlines()
    return lines[-1].strip() if lines else ""


def _describe(exc: BaseException) -> str:
    """The error text recorded for a failed run: a user error's message, else the traceback's tail."""
    if isinstance(exc, UserError):
        return str(exc)
    text = "".join(traceback.format_exception(exc)).strip()
    return text[-4000:]


RESOLVED_HEADER = "# written by audiotransfer `study run`: the validated study with absolute paths\n"


def _resolved_target(study: Study) -> Path | None:
    """Where `study run` writes the resolved spec (`STUDY/study.yaml`); None when that is the spec itself.
    A file there that the study did not write (e.g. the user's own spec, with `out: .`) is refused, never
    overwritten."""
    target = StudyDir(study.out).spec
    if target.resolve() == study.path:
        return None
    if target.exists() and not _written_by_study(target, study):
        raise UserError(
            f"{target}: a file the study did not write is in the way of its resolved spec (field 'out' is {study.out})",
            fix="give the study its own `out` folder, or move that file away",
        )
    return target


def _write_resolved(study: Study, target: Path | None) -> None:
    """`STUDY/study.yaml`: the validated spec with absolute paths (what the analysis and a person read)."""
    if target is not None:
        text = RESOLVED_HEADER + yaml.safe_dump(study.resolved(), sort_keys=False)
        write_atomic(target, lambda p: p.write_text(text))


def _written_by_study(target: Path, study: Study) -> bool:
    """The file carries our header, or (older studies) is a resolved spec of this very folder."""
    text = target.read_text(errors="replace")
    if text.startswith(RESOLVED_HEADER):
        return True
    try:
        old = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(old, dict) and str(old.get("out")) == str(study.out)


@contextmanager
def _lock(out: StudyDir) -> Iterator[None]:
    """One `study run` per study directory at a time."""
    with open(out.lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{out.root}: another `study run` is running on this study",
                fix="wait for it to end (or stop it) before starting another",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
