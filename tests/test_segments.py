"""Segment lists: the official format, combined lists, every malformed-input error, availability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiotransfer.errors import UserError
from audiotransfer.ontology import filter_available, read_label_index, read_segments
from audiotransfer.ontology.segments import stable_keys

HEADER = "# Segments csv\n# num_ytids=3\n# YTID, start_seconds, end_seconds, positive_labels\n"
LABELS = ["/x/a", "/x/b", "/x/c"]


def write(path: Path, body: str) -> Path:
    path.write_text(HEADER + body)
    return path


@pytest.fixture(scope="module")
def labels(audioset_dir: Path) -> list[str]:
    return read_label_index(audioset_dir / "class_labels_indices.csv")


def test_real_balanced_list(audioset_dir: Path, labels: list[str]) -> None:
    segments = read_segments(audioset_dir / "balanced_train_segments.csv", labels)
    assert len(segments) == 22160
    assert segments.labels.shape == (22160, 527)
    assert segments.labels.nnz == 52882  # num_positive_labels in the file's header
    assert segments.ytid[0].as_py() == "--PJHxphWEs"
    assert (segments.start[0], segments.end[0]) == (30.0, 40.0)
    assert [labels[j] for j in segments.labels[0].indices] == ["/m/09x0r", "/t/dd00088"]
    assert (segments.clips_per_label() >= 59).all()


def test_combined_lists_and_duplicates(audioset_dir: Path, labels: list[str]) -> None:
    balanced, evaluation = audioset_dir / "balanced_train_segments.csv", audioset_dir / "eval_segments.csv"
    both = read_segments([balanced, evaluation], labels)
    assert len(both) == 22160 + 20371
    assert both.sources == [str(balanced), str(evaluation)]
    with pytest.raises(UserError) as err:
        read_segments([balanced, balanced], labels)
    assert "'--PJHxphWEs' is listed twice" in err.value.message


def test_small_list_quoting_spaces_and_numeric_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", '00012, 0.000, 10.000, "/x/a, /x/c"\n00013, 5, 9.5, "/x/b,/x/b"\n\n')
    segments = read_segments(path, LABELS)
    assert segments.ytid.to_pylist() == ["00012", "00013"]
    assert segments.labels.toarray().tolist() == [[True, False, True], [False, True, False]]
    assert segments.labels.nnz == 3  # repeated label counted once
    assert segments.end.tolist() == [10.0, 9.5]
    sub = segments.take(np.array([False, True]))
    assert sub.ytid.to_pylist() == ["00013"] and sub.labels.shape == (1, 3)


def test_header_only_list_is_empty(tmp_path: Path) -> None:
    segments = read_segments(write(tmp_path / "s.csv", ""), LABELS)
    assert len(segments) == 0 and segments.labels.shape == (0, 3)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('a, 0, 10, "/x/a"\nb, 0, 10, "/x/a", extra\n', "line 5 is malformed"),
        ('a, 0, 10, "/x/a"\nb, 0, 10\n', "line 5: missing field"),
        ('a, 0, 10, "/x/a"\n\nb, zero, 10, "/x/a"\n', "line 6: start/end is not a number"),
        ('a, 0, 10, "/x/a"\nb, 0, 10, "/x/a,/m/nope"\n', "line 5: label '/m/nope' is not in the label index"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path / "bad.csv", body)
    with pytest.raises(UserError) as err:
        read_segments(path, LABELS)
    assert str(path) in err.value.message
    assert expected in err.value.message
    assert "YTID, start_seconds" in err.value.fix or "--labels" in err.value.fix


def test_missing_file_and_no_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="segment list not found"):
        read_segments(tmp_path / "nope.csv", LABELS)
    with pytest.raises(UserError, match="no segment list given"):
        read_segments([], LABELS)


def test_stable_keys_are_pinned_and_nest() -> None:
    # Pinned: the same (seed, id) must give the same key on every machine and version.
    assert stable_keys(["--PJHxphWEs", "abc"], 42).tolist() == [0.14163649598353012, 0.8562070608772138]
    keys = stable_keys([f"id{i}" for i in range(20000)], 7)
    assert keys.min() >= 0.0 and keys.max() < 1.0
    assert abs(keys.mean() - 0.5) < 0.01
    assert not np.array_equal(keys, stable_keys([f"id{i}" for i in range(20000)], 8))


def test_filter_available_from_folder_and_id_file(tmp_path: Path) -> None:
    rows = "".join(f'id{i}, 30.000, 40.000, "{LABELS[i % 3]}"\n' for i in range(6))
    segments = read_segments(write(tmp_path / "s.csv", rows), LABELS)
    audio = tmp_path / "audio" / "sub"
    audio.mkdir(parents=True)
    for name in ("Yid0.wav", "id1_30.000_40.000.flac", "id3.wav", "unrelated.txt"):
        (audio / name).write_bytes(b"")
    kept, report = filter_available(segments, tmp_path / "audio")
    assert kept.ytid.to_pylist() == ["id0", "id1", "id3"]
    assert (report.num_listed, report.num_present, report.num_missing) == (6, 3, 3)
    assert report.missing_per_label.to_dict() == {"/x/a": 0, "/x/b": 1, "/x/c": 2}
    id_file = tmp_path / "ids.txt"
    id_file.write_text("id5\nid2\n\n")
    assert filter_available(segments, id_file)[0].ytid.to_pylist() == ["id2", "id5"]
    assert filter_available(segments, ["id4"])[1].num_present == 1
    with pytest.raises(UserError, match="availability source not found"):
        filter_available(segments, tmp_path / "nowhere")
