"""Cold start: add a new model to a router from about 100 answers and estimate its benchmark score.

- :func:`select_anchors` chooses the prompts a new model answers (``random``, ``stratified``,
  ``irt``, ``fisher``, ``adaptive``) among the candidates given (the train prompts, as the CLI
  and the study pass them), deterministically by seed;
  :func:`adaptive_test` gives the adaptive test to drive one answer at a time;
- ``router.add_model(name, X_anchor, y_anchor)`` (routers with ``supports_add_model``) adds it
  with the prompt side fixed;
- :func:`estimate_mean` estimates its mean score from the anchors (gp-IRT, with an interval),
  with each prompt's own difficulty from :func:`calibrate_prompts`;
- :func:`run_study` is the leave-one-model-out study behind ``routereval coldstart``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["METHODS", "AdaptiveTest", "Anchors", "MeanEstimate", "adaptive_test", "calibrate_prompts", "estimate_mean",
           "run_study", "select_anchors"]


def __dir__() -> list[str]:  # the lazy names too, for dir() and a notebook's tab completion
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:  # lazy: `import routereval.coldstart` stays light
    if name in ("METHODS", "AdaptiveTest", "Anchors", "adaptive_test", "select_anchors"):
        from routereval.coldstart import anchors

        return getattr(anchors, name)
    if name in ("MeanEstimate", "estimate_mean"):
        from routereval.coldstart import estimate

        return getattr(estimate, name)
    if name == "calibrate_prompts":
        from routereval.coldstart.calibrate import calibrate_prompts

        return calibrate_prompts
    if name == "run_study":
        from routereval.coldstart.study import run_study

        return run_study
    raise AttributeError(name)
