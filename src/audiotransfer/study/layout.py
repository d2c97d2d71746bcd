"""The study folder: every path a study writes or reads, in one place.

```
STUDY/
  study.yaml          the validated spec with absolute paths
  results.sqlite      the results store (study/store.py)
  .lock               held by the one `study run` at a time
  manifests/states/   pre-training subset manifests      manifests/tasks/   task manifests
  stores/             feature stores (one per corpus); stores/RECIPE_HASH/TASK: a checkpoint state's own front-end
  runs/pretrain/STATE/                              model.pt, metrics.json (checkpoint.pt while unfinished)
  runs/finetune/STATE/TASK/PROTOCOL/seedN/          the same
  cache/embeddings/   backbone embeddings of task clips, shared by linear probes and the advisor
  report/             the analysis report (report/cache: cached CKA and data-similarity tables)
  world/              the demo's synthetic world
```

A run id is also its folder under `runs/`. `StudyDir.of(path)` accepts a study folder or a study YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audiotransfer.errors import UserError
from audiotransfer.study.spec import load_study
from audiotransfer.training.checkpoint import METRICS, MODEL


def pretrain_id(state: str) -> str:
    """Run id (and folder under `runs/`) of a state's pre-training run."""
    return f"pretrain/{state}"


def protocol_dir(protocol: str) -> str:
    """Folder name of a protocol (`freeze:2` -> `freeze-2`)."""
    return protocol.replace(":", "-")


def finetune_id(state: str, task: str, protocol: str, seed: int) -> str:
    """Run id (and folder under `runs/`) of one fine-tuning run."""
    return f"finetune/{state}/{task}/{protocol_dir(protocol)}/seed{seed}"


@dataclass(frozen=True)
class StudyDir:
    """The folder of one study and the paths inside it."""

    root: Path

    @classmethod
    def of(cls, study: str | Path) -> StudyDir:
        """The folder of a study given as its folder or its YAML file (then its `out` field)."""
        path = Path(study)
        if path.is_file():
            path = load_study(path).out
        return cls(path)

    @property
    def results(self) -> Path:
        return self.root / "results.sqlite"

    @property
    def spec(self) -> Path:
        return self.root / "study.yaml"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def embeddings(self) -> Path:
        """The embedding cache that linear probes (every seed) and `advise` share."""
        return self.root / "cache" / "embeddings"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def model(self, run_id: str) -> Path:
        """The best weights of a run (`runs/RUN_ID/model.pt`)."""
        return self.run_dir(run_id) / MODEL

    def metrics(self, run_id: str) -> Path:
        """The run result of a run (`runs/RUN_ID/metrics.json`)."""
        return self.run_dir(run_id) / METRICS

    def manifests(self, kind: str) -> Path:
        """`manifests/states` or `manifests/tasks`."""
        return self.root / "manifests" / kind

    def store(self, name: str, frontend: str | None = None) -> Path:
        """A feature store under `stores/`; one of a state's own front-end under `stores/RECIPE_HASH/`."""
        return self.root / "stores" / (f"{frontend}/{name}" if frontend else name)

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def cache(self) -> Path:
        """Cached analysis tables (CKA, data similarity)."""
        return self.report / "cache"

    @property
    def world(self) -> Path:
        """The demo's synthetic world."""
        return self.root / "world"

    def require_results(self) -> Path:
        """`results.sqlite`, or a UserError when the study has not been run."""
        if not self.results.exists():
            raise UserError(
                f"{self.root}: no results store (results.sqlite) here",
                fix="pass a study directory or study YAML that has been run (`audiotransfer study run`)",
            )
        return self.results
