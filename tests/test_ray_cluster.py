"""Ray for real: a multi-node Ray cluster on this machine (`ray.cluster_utils.Cluster`, a CPU-less head and
two 1-CPU worker nodes) runs distributed feature extraction and a tiny FSD50K study with the real training
engine; a worker node is killed mid-study, the driver is killed and restarted; bad addresses and missing
GPUs are clear errors. Every node stays on 127.0.0.1. A head started by `ray start --head` with token auth
runs the README's `study run --backend ray --ray-address` line; a driver without the token is told which
variables carry it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import audiotransfer
from audiotransfer.cli import main
from audiotransfer.data.features import get_recipe
from audiotransfer.data.store import FeatureStore, extract_features
from audiotransfer.errors import UserError

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
SRC = str(Path(audiotransfer.__file__).resolve().parents[1])
RECIPE = get_recipe("demo")


def test_an_address_that_does_not_answer_is_a_clear_error() -> None:
    from audiotransfer.cluster import connect

    if ray.is_initialized():
        ray.shutdown()
    start = time.monotonic()
    with pytest.raises(UserError, match="does not answer within 2 s") as info:
        connect("127.0.0.1:9", timeout_s=2)
    assert time.monotonic() - start < 10 and "ray start --head" in info.value.fix
    with pytest.raises(UserError, match="not host:port"):
        connect("headnode", timeout_s=2)


def _node_addresses() -> set[str]:
    return {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}


def test_a_local_ray_stays_on_loopback() -> None:
    from audiotransfer.cluster import connect

    if ray.is_initialized():
        ray.shutdown()
    assert connect(local_cpus=1)
    try:
        assert _node_addresses() == {"127.0.0.1"}
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    from ray.cluster_utils import Cluster

    # nodes inherit this environment: workers import this checkout, one torch thread each
    os.environ["PYTHONPATH"] = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])
    os.environ["OMP_NUM_THREADS"] = "1"
    small = {"object_store_memory": 80 * 1024**2}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **small})
    for _ in range(2):
        cluster.add_node(num_cpus=1, **small)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def fsd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_corpus_fsd50k import fsd50k_tree

    return fsd50k_tree(tmp_path_factory.mktemp("fsd") / "FSD50K")


def _same_features(a: FeatureStore, b: FeatureStore) -> None:
    assert sorted(a.clip_ids) == sorted(b.clip_ids)
    for clip in a.clip_ids:
        np.testing.assert_array_equal(a.read(int(a.rows([clip])[0])), b.read(int(b.rows([clip])[0])))


def test_every_node_of_the_cluster_is_on_loopback(cluster: object) -> None:
    assert len(ray.nodes()) == 3 and _node_addresses() == {"127.0.0.1"}
    assert cluster.address.startswith("127.0.0.1:")  # type: ignore[attr-defined]


def test_a_cluster_without_gpus_refuses_num_gpus(cluster: object) -> None:
    from audiotransfer.study.backends import RayBackend

    with pytest.raises(UserError, match="asks for num_gpus=1 but the Ray cluster has 0 GPUs"):
        RayBackend(num_gpus=1, address=cluster.address)  # type: ignore[attr-defined]


def test_distributed_extraction_reads_like_a_local_one_and_resumes(
    cluster: object, fsd: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from audiotransfer.data.corpora import load_corpus
    from audiotransfer.data.extract_ray import PARTS, extract_distributed, extract_part

    manifest = load_corpus("fsd50k", fsd)
    local = extract_features(manifest, tmp_path / "local", RECIPE, progress=False)
    spread = extract_distributed(manifest, tmp_path / "ray", RECIPE, clips_per_task=8, progress=False)
    assert not (tmp_path / "ray" / PARTS).exists() and len(list((tmp_path / "ray" / "shards").glob("*.bin"))) >= 5
    _same_features(local, spread)
    assert (
        main(
            [
                "features",
                "extract",
                "fsd50k",
                "--root",
                str(fsd),
                "--store",
                str(tmp_path / "cli"),
                "--recipe",
                "demo",
                "--backend",
                "ray",
                "--clips-per-task",
                "16",
            ]
        )
        == 0
    )  # the connected cluster
    _same_features(local, FeatureStore(tmp_path / "cli"))

    # what an interrupted extraction leaves: two finished parts, one with an uncommitted tail, one whose
    # shard a dead worker left short
    store = tmp_path / "resumed"
    for i, rows in enumerate((np.arange(0, 10), np.arange(10, 20))):
        extract_part(manifest.take(rows), store / PARTS / f"{i:05d}", RECIPE, 1, "skip")
    with open(store / PARTS / "00000" / "shards" / "00000.bin", "ab") as handle:
        handle.write(b"\0" * 1000)  # an uncommitted tail: ignored
    short = store / PARTS / "00001" / "shards" / "00000.bin"
    os.truncate(short, short.stat().st_size // 2)  # a partial file: its lost clips are extracted again
    caplog.clear()
    resumed = extract_distributed(manifest, store, RECIPE, clips_per_task=8, progress=False)
    err = caplog.text
    assert "clips' bytes are missing from their shard" in err
    kept = re.search(r"features: (\d+) of 40 clips in .* \((\d+) from parts", err)
    assert kept and kept[1] == kept[2] and 10 < int(kept[1]) < 20  # part 0 whole, part 1 up to its cut
    _same_features(local, resumed)


def _attempts(out: Path) -> dict[str, list[dict]]:
    return {
        str(p.parent.relative_to(out / "runs")): [json.loads(x) for x in p.read_text().splitlines()]
        for p in (out / "runs").rglob("attempts.jsonl")
    }


def _study(folder: Path, fsd: Path) -> Path:
    """Two FSD50K states (Animal, a fraction) and scratch, fine-tuned on FSD50K tagging: 5 runs."""
    from test_corpus_fsd50k import fsd50k_study

    return fsd50k_study(
        folder, fsd, states={"animal": {"categories": ["Animal"]}, "half": {"fraction": 0.5}}, resources={"num_cpus": 1}
    )


def _finished(run_dir: Path) -> bool:
    metrics = run_dir / "metrics.json"
    return metrics.exists() and json.loads(metrics.read_text())["status"] == "done"


def test_study_runs_across_nodes_and_survives_a_node_loss(cluster: object, fsd: Path, tmp_path: Path) -> None:
    import threading

    from audiotransfer.study import ResultStore, run

    path = _study(tmp_path, fsd)
    out = tmp_path / "out"
    victim = cluster.list_all_nodes()[-1]  # type: ignore[attr-defined]
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.update(outcome=run(path, jobs=2, backend="ray", progress=False)))
    worker.start()
    killed = None
    deadline = time.monotonic() + 150
    while killed is None and worker.is_alive() and time.monotonic() < deadline:
        for run_id, lines in _attempts(out).items() if (out / "runs").exists() else []:
            if lines[-1]["ray_node"] == victim.node_id and not _finished(out / "runs" / run_id):
                cluster.remove_node(victim, allow_graceful=False)  # type: ignore[attr-defined]
                killed = run_id
                break
        time.sleep(0.05)
    worker.join(timeout=240)
    cluster.add_node(num_cpus=1, object_store_memory=80 * 1024**2)  # type: ignore[attr-defined]
    outcome = result["outcome"]
    assert killed is not None, "no run was seen on the node to kill"
    assert outcome.ok, outcome.failed  # type: ignore[attr-defined]
    attempts = _attempts(out)
    nodes = {line["ray_node"] for lines in attempts.values() for line in lines}
    assert len(nodes) >= 2  # runs ran on both worker nodes
    assert len(attempts[killed]) == 2 and attempts[killed][1]["ray_node"] != victim.node_id  # retried elsewhere
    runs = ResultStore(out / "results.sqlite").runs()
    assert len(runs) == 5 and runs["run_id"].is_unique and set(runs["status"]) == {"done"}
    assert not list((out / "stores").rglob("parts"))  # features were extracted by Ray tasks and merged


def test_a_killed_driver_resumes_when_restarted(cluster: object, fsd: Path, tmp_path: Path) -> None:
    from audiotransfer.study import ResultStore

    path = _study(tmp_path, fsd)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "audiotransfer.cli",
        "study",
        "run",
        str(path),
        "--backend",
        "ray",
        "--jobs",
        "2",
        "--no-progress",
        "--ray-address",
        cluster.address,
    ]  # type: ignore[attr-defined]
    env = {**os.environ, "RAY_ADDRESS": ""}
    driver = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 150
    recorded = set()
    while time.monotonic() < deadline and driver.poll() is None and not recorded:
        if (out / "results.sqlite").exists():
            runs = ResultStore(out / "results.sqlite").runs()
            recorded = set(runs.loc[runs["status"] == "done", "run_id"]) if len(runs) else set()
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    runs = ResultStore(out / "results.sqlite").runs()
    finished_before = set(runs.loc[runs["status"] == "done", "run_id"])
    assert finished_before and len(finished_before) < 5
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    runs = ResultStore(out / "results.sqlite").runs()
    assert len(runs) == 5 and runs["run_id"].is_unique and set(runs["status"]) == {"done"}
    attempts = _attempts(out)
    for run_id in finished_before:
        assert len(attempts[run_id]) == 1  # finished work is not trained again


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(head: subprocess.Popen) -> None:
    """Stop one `ray start --head --block` and the processes it started (its own session), nothing else."""
    try:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)  # whatever of its session is left
    head.wait()


def test_the_readme_recipe_with_token_auth(fsd: Path, tmp_path: Path) -> None:
    """`ray start --head` with a token (own temp dir, port and HOME), then the README's study line."""
    from audiotransfer.study import ResultStore

    token, port = secrets.token_hex(32), _free_port()
    home, temp = tmp_path / "home", Path(f"/tmp/rt{secrets.token_hex(4)}")  # Ray's socket paths must be short
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            "--port",
            str(port),
            "--temp-dir",
            str(temp),
            "--num-cpus",
            "1",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--block",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        path = fsd50k_small_study(tmp_path / "study", fsd)
        line = [
            sys.executable,
            "-m",
            "audiotransfer.cli",
            "study",
            "run",
            str(path),
            "--backend",
            "ray",
            "--ray-address",
            f"127.0.0.1:{port}",
            "--no-progress",
        ]
        without = {k: v for k, v in env.items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE")}
        refused = subprocess.run(line, env=without, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
        for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token", "RAY_AUTH_MODE"):
            assert name in refused.stderr
        done = subprocess.run(line, env=env, capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        _stop(head)
        shutil.rmtree(temp, ignore_errors=True)
    out = tmp_path / "study" / "out"
    runs = ResultStore(out / "results.sqlite").runs()
    assert len(runs) == 3 and runs["run_id"].is_unique and set(runs["status"]) == {"done"}
    attempts = _attempts(out)
    assert sorted(attempts) == sorted(runs["run_id"]) and all(len(a) == 1 for a in attempts.values())
    assert not (home / ".ray" / "auth_token").exists()  # the token came from the environment, as told


def fsd50k_small_study(folder: Path, fsd: Path) -> Path:
    """One FSD50K state and scratch, fine-tuned on FSD50K tagging: 3 runs."""
    from test_corpus_fsd50k import fsd50k_study

    return fsd50k_study(folder, fsd, states={"half": {"fraction": 0.5}}, resources={"num_cpus": 1})
