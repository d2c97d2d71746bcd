"""The report over a small written study: renders finished, partial and empty studies; opens in Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import sparse

from audiotransfer.analysis import analyse, write_analysis, write_report
from audiotransfer.analysis.factors import FACTORS
from audiotransfer.data.features import RECIPES
from audiotransfer.data.store import write_store
from audiotransfer.manifest import Manifest
from audiotransfer.models import create_model
from audiotransfer.study.spec import SCRATCH
from audiotransfer.study.store import ResultStore
from audiotransfer.training.checkpoint import save_model
from audiotransfer.training.result import RunResult

RECIPE = RECIPES["demo"]
FRAMES = 32
LABELS = [f"/m/l{i}" for i in range(6)]
# state -> (label indices, clips): ontology-like subsets and a fraction of the full set
STATES = {
    "full": (range(6), 120),
    "nature": ([0, 1], 60),
    "things": ([2, 3, 4], 80),
    "human": ([5], 40),
    "frac": (range(6), 30),
}
CHROMIUM = Path("/usr/bin/chromium")
# the states' categories in the synthetic world's ontology fragment (for the ontology view), and which
# states "share material" with the task (the heat map outlines them)
CATEGORIES = {"nature": ["Natural sounds"], "things": ["Sounds of things"], "human": ["Human sounds"]}
MATCHED = {"scenes": {"nature", "things"}}


def _data(
    root: Path,
    name: str,
    labels: list[str],
    n: int,
    split: str,
    rng: np.random.Generator,
    task_type: str = "multilabel",
) -> tuple[Path, Path]:
    """A manifest of n clips over `labels` and a store of random log-mels for them."""
    ids = [f"{name}_{i}" for i in range(n)]
    hot = rng.integers(0, len(labels), n)
    targets = sparse.csr_matrix((np.ones(n, bool), (np.arange(n), hot)), shape=(n, len(labels)))
    splits = [split if split != "test" or i % 2 else "train" for i in range(n)]
    manifest = Manifest(
        name,
        pd.DataFrame({"clip_id": ids, "split": splits}),
        labels,
        targets,
        task_type=task_type,
        meta={"clip_seconds": (FRAMES - 1) * RECIPE.hop_length / RECIPE.sample_rate},
    )
    path = manifest.save(root / "manifests")
    shift = rng.normal(size=RECIPE.n_mels)  # each data set its own spectral tilt
    store = root / "stores" / name
    write_store(
        store, RECIPE, name, {c: (rng.normal(size=(FRAMES, RECIPE.n_mels)) + shift).astype(np.float32) for c in ids}
    )
    return path, store


def _model(num_classes: int, seed: int):
    import torch

    torch.manual_seed(seed)
    return create_model("cnn6", num_classes, width=0.125, n_mels=RECIPE.n_mels)


def _record(
    run_id: str, kind: str, state: str, task: str | None = None, protocol: str | None = None, seed: int | None = None
) -> dict:
    return dict(run_id=run_id, kind=kind, state=state, task=task, protocol=protocol, seed=seed, config={})


def make_study(
    root: Path,
    seeds: tuple[int, ...] = (1, 2, 3),
    ghost: bool = False,
    states: tuple[str, ...] = tuple(STATES),
    corpus: str = "synthetic_scenes",
) -> Path:
    """A finished study: pre-trained states + scratch, two tasks (one without finished runs), planted scores."""
    rng = np.random.default_rng(0)
    chosen = {s: STATES[s] for s in states}
    store = ResultStore(root / "results.sqlite")
    store.claim({"name": "tiny-study"}, str(root / "study.yaml"))
    task_manifest, task_store = _data(root, "scenes", ["a", "b", "c"], 40, "test", rng, "multiclass")
    store.put_task(
        "scenes",
        corpus=corpus,
        task_type="multiclass",
        num_classes=3,
        manifest_path=task_manifest,
        store_path=task_store,
        frames=FRAMES,
    )
    runs = []
    for k, (state, (idx, n)) in enumerate(chosen.items()):
        labels = [LABELS[i] for i in idx]
        mpath, spath = _data(root, state, labels, n, "train", rng)
        folder = root / "runs" / "pretrain" / state
        folder.mkdir(parents=True)
        save_model(folder / "model.pt", _model(len(labels), k), labels=labels, kind="pretrain")
        store.put_state(
            state,
            corpus="synthetic",
            num_clips=n,
            num_classes=len(labels),
            manifest_path=mpath,
            store_path=spath,
            checkpoint=folder / "model.pt",
            labels=labels,
        )
        runs.append(_record(f"pretrain/{state}", "pretrain", state))
    finetuned = [*chosen, SCRATCH] + (["ghost"] if ghost else [])
    for state in finetuned:
        for seed in seeds:
            runs.append(
                _record(f"finetune/{state}/scenes/finetune/seed{seed}", "finetune", state, "scenes", "finetune", seed)
            )
    runs.append(_record("finetune/full/birds/finetune/seed1", "finetune", "full", "birds", "finetune", 1))
    runs += [
        _record(f"finetune/{s}/scenes/linear/seed{seed}", "finetune", s, "scenes", "linear", seed)
        for s in finetuned
        for seed in seeds
    ]  # a second protocol: scores only, no model files
    store.register(runs)
    _spec(root, chosen)
    for state in chosen:
        store.mark_done(f"pretrain/{state}", RunResult(test={"mAP": 0.3}, duration_s=1.0))
    for k, state in enumerate(finetuned):
        base = 0.4 if state == SCRATCH else 0.5 + 0.01 * np.log10(STATES.get(state, ((), 10))[1]) + 0.02 * k
        for seed in seeds:
            run_id = f"finetune/{state}/scenes/finetune/seed{seed}"
            folder = root / "runs" / run_id
            folder.mkdir(parents=True)
            save_model(folder / "model.pt", _model(3, 100 + 10 * k + seed), labels=["a", "b", "c"])
            uar = base + 0.01 * rng.normal()
            store.mark_done(run_id, RunResult(test={"uar": uar, "accuracy": uar + 0.05}, duration_s=1.0))
            uar = base - 0.05 + 0.01 * rng.normal()
            store.mark_done(f"finetune/{state}/scenes/linear/seed{seed}", RunResult(test={"uar": uar}, duration_s=1.0))
    return root


def _spec(root: Path, states: dict) -> None:
    """`study.yaml` as the demo writes it: the states' subset fields and the ontology they refer to."""
    from audiotransfer.data.synthetic import fragment_path

    fields = {
        s: {"categories": CATEGORIES[s]} if s in CATEGORIES else ({"fraction": 0.25} if s == "frac" else {})
        for s in states
    }
    (root / "world").mkdir()
    shutil.copy(fragment_path(), root / "world" / "ontology.json")  # relative to the study, as the demo writes it
    (root / "study.yaml").write_text(
        yaml.safe_dump(
            {"name": "tiny-study", "pretraining": {"metadata": {"ontology": "world/ontology.json"}, "states": fields}}
        )
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = make_study(tmp_path_factory.mktemp("study"))
    return root, write_report(root, max_inputs=24, batch_size=8, progress=False, matched=MATCHED)


@pytest.mark.slow
def test_report_of_a_finished_study(finished):
    root, out = finished
    assert out["html"] == root / "report" / "index.html" and out["markdown"] == root / "report" / "summary.md"
    html = out["html"].read_text()
    md = out["markdown"].read_text()
    assert html.count("data:image/png;base64,") >= 6 and html.count("<script") == 1 and "<script src" not in html
    assert "src='figures" not in html  # self-contained: no file references
    for figure in (
        "score_vs_samples",
        "score_vs_classes",
        "score_vs_similarity",
        "gain_finetune",
        "gain_linear",
        "forest",
        "ontology_finetune",
        "weight_distance",
        "data_label_share",
        "cka_scenes",
        "cka_layers_scenes",
    ):
        assert (root / "report" / "figures" / f"{figure}.png").exists(), figure
        assert (root / "report" / "figures" / f"{figure}.svg").exists(), figure
    summary = json.loads(out["json"].read_text())
    assert len(out["headline"]) == 3 and summary["headline"] == out["headline"]
    assert [line.split(":")[0].strip() for line in out["headline"]] == ["samples", "classes", "similarity"]
    gains = {(g["state"], g["protocol"]): g for g in summary["gains"]}
    assert {g["method"] for g in gains.values()} == {"paired (3 seeds)"}
    assert f"| frac | {gains['frac', 'finetune']['gain']:+.3f} [{gains['frac', 'finetune']['ci_low']:+.3f}, " in md
    # the outputs in step: the one-sentence answer, the compact factor table (2 pooled + 2 per-task fits x 3
    # factors), the matched states and the first-screen figures in every format
    assert summary["sentence"] == out["sentence"] and out["sentence"] in md
    best = max((g for g in summary["gains"] if g["protocol"] == "finetune"), key=lambda g: g["gain"])
    assert best["state"] == "frac" and best["ci_low"] > 0  # frac is planted best, clearly above scratch
    assert len(summary["regressions"]) == 12 and {r["factor"] for r in summary["regressions"]} == set(FACTORS)
    assert summary["matched"] == {"scenes": ["nature", "things"]} and len(summary["gains"]) == 10
    assert "figures/gain_linear.png" in md and "figures/ontology_finetune.png" in md
    assert html.index("id='answer'") < html.index("id='ontology'") < html.index("id='method'")
    assert any("'birds'" in note for note in summary["notes"]) and all(f"- {n}" in md for n in summary["notes"])
    # measured tables: CKA of each state with itself is absent, before/after pairs present, cache written
    assert (root / "report" / "cache" / "cka_scenes_finetune.json").exists()
    assert "| a | conv_block1 | conv_block2 | conv_block3 | conv_block4 | embedding |" in md  # state x block


@pytest.mark.slow  # builds a whole study (the `finished` fixture)
def test_report_rerun_reuses_cached_measures(finished):
    root, _ = finished
    cache = root / "report" / "cache" / "data_similarity.json"
    before = cache.stat().st_mtime_ns
    write_report(root, max_inputs=24, batch_size=8, progress=False)
    assert cache.stat().st_mtime_ns == before


@pytest.mark.slow  # builds a whole study (the `finished` fixture)
def test_sections_a_caller_adds_reach_every_report_file(finished):
    root, _ = finished
    a = analyse(root, max_inputs=24, batch_size=8, progress=False)
    a.sections.append(("Checks of my own", ["first <check>: agrees", "second check: DISAGREES"]))
    out = write_analysis(a)
    assert "## Checks of my own\n\n- first <check>: agrees\n- second check: DISAGREES" in out["markdown"].read_text()
    assert "<h2>Checks of my own</h2><ul><li>first &lt;check&gt;: agrees</li>" in out["html"].read_text()
    assert json.loads(out["json"].read_text())["sections"] == {"Checks of my own": a.sections[0][1]}


def test_report_says_what_is_missing(tmp_path):
    root = make_study(tmp_path, seeds=(1,), ghost=True, states=("full", "nature", "frac"))
    shutil.rmtree(root / "stores" / "nature")  # a deleted feature store: measured without it
    out = write_report(root, max_inputs=16, batch_size=8, progress=False)
    md = out["markdown"].read_text()
    summary = json.loads(out["json"].read_text())
    for missing in ("'nature'", "'ghost'"):  # a deleted store, a state the store does not know
        assert any(missing in note for note in summary["notes"])
    assert all(f"- {n}" in md for n in summary["notes"])
    assert {s["n_seeds"] for s in summary["scores"]} == {1} and all(s["ci_low"] is None for s in summary["scores"])
    assert "[n/a] (n=1)" in md
    assert len(out["headline"]) == 3


@pytest.mark.slow
def test_report_shows_published_numbers_when_the_study_is_the_papers(tmp_path):
    root = make_study(tmp_path, seeds=(1, 2), states=("full", "human", "frac"), corpus="dcase2020_task1a")
    out = write_report(root, max_inputs=8, batch_size=8, progress=False)
    html = out["html"].read_text()
    assert "id='reference'" in html and "Published results" in html
    rows = {(r["state"], r["task"]): r for r in json.loads(out["json"].read_text())["reference"]}
    assert set(rows) == {("full", "scenes"), ("human", "scenes"), ("scratch", "scenes")}
    assert rows[("human", "scenes")]["published"] == pytest.approx(0.59)  # AS-humansounds, DCASE2020 Task 1A
    assert rows[("full", "scenes")]["difference"] == pytest.approx(rows[("full", "scenes")]["yours"] - 0.6261)


def test_report_without_a_study_run(tmp_path):
    (tmp_path / "study.yaml").write_text("name: nothing\n")
    out = write_report(tmp_path, progress=False)
    md = out["markdown"].read_text()
    summary = json.loads(out["json"].read_text())
    assert summary["scores"] == [] and summary["gains"] == [] and summary["regressions"] == []
    assert len(summary["notes"]) == 1 and f"- {summary['notes'][0]}" in md
    assert all("not estimable" in line for line in out["headline"])
    assert "<h1>" in out["html"].read_text()


VIEW = {"width": 1280, "height": 800}
MAX_BYTES = 3_000_000
# what is drawn where, measured in the page: box of an element, overflowing elements, images, scripts' errors
PROBE = """() => {
  const box = (sel) => { const e = document.querySelector(sel); if (!e) return null;
    const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,
    width: r.width, height: r.height}; };
  const width = document.documentElement.clientWidth;
  const over = [...document.body.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > width + 1)
    .map(e => e.tagName + '.' + e.className);
  return {answer: box('.answer'), heat: box('#heat0p img'), forest: box('.first img[alt^="Pooled"]'),
          scrollWidth: document.documentElement.scrollWidth, width: width, overflowing: over,
          images: document.images.length,
          broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
          onto: document.querySelectorAll('#onto0p img').length};
}"""


def _inside(box: dict | None) -> bool:
    return (
        box is not None
        and box["height"] > 50
        and box["top"] >= 0
        and box["left"] >= 0
        and box["bottom"] <= VIEW["height"]
        and box["right"] <= VIEW["width"]
    )


@pytest.mark.slow  # builds a whole study (the `finished` fixture)
def test_report_first_screen_in_headless_chromium(finished, tmp_path):
    """At 1280x800 the answer, the heat map and the forest plot are on the first screen, nothing overflows
    sideways, every image loads, no script error, the page is self-contained and small; the protocol tabs work."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium'; scripts/setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    root, _ = finished  # written again: other tests rewrite the report without the matched states
    out = write_report(root, max_inputs=24, batch_size=8, progress=False, matched=MATCHED)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport=VIEW)
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "request",
            lambda req: errors.append(f"fetched {req.url}") if not req.url.startswith(("file:", "data:")) else None,
        )
        page.goto(out["html"].as_uri())
        seen = page.evaluate(PROBE)
        page.screenshot(path=str(tmp_path / "first_screen.png"))
        page.click("label[for=heat1]")  # the second protocol's heat map
        linear = page.evaluate("document.querySelector('#heat1p img').getBoundingClientRect().height")
        hidden = page.evaluate("document.querySelector('#heat0p img').getBoundingClientRect().height")
        page.screenshot(path=str(tmp_path / "whole_page.png"), full_page=True)
        page.emulate_media(media="print")
        page.evaluate("dispatchEvent(new Event('beforeprint'))")
        printed = page.evaluate(
            "[...document.querySelectorAll('.tabs .panel img')].every(i => i.height > 0) && "
            "[...document.querySelectorAll('details')].every(d => d.open)"
        )
        title = page.title()
        browser.close()
    assert errors == []
    assert _inside(seen["answer"]) and _inside(seen["heat"]) and _inside(seen["forest"]), seen
    assert seen["scrollWidth"] <= VIEW["width"] and seen["overflowing"] == [], seen
    assert seen["images"] >= 8 and seen["broken"] == 0 and seen["onto"] == 1
    assert linear > 50 and hidden == 0 and printed  # one protocol at a time on screen; in print all, tables open
    assert out["html"].stat().st_size <= MAX_BYTES
    assert "tiny-study" in title and (tmp_path / "first_screen.png").stat().st_size > 10_000


def test_model_cka_identical_models_agree_at_every_block():
    from audiotransfer.analysis.cka import model_cka

    x = np.random.default_rng(1).normal(size=(24, FRAMES, RECIPE.n_mels)).astype(np.float32)
    models = {"a": _model(3, 0), "a_copy": _model(3, 0), "b": _model(3, 1)}
    acc = model_cka(models, (x[i : i + 8] for i in range(0, 24, 8)), progress=False)
    assert acc.num_inputs == 24 and acc.blocks == models["a"].block_names
    for block in acc.blocks:
        mat = acc.matrix(block)
        assert mat.loc["a", "a_copy"] == pytest.approx(1.0, abs=1e-6)
        assert mat.loc["a", "b"] < 0.999


@pytest.mark.slow  # builds a whole study (the `finished` fixture)
def test_cli_study_report(finished, capsys, tmp_path):
    from audiotransfer.cli import main

    root, _ = finished
    assert main(["study", "report", str(root), "--max-inputs", "24", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"report (html): {root / 'report' / 'index.html'}" in out and "samples vs classes vs similarity" in out
    assert main(["study", "report", str(tmp_path / "nowhere")]) == 2  # a UserError, not a traceback
    assert "study directory not found" in capsys.readouterr().err


def test_score_plot_axis_stops_at_the_metric_bounds():
    from audiotransfer.analysis import plots

    summary = pd.DataFrame(
        {
            "state": ["a", "b", "c"],
            "task": "t",
            "mean": [0.95, 0.97, 0.5],
            "ci_low": [0.9, 0.93, 0.0],
            "ci_high": [1.0, 1.0, 1.0],
            "samples": [10, 100, 1000],
        }
    )
    seeds = summary[["state", "task", "samples"]].assign(value=[0.99, 1.0, 0.02])
    fig = plots.score_vs_factor(seeds, summary, "samples", "uar", bounds=(0.0, 1.0))
    low, high = fig.axes[0].get_ylim()
    assert low >= 0.0 and high <= 1.0
    assert fig.legends and [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b", "c"]  # no labels on points
    assert not fig.axes[0].texts


def test_renderers_read_only_the_report_model(tmp_path):
    """A Report built by hand (no study) renders in all three formats: sections in page order, absent
    sections left out of the table of contents, numbers as the model holds them."""
    from audiotransfer.analysis.render_html import render_html
    from audiotransfer.analysis.render_json import summary
    from audiotransfer.analysis.render_markdown import render_markdown
    from audiotransfer.analysis.report_model import Report, Section, Table

    gains = pd.DataFrame(
        {
            "state": ["a"],
            "task": ["t"],
            "protocol": ["finetune"],
            "gain": [0.125],
            "ci_low": [np.nan],
            "ci_high": [np.nan],
            "method": ["welch"],
        }
    )
    report = Report(
        study="s<1>",
        study_dir=str(tmp_path),
        generated="then",
        metric="uar",
        metric_display="UAR",
        similarity="frechet",
        sentence="S.",
        headline=["h1", "h2", "h3"],
        paragraph="P.",
        fit_sentences=[],
        figures=[],
        regressions=Table("R", pd.DataFrame()),
        factors=pd.DataFrame(),
        most_important=None,
        sections=[Section("Mine", ["x < y"])],
        advisor=None,
        published=None,
        detail_tables=[Table("Gains", gains.pivot(index="state", columns="task", values="gain"))],
        gains=gains,
        scores=pd.DataFrame(),
        data_similarity=pd.DataFrame(),
        matched={"t": ["a"]},
        notes=[],
        method="M.",
    )
    page = render_html(report)
    anchors = re.findall(r"<a href='#(\w+)'>", page)
    assert anchors == ["answer", "ontology", "findings", "figures", "tables", "caveats", "method"]
    assert page.index("id='findings'") < page.index("<h2>Mine</h2>") < page.index("id='tables'")
    assert "s&lt;1&gt;" in page and "<li>x &lt; y</li>" in page and "<td>0.125</td>" in page
    md = render_markdown(report, tmp_path)
    assert "| state | t |\n|---|---|\n| a | 0.125 |" in md and md.index("## Mine") < md.index("## Gains")
    data = summary(report)
    assert data["gains"][0]["gain"] == 0.125 and data["gains"][0]["ci_low"] is None
    assert data["sections"] == {"Mine": ["x < y"]} and data["matched"] == {"t": ["a"]} and data["advisor"] is None
