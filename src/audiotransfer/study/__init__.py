"""Studies: declare a pre-train x fine-tune grid in YAML, plan it, run it (local or Ray), keep its results.

`load_study(path)` validates a spec; `plan(path)` lists its runs and their cost; `run(path, jobs=...)` runs
or resumes it; `ResultStore(STUDY/results.sqlite)` reads what it produced. The demo (`audiotransfer.demo`)
is an application built on these.
(`plan` is bound after the `plan` submodule is imported, so the name means the function.)
"""

from audiotransfer.study.plan import Plan, Run  # noqa: I001  (must precede the `plan` function below)
from audiotransfer.study.mlflow_export import export_runs
from audiotransfer.study.runner import Outcome, run
from audiotransfer.study.spec import Study, load_study
from audiotransfer.study.status import plan, results_table, status_table
from audiotransfer.study.store import ResultStore

__all__ = [
    "Outcome",
    "Plan",
    "ResultStore",
    "Run",
    "Study",
    "export_runs",
    "load_study",
    "plan",
    "results_table",
    "run",
    "status_table",
]
