"""The model-level scaling-up study: score against the number of candidate models m.

:func:`run_scaling` computes the curves (oracle, r_o(p), random routing, best single model and
learned routers per pool group and protocol), the weak-models analysis and the quality-cost
frontier; :func:`write_outputs` writes ``curves.csv``, ``weak.csv``, ``frontier.csv``,
``summary.md`` and the plots. The maths lives in :mod:`.maths`, the plots in :mod:`.plots`
(matplotlib is imported only when plotting).
"""

from routereval.experiments.scaling.outputs import write_outputs
from routereval.experiments.scaling.study import ScalingResult, run_scaling

__all__ = ["ScalingResult", "run_scaling", "write_outputs"]
