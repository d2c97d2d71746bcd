"""Ontology: loading, look-ups, DAG navigation and depths, on the real AudioSet files and a small fragment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiotransfer.errors import UserError
from audiotransfer.ontology import Ontology, load_ontology


@pytest.fixture(scope="module")
def audioset(audioset_dir: Path) -> Ontology:
    return Ontology.load(audioset_dir / "ontology.json", audioset_dir / "class_labels_indices.csv")


def write_fragment(folder: Path) -> tuple[Path, Path]:
    """Two roots; 'Shared child' has two parents; 'Beta one' is blacklisted; the first root is abstract."""
    classes = [
        {"id": "/x/root", "name": "Things", "child_ids": ["/x/a", "/x/b"], "restrictions": ["abstract"]},
        {"id": "/x/a", "name": "Alpha", "child_ids": ["/x/a1", "/x/shared"], "restrictions": []},
        {"id": "/x/b", "name": "Beta", "child_ids": ["/x/b1", "/x/shared"], "restrictions": []},
        {"id": "/x/a1", "name": "Alpha one", "child_ids": [], "restrictions": []},
        {"id": "/x/b1", "name": "Beta one", "child_ids": [], "restrictions": ["blacklist"]},
        {"id": "/x/shared", "name": "Shared child", "child_ids": [], "restrictions": []},
        {"id": "/x/other", "name": "Other", "child_ids": ["/x/o1"], "restrictions": []},
        {"id": "/x/o1", "name": "Other one", "child_ids": []},
    ]
    onto = folder / "ontology.json"
    onto.write_text(json.dumps(classes))
    labels = folder / "class_labels_indices.csv"
    rows = ["/x/a", "/x/a1", "/x/b", "/x/b1", "/x/shared", "/x/o1"]
    labels.write_text("index,mid,display_name\n" + "".join(f'{i},{m},"n{i}"\n' for i, m in enumerate(rows)))
    return onto, labels


def test_real_ontology_counts_and_roots(audioset: Ontology) -> None:
    assert len(audioset) == 632
    assert len(audioset.trainable) == 527
    assert audioset.trainable[0] == "/m/09x0r"
    assert [audioset.name(r) for r in audioset.roots] == [
        "Human sounds",
        "Animal",
        "Music",
        "Natural sounds",
        "Sounds of things",
        "Source-ambiguous sounds",
        "Channel, environment and background",
    ]
    assert max(audioset.depth(c.id) for c in audioset) == 5
    assert audioset["/m/0dgw9r"].abstract


def test_resolve_by_id_and_case_insensitive_name(audioset: Ontology) -> None:
    assert audioset.resolve("/m/09x0r") == "/m/09x0r"
    assert audioset.resolve("speech") == audioset.resolve("  SPEECH ") == "/m/09x0r"


def test_unknown_name_suggests_closest(audioset: Ontology) -> None:
    with pytest.raises(UserError) as err:
        audioset.resolve("Animl")
    assert "'Animal'" in err.value.message
    assert "ontology tree" in err.value.fix


def test_multi_parent_class(audioset: Ontology) -> None:
    choir = audioset.resolve("Choir")
    assert set(audioset.parents(choir)) == {audioset.resolve("Singing"), audioset.resolve("Musical instrument")}
    names = {audioset.name(a) for a in audioset.ancestors(choir)}
    assert {"Human sounds", "Music", "Singing", "Musical instrument", "Human voice"} <= names
    assert audioset.depth(choir) == 2  # shortest path: Music > Musical instrument > Choir
    assert {audioset.name(a) for a in audioset.ancestors_at_depth(choir, 1)} == {"Human voice", "Musical instrument"}
    assert choir in audioset.descendants(audioset.resolve("Human sounds"))
    assert choir in audioset.descendants(audioset.resolve("Music"))


def test_trainable_descendants(audioset: Ontology) -> None:
    speech = audioset.trainable_descendants(audioset.resolve("Speech"))
    assert len(speech) == 8 and speech[0] == "/m/09x0r"
    assert audioset.trainable_descendants(audioset.resolve("Human sounds"))[0] == "/m/09x0r"


def test_fragment_dag_and_default_trainable(tmp_path: Path) -> None:
    onto_path, labels_path = write_fragment(tmp_path)
    onto = Ontology.load(onto_path)  # no label index: not abstract, not blacklisted, file order
    assert onto.trainable == ["/x/a", "/x/b", "/x/a1", "/x/shared", "/x/other", "/x/o1"]
    with_labels = Ontology.load(onto_path, labels_path)
    assert with_labels.trainable == ["/x/a", "/x/a1", "/x/b", "/x/b1", "/x/shared", "/x/o1"]
    assert onto.roots == ["/x/root", "/x/other"]
    assert set(onto.parents("/x/shared")) == {"/x/a", "/x/b"}
    assert onto.ancestors("/x/shared") == {"/x/a", "/x/b", "/x/root"}
    assert onto.descendants("/x/root") == {"/x/a", "/x/b", "/x/a1", "/x/b1", "/x/shared"}
    assert onto.depth("/x/shared") == 2 and onto.depth("/x/other") == 0
    assert onto.ancestors_at_depth("/x/shared", 1) == {"/x/a", "/x/b"}
    assert onto.ancestors_at_depth("/x/a", 3) == {"/x/a"}
    assert onto["/x/b1"].blacklist and not onto["/x/a"].blacklist
    walked = [(level, node.id) for level, node in onto.walk("/x/root")]
    assert walked.count((2, "/x/shared")) == 2  # shown under both parents
    assert [n.id for _, n in onto.walk(max_depth=0)] == ["/x/root", "/x/other"]


def test_describe_and_tree_text(tmp_path: Path) -> None:
    onto = Ontology.load(*write_fragment(tmp_path))
    text = onto.describe("shared child")
    assert "Shared child (/x/shared)" in text
    assert "Alpha (/x/a); Beta (/x/b)" in text and "label #4" in text
    tree = onto.tree_text("Things", max_depth=1).splitlines()
    assert tree == ["  Things  /x/root  [5]", "  * Alpha  /x/a  [3]", "  * Beta  /x/b  [3]"]


def test_load_ontology_from_metadata_folder(tmp_path: Path) -> None:
    write_fragment(tmp_path)
    assert len(load_ontology(metadata=tmp_path).trainable) == 6
    with pytest.raises(UserError, match="no ontology given"):
        load_ontology()
    with pytest.raises(UserError, match="metadata folder not found"):
        load_ontology(metadata=tmp_path / "nope")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON (line 1"),
        ('{"id": "x"}', "expected a JSON list"),
        ('[{"id": "/x/a"}]', "lacks field 'id' or 'name'"),
        ('[{"id": "/x/a", "name": "A", "child_ids": ["/x/z"]}]', "names '/x/z', which is not in the file"),
        ('[{"id": "/x/a", "name": "A"}, {"id": "/x/a", "name": "B"}]', "'/x/a' appears twice"),
    ],
)
def test_bad_ontology_files(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "ontology.json"
    path.write_text(content)
    with pytest.raises(UserError) as err:
        Ontology.load(path)
    assert expected in err.value.message and str(path) in err.value.message


def test_missing_and_bad_label_files(tmp_path: Path) -> None:
    onto_path, labels_path = write_fragment(tmp_path)
    with pytest.raises(UserError, match="ontology file not found"):
        Ontology.load(tmp_path / "missing.json")
    with pytest.raises(UserError, match="label index file not found"):
        Ontology.load(onto_path, tmp_path / "missing.csv")
    labels_path.write_text('index,mid,display_name\n0,/x/a,"A"\n1,/m/unknown,"U"\n')
    with pytest.raises(UserError, match=r"not in the ontology, e\.g\. '/m/unknown'"):
        Ontology.load(onto_path, labels_path)
    labels_path.write_text("index,name\n0,A\n")
    with pytest.raises(UserError, match=r"missing column\(s\) \['mid'\]"):
        Ontology.load(onto_path, labels_path)
