"""Advise before training: rank pre-training states for a task from one forward pass per candidate, and
say which ontology categories a task resembles (a subset spec to pre-train on).

The package itself is callable: `audiotransfer.advise(candidates, tasks, cache_dir)` is `advise.advise`.
"""

import sys
import types
from typing import Any

from audiotransfer.advise.driver import Advice, Task, advise, corpus_task, manifest_task, study_candidates, study_tasks
from audiotransfer.advise.embed import Candidate, parse_checkpoint
from audiotransfer.advise.rank import DEFAULT, ESTIMATORS

__all__ = [
    "DEFAULT",
    "ESTIMATORS",
    "Advice",
    "Candidate",
    "Task",
    "advise",
    "corpus_task",
    "manifest_task",
    "parse_checkpoint",
    "study_candidates",
    "study_tasks",
]


class _CallablePackage(types.ModuleType):
    """`audiotransfer.advise(...)` calls `advise.advise(...)`: the package and its main function share a name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Advice:
        return advise(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
