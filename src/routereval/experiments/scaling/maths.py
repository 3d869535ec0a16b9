"""The pure maths of the scaling study: oracle, r_o(p), random routing and the cost-aware oracle.

Scores of the models eligible in a benchmark, restricted to the test prompts, are held in
one *block*: bit-packed rows for binary benchmarks (a pool's oracle is the popcount of the
OR of its rows), float rows for graded ones (the max). Pools are ``picks``: (n_pools, m)
positions into the block, so many pools (the random draws of one m, all windows) are
reduced by one batched operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routereval.data import bits as _bits

_CHUNK_BYTES = 32 << 20  # working set of one batched reduction


@dataclass(frozen=True)
class Block:
    """Test scores of a benchmark's eligible models.

    Attributes
    ----------
    data
        Binary: (n_rows, ceil(n_test / 8)) uint8, packed over the test prompts only.
        Graded: (n_rows, n_test) float64.
    binary
        Which of the two layouts ``data`` is.
    n_test
        Number of test prompts.
    means
        (n_rows,) mean test score of each row.
    """

    data: np.ndarray
    binary: bool
    n_test: int
    means: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.data.shape[0])

    def dense(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(n_rows, n_test) float64 scores of ``rows`` (all when None)."""
        d = self.data if rows is None else self.data[np.asarray(rows)]
        if self.binary:
            return _bits.unpack(d, self.n_test, dtype=np.float64)
        return np.asarray(d, dtype=np.float64)


def make_block(bench, rows: np.ndarray, prompts: np.ndarray) -> Block:
    """The :class:`Block` of ``bench``'s model ``rows`` on the prompt columns ``prompts``.

    Binary rows are unpacked a chunk at a time and repacked over ``prompts`` only, so every
    later OR touches ``len(prompts) / 8`` bytes per row instead of the whole benchmark.
    """
    rows, prompts = np.asarray(rows, dtype=np.int64), np.asarray(prompts, dtype=np.int64)
    n = len(prompts)
    if bench.binary:
        src = np.asarray(bench.bits)
        out = np.empty((len(rows), -(-n // 8)), dtype=np.uint8)
        step = max(1, _CHUNK_BYTES // max(1, bench.n_prompts))
        for a in range(0, len(rows), step):
            full = _bits.unpack(src[rows[a:a + step]], bench.n_prompts, dtype=bool)
            out[a:a + step] = _bits.pack(full[:, prompts])
        means = _bits.popcount(out, axis=1) / max(n, 1)
        return Block(out, True, n, means)
    data = np.asarray(bench.scores)[rows][:, prompts].astype(np.float64)
    return Block(data, False, n, data.mean(axis=1) if n else np.full(len(rows), np.nan))


def _reduce(block: Block, picks: np.ndarray) -> np.ndarray:
    """(n_pools, width) OR (binary) / max (graded) of the rows of each pool; ``picks`` (n_pools, m)."""
    op = np.bitwise_or if block.binary else np.maximum
    n_pools, m = picks.shape
    width = block.data.shape[1] * block.data.itemsize
    step = max(1, _CHUNK_BYTES // max(1, m * width))
    out = np.empty((n_pools, block.data.shape[1]), dtype=block.data.dtype)
    for a in range(0, n_pools, step):
        out[a:a + step] = op.reduce(block.data[picks[a:a + step]], axis=1)
    return out


def pool_oracles(block: Block, picks: np.ndarray) -> np.ndarray:
    """(n_pools,) oracle test score of each pool: mean over prompts of its best model's score.

    Parameters
    ----------
    block
        The eligible models' test scores.
    picks
        (n_pools, m) row positions into ``block``; every pool has the same m.
    """
    picks = np.atleast_2d(np.asarray(picks, dtype=np.int64))
    if picks.shape[0] == 0:
        return np.empty(0)
    red = _reduce(block, picks)
    if block.binary:
        return _bits.popcount(red, axis=1) / max(block.n_test, 1)
    return red.mean(axis=1)


def random_expected(block: Block, picks: np.ndarray) -> np.ndarray:
    """(n_pools,) expected test score of random routing: the mean of the pool's models' means.

    A uniformly random model per prompt scores, in expectation, the mean over prompts of the
    mean over the pool, which is the mean of the models' test means: exact, no sampling.
    """
    picks = np.atleast_2d(np.asarray(picks, dtype=np.int64))
    return block.means[picks].mean(axis=1)


def mix_expected(oracle: np.ndarray, random: np.ndarray, p: float) -> np.ndarray:
    """Expected score of r_o(p): the oracle with probability ``p``, else a random model.

    Per prompt the expectation is ``p * best + (1 - p) * mean``; averaged over prompts it is
    ``p * oracle + (1 - p) * random`` exactly.
    """
    return p * np.asarray(oracle, dtype=np.float64) + (1.0 - p) * np.asarray(random, dtype=np.float64)


def band(values: np.ndarray, *, lo: float = 2.5, hi: float = 97.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the (lo, hi) percentiles over draws; ``values`` (n_draws, ...) -> three (...) arrays."""
    v = np.asarray(values, dtype=np.float64)
    return v.mean(axis=0), np.percentile(v, lo, axis=0), np.percentile(v, hi, axis=0)


def prefix_oracles(block: Block, order: np.ndarray) -> np.ndarray:
    """(k,) oracle of the first 1, 2, ..., k rows of ``order`` (models added one at a time)."""
    order = np.asarray(order, dtype=np.int64)
    if len(order) == 0:
        return np.empty(0)
    op = np.bitwise_or if block.binary else np.maximum
    acc = op.accumulate(block.data[order], axis=0)
    if block.binary:
        return _bits.popcount(acc, axis=1) / max(block.n_test, 1)
    return acc.mean(axis=1)


def oracle_costs(block: Block, picks: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(n_pools,) mean cost per prompt of the cost-aware oracle: the cheapest of the best models.

    On each prompt the oracle routes to the cheapest model among those with the prompt's best
    score in the pool (on a prompt no model solves, that is the pool's cheapest model).

    Parameters
    ----------
    block
        The eligible models' test scores.
    picks
        (n_pools, m) row positions into ``block``.
    cost
        (n_rows, n_test) cost per prompt of each block row, or (n_rows,) when every prompt
        costs a model the same (prices per token): then binary pools take the bitwise path.
    """
    picks = np.atleast_2d(np.asarray(picks, dtype=np.int64))
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim == 1 and block.binary:
        return _oracle_costs_bits(block, picks, cost)
    if cost.ndim == 1:
        cost = np.broadcast_to(cost[:, None], (len(cost), block.n_test))
    n_pools, m = picks.shape
    out = np.empty(n_pools)
    step = max(1, _CHUNK_BYTES // max(1, 8 * m * block.n_test * 3))
    for a in range(0, n_pools, step):
        p = picks[a:a + step]
        S = block.dense(p.ravel()).reshape(len(p), m, block.n_test)
        C = cost[p]
        best = S.max(axis=1, keepdims=True)
        out[a:a + len(p)] = np.where(S >= best, C, np.inf).min(axis=1).mean(axis=1)
    return out


def _oracle_costs_bits(block: Block, picks: np.ndarray, cost: np.ndarray) -> np.ndarray:
    # models in ascending cost: a prompt is paid at the first (cheapest) model that solves it
    c = cost[picks]
    order = np.argsort(c, axis=1, kind="stable")
    picks, c = np.take_along_axis(picks, order, axis=1), np.take_along_axis(c, order, axis=1)
    n_pools, m = picks.shape
    covered = np.zeros((n_pools, block.data.shape[1]), dtype=np.uint8)
    total = np.zeros(n_pools)
    for j in range(m):
        rows = block.data[picks[:, j]]
        total += _bits.popcount(rows & ~covered, axis=1) * c[:, j]
        covered |= rows
    unsolved = block.n_test - _bits.popcount(covered, axis=1)
    return (total + unsolved * c[:, 0]) / max(block.n_test, 1)


def pareto_mask(cost: np.ndarray, score: np.ndarray) -> np.ndarray:
    """(n,) True where no other point is at most as costly and at least as good, one strictly."""
    cost, score = np.asarray(cost, dtype=np.float64), np.asarray(score, dtype=np.float64)
    order = np.lexsort((-score, cost))  # cheapest first, the better of equal costs first
    keep = np.zeros(len(cost), dtype=bool)
    best = -np.inf
    for i in order:  # n is the number of pools (hundreds): a scan, not a hot path
        if score[i] > best:
            keep[i] = True
            best = score[i]
    return keep


def default_ms(n_max: int, m_max: int = 1000) -> list[int]:
    """Log-spaced pool sizes from 1 to ``min(n_max, m_max)``, denser over 1-10, ending at the cap.

    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, ... (the 1-1.5-2-3-5-7 series per decade), then
    the cap itself, so the last point is "every model" when the models are fewer than ``m_max``.
    """
    cap = max(1, min(int(n_max), int(m_max)))
    out, decade = [], 1
    while decade <= cap:
        for f in (1, 1.5, 2, 3, 5, 7):
            v = int(round(f * decade))
            if v <= cap and (decade > 1 or f in (1, 2, 3, 5, 7)):
                out.append(v)
        decade *= 10
    if cap not in out:
        out.append(cap)
    return sorted(set(out))
