"""The weak-models analysis: can many weak models together beat the best single one?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routereval.experiments.scaling import maths

WEAK_COLUMNS = ("benchmark", "protocol", "threshold", "k", "model", "choice_score", "test_score", "oracle",
                "target", "reaches_target")


@dataclass
class WeakResult:
    """The weak pool of one (benchmark, protocol).

    Attributes
    ----------
    rows
        One dict per k (models added best first; see :data:`WEAK_COLUMNS`).
    n_weak
        Models scoring at most the threshold (0: no model meets it).
    target, target_kind
        The score to reach and where it came from (``best_single`` or ``given``).
    reached_k
        Smallest k whose oracle reaches the target, None when not reached.
    oracle_all
        Oracle of all the weak models together (NaN when there are none).
    """

    benchmark: str
    protocol: str
    threshold: float
    rows: list[dict]
    n_weak: int
    target: float
    target_kind: str
    reached_k: int | None
    oracle_all: float

    def sentence(self) -> str:
        """One line for the summary."""
        t = f"{self.threshold:g}"
        if self.n_weak == 0:
            return f"no model scores at most {t}: no weak pool"
        what = "the best single model" if self.target_kind == "best_single" else "the target"
        who = "1 model scores" if self.n_weak == 1 else f"{self.n_weak} models score"
        head = (f"{who} at most {t}; together their oracle is {self.oracle_all:.3f} "
                f"against {what}'s {self.target:.3f}")
        if self.reached_k is None:
            return head + ": not reached"
        return head + f": reached with the best {self.reached_k} of them"


def weak_analysis(bench_name: str, protocol: str, block: maths.Block, choice_means: np.ndarray,
                  names: np.ndarray, *, threshold: float, target: float, target_kind: str = "best_single") -> WeakResult:
    """The pool of models scoring at most ``threshold`` and its oracle as models are added, best first.

    Parameters
    ----------
    block
        Test scores of the eligible models.
    choice_means
        (n_eligible,) the scores that decide who is weak: train+val means (``clean``) or
        all-prompt means (``paper``); never test scores under ``clean``.
    names
        (n_eligible,) model ids, aligned with the block rows.
    threshold
        A model is weak when its choice score is at most this.
    target
        The score the weak pool's oracle should reach (the best single model's test score,
        or a given target).
    """
    choice_means = np.asarray(choice_means, dtype=np.float64)
    weak = np.flatnonzero(choice_means <= threshold)
    order = weak[np.argsort(-choice_means[weak], kind="stable")]  # best first
    curve = maths.prefix_oracles(block, order)
    reach = np.flatnonzero(curve >= target - 1e-12)
    rows = [{"benchmark": bench_name, "protocol": protocol, "threshold": threshold, "k": k + 1,
             "model": str(names[i]), "choice_score": float(choice_means[i]), "test_score": float(block.means[i]),
             "oracle": float(curve[k]), "target": float(target), "reaches_target": bool(curve[k] >= target - 1e-12)}
            for k, i in enumerate(order)]
    return WeakResult(bench_name, protocol, float(threshold), rows, len(order), float(target), target_kind,
                      int(reach[0]) + 1 if len(reach) else None, float(curve[-1]) if len(curve) else float("nan"))
