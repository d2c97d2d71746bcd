"""The cost model: `study plan` turns each run's clip-epochs into accelerator-hours from a throughput figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from audiotransfer.cli import main
from audiotransfer.errors import UserError
from audiotransfer.study.cost import add_hours, cost_line, load_throughput, save_throughput


def test_hours_scale_with_clip_epochs_and_crop_length() -> None:
    table = pd.DataFrame(
        {
            "clip_epochs": [3_600_000, 360_000, 720_000],
            "crop_seconds": [10.0, 10.0, 1.0],
            "model": ["cnn10", "cnn10", "cnn6"],
        }
    )
    hours, source = add_hours(table, clips_per_second=1000)
    assert hours["hours"].tolist() == pytest.approx([1.0, 0.1, 0.02])
    assert "1,000 clips/s" in source
    with pytest.raises(UserError, match="clips-per-second"):
        add_hours(table, clips_per_second=0)


def test_saved_figures_are_per_model(tmp_path: Path) -> None:
    path = tmp_path / "throughput.json"
    save_throughput("cnn10", 2000, "NVIDIA H100", path=path, batch=128)
    save_throughput("cnn6", 4000, "NVIDIA H100", path=path)
    saved = load_throughput(path)
    assert saved["cnn10"]["clips_per_second"] == 2000 and saved["cnn10"]["batch"] == 128
    table = pd.DataFrame(
        {
            "clip_epochs": [7_200_000, 7_200_000, 10],
            "crop_seconds": [10.0, 10.0, 10.0],
            "model": ["cnn10", "cnn6", "cnn14"],
        }
    )
    hours, source = add_hours(table, saved=saved)
    assert hours["hours"].iloc[:2].tolist() == pytest.approx([1.0, 0.5]) and hours["hours"].isna().iloc[2]
    assert "cnn10 2,000 clips/s on NVIDIA H100" in source


@pytest.mark.slow
def test_study_plan_prints_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    from test_corpus_fsd50k import fsd50k_study, fsd50k_tree

    monkeypatch.setenv("AUDIOTRANSFER_THROUGHPUT", str(tmp_path / "none.json"))
    root = fsd50k_tree(tmp_path / "FSD50K")
    study = fsd50k_study(tmp_path / "study", root)
    assert main(["study", "plan", str(study)]) == 0
    assert "add --clips-per-second N" in capsys.readouterr().out
    assert main(["study", "plan", str(study), "--clips-per-second", "0.01", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(pd.io.common.StringIO(out.split("\n\n")[0]))
    pre = table.set_index("run_id").loc["pretrain/animal"]
    assert pre["hours"] == pytest.approx(pre["clip_epochs"] * 0.1 / 0.01 / 3600, abs=0.01)  # 1 s crops
    assert "accelerator-hours in all" in out
    disk = int(out.split("disk: about ")[1].split(" MB")[0].replace(",", ""))
    assert disk == pytest.approx(table["disk_mb"].sum() + _stores(study) / 1e6, abs=1)
    assert (table["disk_mb"] > 0).all()


def _stores(study: Path) -> int:
    from audiotransfer.study.status import plan

    return int(plan(study).attrs["store_bytes"])


def test_disk_estimates_match_written_files(tmp_path: Path) -> None:
    import numpy as np

    from audiotransfer.data.features import RECIPES
    from audiotransfer.data.store import write_store
    from audiotransfer.models import create_model
    from audiotransfer.study.cost import run_bytes, store_bytes
    from audiotransfer.training.checkpoint import save_model

    model = create_model("cnn6", 7, width=0.25, n_mels=32)
    save_model(tmp_path / "model.pt", model, labels=list("abcdefg"))
    estimate = run_bytes("cnn6", 0.25, 32, 7, linear=False, embedded_clips=0, keep_checkpoint=False)
    assert estimate == pytest.approx((tmp_path / "model.pt").stat().st_size, rel=0.05)
    probe = run_bytes("cnn6", 0.25, 32, 7, linear=True, embedded_clips=100, keep_checkpoint=False)
    assert probe - estimate == 100 * model.embedding_dim * 4
    recipe = RECIPES["demo"]
    frames = recipe.frames_for(2.0)
    feats = {f"c{i}": np.zeros((frames, recipe.n_mels), np.float16) for i in range(20)}
    store = write_store(tmp_path / "store", recipe, "x", feats)
    written = sum(p.stat().st_size for p in (tmp_path / "store" / "shards").iterdir())
    assert store_bytes(20, 2.0, recipe.sample_rate, recipe.hop_length, recipe.n_mels) == written
    assert store.recipe == recipe


def test_public_models_runs_are_not_estimated_in_cnn_terms() -> None:
    table = pd.DataFrame(
        {
            "clip_epochs": [3_600_000, 1_000, 500],
            "crop_seconds": [10.0, 10.0, 10.0],
            "model": ["cnn10", "cnn10", "cnn10"],  # a public state's runs carry the study's CNN recipe
            "format": [None, "hf", "hf"],
            "status": ["pending", "pending", "done"],
        }
    )
    hours, _ = add_hours(table, clips_per_second=1000)
    assert hours["hours"].iloc[0] == pytest.approx(1.0) and hours["hours"].iloc[1:].isna().all()
    line = cost_line(hours)
    assert line.startswith("cost 3,600,000 CNN clip-epochs in all, 3,600,000 still to run;")
    assert "2 runs of public models (hf: 1,500 clip-epochs) not estimated" in line
    assert cost_line(hours.iloc[:1]) == "cost 3,600,000 CNN clip-epochs in all, 3,600,000 still to run"
