"""audiotransfer: audio transfer-learning studies end to end.

The main entry points are here by name; each is imported when first used, so `import audiotransfer` stays
fast and imports no torch:

- data: `Manifest`, `load_corpus`, `FeatureRecipe`, `FeatureStore`, `extract_features`;
- pre-training subsets: `SubsetSpec`, `load_subset_file`, `build_subset`, `build_subsets`, `load_ontology`,
  `read_segments`;
- training: `TrainRecipe`, `PRETRAIN`, `FINETUNE`, `pretrain`, `finetune`, `load_model`;
- studies: `load_study`, `Study`, `run_study`, `load_results`, `StudyResults`;
- advice and analysis: `advise` (the sub-package, which is also callable as `advise.advise`), `write_report`;
  the demo: `run_demo`.

Messages go through `logging` under the `audiotransfer` logger (progress included):
`logging.getLogger("audiotransfer").setLevel(logging.WARNING)` silences all but warnings.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if logging.getLogger(__name__).level == logging.NOTSET:  # the package speaks at INFO unless told otherwise
    logging.getLogger(__name__).setLevel(logging.INFO)

# public name -> "module:attribute", imported on first access
_LAZY: dict[str, str] = {
    "Manifest": "audiotransfer.manifest:Manifest",
    "load_corpus": "audiotransfer.data.corpora:load_corpus",
    "FeatureRecipe": "audiotransfer.data.features:FeatureRecipe",
    "FeatureStore": "audiotransfer.data.store:FeatureStore",
    "extract_features": "audiotransfer.data.store:extract_features",
    "SubsetSpec": "audiotransfer.ontology.subsets:SubsetSpec",
    "load_subset_file": "audiotransfer.ontology.subsets:load_subset_file",
    "build_subset": "audiotransfer.ontology.subsets:build_subset",
    "build_subsets": "audiotransfer.ontology.subsets:build_subsets",
    "load_ontology": "audiotransfer.ontology.ontology:load_ontology",
    "read_segments": "audiotransfer.ontology.segments:read_segments",
    "TrainRecipe": "audiotransfer.training.recipe:TrainRecipe",
    "PRETRAIN": "audiotransfer.training.recipe:PRETRAIN",
    "FINETUNE": "audiotransfer.training.recipe:FINETUNE",
    "pretrain": "audiotransfer.training.engine:pretrain",
    "finetune": "audiotransfer.training.engine:finetune",
    "load_model": "audiotransfer.models.load:load_model",
    "Study": "audiotransfer.study.spec:Study",
    "load_study": "audiotransfer.study.spec:load_study",
    "run_study": "audiotransfer.study.runner:run",
    "load_results": "audiotransfer.study.results:load_results",
    "StudyResults": "audiotransfer.study.results:StudyResults",
    "advise": "audiotransfer.advise",  # the sub-package, callable as its `advise` function
    "write_report": "audiotransfer.analysis.report:write_report",
    "run_demo": "audiotransfer.demo.run:run_demo",
}

__all__ = [  # noqa: RUF022  (in the order of _LAZY)
    "__version__",
    "Manifest",
    "load_corpus",
    "FeatureRecipe",
    "FeatureStore",
    "extract_features",
    "SubsetSpec",
    "load_subset_file",
    "build_subset",
    "build_subsets",
    "load_ontology",
    "read_segments",
    "TrainRecipe",
    "PRETRAIN",
    "FINETUNE",
    "pretrain",
    "finetune",
    "load_model",
    "Study",
    "load_study",
    "run_study",
    "load_results",
    "StudyResults",
    "advise",
    "write_report",
    "run_demo",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562) and keep the object in the package."""
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'audiotransfer' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = importlib.import_module(module)
    value = getattr(value, attribute) if attribute else value
    globals()[name] = value
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("audiotransfer")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0+local"


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from audiotransfer.analysis.report import write_report
    from audiotransfer.data.corpora import load_corpus
    from audiotransfer.data.features import FeatureRecipe
    from audiotransfer.data.store import FeatureStore, extract_features
    from audiotransfer.demo.run import run_demo
    from audiotransfer.manifest import Manifest
    from audiotransfer.models.load import load_model
    from audiotransfer.ontology.ontology import load_ontology
    from audiotransfer.ontology.segments import read_segments
    from audiotransfer.ontology.subsets import SubsetSpec, build_subset, build_subsets, load_subset_file
    from audiotransfer.study.results import StudyResults, load_results
    from audiotransfer.study.runner import run as run_study
    from audiotransfer.study.spec import Study, load_study
    from audiotransfer.training.engine import finetune, pretrain
    from audiotransfer.training.recipe import FINETUNE, PRETRAIN, TrainRecipe
