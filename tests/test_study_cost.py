"""The cost model: `study plan` turns each run's clip-epochs into accelerator-hours from a throughput figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from audiotransfer.cli import main
from audiotransfer.errors import UserError
from audiotransfer.study.cost import add_hours, load_throughput, save_throughput


def test_hours_scale_with_clip_epochs_and_crop_length() -> None:
    table = pd.DataFrame({"clip_epochs": [3_600_000, 360_000, 720_000], "crop_seconds": [10.0, 10.0, 1.0],
                          "model": ["cnn10", "cnn10", "cnn6"]})
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
    table = pd.DataFrame({"clip_epochs": [7_200_000, 7_200_000, 10], "crop_seconds": [10.0, 10.0, 10.0],
                          "model": ["cnn10", "cnn6", "cnn14"]})
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
