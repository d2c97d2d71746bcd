"""Where runs execute: local worker processes, or Ray tasks (one per run, with its CPU/GPU needs).

A backend submits `fn(run)` and hands back futures; the runner waits on them and records results. The
local backend uses spawned processes (one torch thread pool each, `cores // jobs` threads), and its
workers exit when the study process dies, so a killed study leaves no orphan training behind.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any, Protocol

from audiotransfer.errors import UserError
from audiotransfer.files import cap_jobs
from audiotransfer.training.result import RunResult

RunFn = Callable[[Any], RunResult]


class Backend(Protocol):
    """What the runner needs from an executor of runs."""

    def submit(self, fn: RunFn, run: Any) -> Any: ...

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]: ...

    def result(self, handle: Any) -> RunResult: ...

    def close(self, cancel: bool = False) -> None: ...


def _worker_init(threads: int, parent: int) -> None:
    """Set the worker's torch threads and make it exit with the study process.

    The environment covers libraries that read it at import; torch may already be imported while the
    spawned worker unpickles this function, so its pool is sized directly too (two workers with two
    threads each on two cores run several times slower than with one each).
    """
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class LocalBackend:
    """`jobs` spawned worker processes on this machine; a crashed worker fails only its own runs."""

    def __init__(self, jobs: int = 1, threads: int | None = None) -> None:
        self.jobs = max(1, jobs)
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.jobs)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=get_context("spawn"),
                initializer=_worker_init,
                initargs=(self.threads, os.getpid()),
            )
        return self._pool

    def submit(self, fn: RunFn, run: Any) -> Future:
        try:
            return self._executor().submit(fn, run)
        except BrokenProcessPool:  # a worker died earlier: start a fresh pool
            self.close()
            return self._executor().submit(fn, run)

    def wait(self, handles: Sequence[Future], timeout: float) -> list[Future]:
        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Future) -> RunResult:
        try:
            return handle.result()
        except BrokenProcessPool:
            self.close()
            raise RuntimeError("the worker process running this run died (killed, or out of memory)") from None

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            if cancel:
                for proc in list(getattr(self._pool, "_processes", {}).values()):
                    proc.terminate()
            self._pool.shutdown(wait=not cancel, cancel_futures=True)
            self._pool = None


def _ray_call(fn: RunFn, run: Any, threads: int) -> RunResult:
    import torch

    torch.set_num_threads(threads)
    return fn(run)


class RayBackend:
    """Each run is one Ray task needing `num_cpus` and `num_gpus`: the same study runs on a Ray cluster.

    Connects to `address` (or `RAY_ADDRESS`) when given, else starts a local Ray with `num_cpus` CPUs.
    A run whose node dies is retried on another node (`node_retries` times): it resumes from its own
    checkpoint on shared storage, and the driver records its result once, when it arrives.
    """

    def __init__(
        self,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        address: str | None = None,
        local_cpus: int | None = None,
        node_retries: int = 3,
    ) -> None:
        from audiotransfer.cluster import check_gpus, connect, ray_module

        ray = self._ray = ray_module()
        self._started = connect(address, local_cpus)
        try:
            check_gpus(num_gpus)
        except UserError:
            self.close()
            raise
        self._task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=node_retries)(_ray_call)
        self._threads = max(1, int(num_cpus))

    def submit(self, fn: RunFn, run: Any) -> Any:
        return self._task.remote(fn, run, self._threads)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        ready, _ = self._ray.wait(list(handles), num_returns=1, timeout=timeout)
        return ready

    def result(self, handle: Any) -> RunResult:
        try:
            return self._ray.get(handle)
        except self._ray.exceptions.RayTaskError as exc:
            raise RuntimeError(str(exc.cause) if exc.cause else str(exc)) from None

    def close(self, cancel: bool = False) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_backend(
    name: str, jobs: int, num_cpus: float = 1.0, num_gpus: float = 0.0, address: str | None = None
) -> Backend:
    """The backend called `name` ('local' or 'ray')."""
    if name == "local":
        return LocalBackend(cap_jobs(jobs))
    if name == "ray":
        return RayBackend(num_cpus, num_gpus, address=address, local_cpus=max(jobs, int(num_cpus)))
    raise UserError(f"unknown backend {name!r}", fix="use --backend local or --backend ray")
