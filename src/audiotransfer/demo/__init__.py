"""The demo: a complete small study on the synthetic world, an application of `study` and `analysis`.

`run_demo()` generates the world, runs the study of `demo.yaml` and writes its report with a section that
checks the report's answer against the world's ground truth (`demo.ground_truth`). It sits above `study`,
`analysis` and `data.synthetic`; none of them imports it.
"""

from audiotransfer.demo.run import DemoResult, demo_config, run_demo

__all__ = ["DemoResult", "demo_config", "run_demo"]
