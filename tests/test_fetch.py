"""Downloads: served from a local HTTP server (127.0.0.1, random port) holding the shared metadata copies."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from audiotransfer.cli import main
from audiotransfer.errors import UserError
from audiotransfer.ontology import Ontology, fetch_file, fetch_metadata, fetch_ontology
from audiotransfer.ontology.fetch import KNOWN_MD5, STANDARD_FILES


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        CountingHandler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server(audioset_dir: Path) -> Iterator[str]:
    handler = functools.partial(CountingHandler, directory=str(audioset_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    CountingHandler.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_metadata_checks_md5_and_caches(server: str, tmp_path: Path) -> None:
    paths = fetch_metadata(tmp_path / "cache", base_url=server, progress=False)
    assert sorted(paths) == sorted(STANDARD_FILES)
    for name, path in paths.items():
        assert hashlib.md5(path.read_bytes()).hexdigest() == KNOWN_MD5[name]
    assert len(CountingHandler.requests) == 4
    fetch_metadata(tmp_path / "cache", base_url=server, progress=False)
    assert len(CountingHandler.requests) == 4  # cached: nothing downloaded again
    onto = Ontology.load(paths["ontology.json"], paths["class_labels_indices.csv"])
    assert len(onto.trainable) == 527
    assert not list((tmp_path / "cache").glob(".*part"))


def test_corrupt_cache_is_replaced(server: str, tmp_path: Path) -> None:
    (tmp_path / "ontology.json").write_text("[]")
    path = fetch_ontology(tmp_path, url=f"{server}/ontology.json", progress=False)
    assert hashlib.md5(path.read_bytes()).hexdigest() == KNOWN_MD5["ontology.json"]


def test_wrong_md5_leaves_nothing_behind(server: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="expected 0123"):
        fetch_file(f"{server}/eval_segments.csv", tmp_path, md5="0123", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_and_unknown(server: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="download failed") as err:
        fetch_file(f"{server}/missing.csv", tmp_path, progress=False)
    assert "by hand" in err.value.fix
    with pytest.raises(UserError, match=r"unknown AudioSet metadata file 'x\.csv'"):
        fetch_metadata(tmp_path, files=["x.csv"], base_url=server)


def test_cli_fetch(server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ontology", "fetch", str(tmp_path), "--base-url", server]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(tmp_path / name) for name in STANDARD_FILES]
