"""The study's output directory: ``coldstart.csv``, ``coldstart.json``, PNG/SVG plots and ``summary.md``.

Every file is written aside and renamed into place; ``routereval report --coldstart DIR``
embeds the directory as it is.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from routereval.coldstart.anchors import METHODS
from routereval.jsonsafe import json_safe


def rows_csv(rows: list[dict[str, Any]]) -> str:
    from routereval.coldstart.study import ROW_KEYS

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(ROW_KEYS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        # + 0.0: a correction of -0.0 is written 0, not -0
        w.writerow({k: ("" if r[k] is None else (f"{r[k] + 0.0:.6g}" if isinstance(r[k], float) else r[k]))
                    for k in ROW_KEYS})
    return buf.getvalue()


def _refs(meta: dict) -> str:
    """Which models were the neighbours' correction's references, from a study's ``meta``."""
    parts = []
    n_refs = meta.get("n_references")
    if not isinstance(n_refs, dict):  # a study written before the count was kept per pre-training: corpus only
        n_refs = {"pool": meta["m"] - 1, "corpus": n_refs}
    if "pool" in meta["pretrain"]:
        parts.append(f"`pool`: the {n_refs.get('pool', meta['m'] - 1)} other pool models")
    if "corpus" in meta["pretrain"] and n_refs.get("corpus") is not None:
        parts.append(f"`corpus`: every eligible corpus model but the held-out one, {n_refs['corpus']}")
    if "adaptive" in meta.get("methods", ()):
        parts.append("`adaptive` rows: only those at the held-out model's level on its test")
    copies = meta.get("reference_copies") or {}
    if copies:
        share = meta.get("copy_agreement")
        rule = "" if share is None else f": the same score on at least {100 * share:g}% of the train prompts"
        parts.append(f"copies of held-out models left out, of the fits without them too unless no model would be "
                     f"left ({sum(map(len, copies.values()))} pairs{rule}, beyond chance)")
    return f" ({'; '.join(parts)})" if parts else ""


def corpus_cap_note(meta: dict) -> str | None:
    """The line saying that ``--corpus-models`` asked for more models than the benchmark has eligible (all were
    taken); None when it did not."""
    asked = meta.get("corpus_models")
    if asked is None or asked <= meta["n_corpus_models"] or "corpus" not in meta["pretrain"]:
        return None
    return (f"--corpus-models {asked}: the benchmark has {_n(meta['n_corpus_models'], 'eligible model')} "
            f"(--missing {meta['missing']}), so corpus pre-training used all of them")


def _whole(meta: dict) -> str:
    """What the whole-benchmark columns cover: every prompt of the split, and what the missing-records policy left out."""
    n = meta["n_train"] + meta.get("n_val", 0) + meta["n_test"]
    text = f"every prompt of the split ({n}: train, val and test; what tinyBenchmarks reports"
    total = meta.get("n_benchmark_prompts")
    if total is not None and total > n:
        note = meta.get("missing_note") or f"missing `{meta.get('missing')}`"
        text += f"; the benchmark holds {total}, of which the missing-records policy left out {total - n}: {note}"
    return text + ")"


def paired_difference(rows: list[dict[str, Any]], a: tuple[str, int], b: tuple[str, int]
                      ) -> tuple[float, float | None] | None:
    """Mean of (error of method/k ``a`` - error of ``b``) over the anchor draws both ran (the same held-out model
    and seed), and its standard error clustered by held-out model (:func:`~routereval.coldstart.study.clustered_se`;
    None for one model); None when no draw ran both."""
    from routereval.coldstart.study import clustered_se

    errors: dict[tuple[str, int], dict[tuple[str, Any], float]] = {a: {}, b: {}}
    for r in rows:
        key = (r["method"], int(r["k"]))
        if key in errors:
            errors[key][(r["model"], r["seed"])] = float(r["abs_error"])
    both = [d for d in errors[a] if d in errors[b]]
    if not both:
        return None
    diffs = [errors[a][d] - errors[b][d] for d in both]
    se = clustered_se(diffs, [m for m, _ in both])
    return sum(diffs) / len(diffs), (se if math.isfinite(se) else None)


def _compared(diff: tuple[float, float | None] | None) -> str:
    """``worse than`` / ``better than`` (by more than two standard errors) / ``within two standard errors of``, by a
    paired difference (a - b) and its SE."""
    if diff is None or diff[1] is None or not math.isfinite(diff[1]):
        return "as good as or better than" if diff is not None and diff[0] <= 0 else "worse than"
    mean, se = diff
    return "within two standard errors of" if abs(mean) <= 2 * se else ("better than" if mean < 0 else "worse than")


def strength_bias(rows: list[dict[str, Any]], k: int) -> dict[str, tuple[float, float]]:
    """Per method at ``k``: the mean signed error (estimate - truth) of the strongest and of the weakest third of the
    held-out models (by true test mean); empty with fewer than 3 held-out models."""
    truth = {r["model"]: float(r["true_mean"]) for r in rows}
    if len(truth) < 3:
        return {}
    order = sorted(truth, key=truth.get)
    third = -(-len(order) // 3)
    weak, strong = set(order[:third]), set(order[-third:])
    out = {}
    for meth in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == meth and int(r["k"]) == k]
        hi = [r["estimate"] - r["true_mean"] for r in rs if r["model"] in strong]
        lo = [r["estimate"] - r["true_mean"] for r in rs if r["model"] in weak]
        if hi and lo:
            out[meth] = (sum(hi) / len(hi), sum(lo) / len(lo))
    return out


def _note(note: str) -> str:
    return f" ({note})" if note else ""


def percent(v: float | None) -> str:
    """A share as a whole percentage; "-" when undefined, and never "-0%" (a tiny negative share rounds to 0%)."""
    if v is None:
        return "-"
    text = f"{100 * v:.0f}"
    return f"{'0' if text == '-0' else text}%"


def _n(count: int, noun: str, plural: str | None = None) -> str:
    """``count noun``, the noun in the plural unless the count is 1 (``1 model``, ``2 models``)."""
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"


DESIGNED = ("irt", "fisher", "adaptive")  # methods that choose anchors from the fitted item parameters
_HOW_DESIGNED = {"irt": "clusters", "fisher": "the population's information", "adaptive": "the model's own answers"}


def designed_note(methods) -> str:
    """The † footnote on the plain mean of designed anchors, naming the designed methods among ``methods`` that ran."""
    methods = set(methods)  # once: an iterator is read once
    ran = [m for m in DESIGNED if m in methods]
    if not ran:
        return ""
    names = ran[0] if len(ran) == 1 else ", ".join(ran[:-1]) + " and " + ran[-1]
    how = ", ".join(_HOW_DESIGNED[m] for m in ran)
    return (f"† {names} choose{'s' * (len(ran) == 1)} {'its' if len(ran) == 1 else 'their'} anchors by design "
            f"({how}): the plain mean of those answers is no estimate of the model's mean, shown only beside the "
            "estimate's error.")


def plain_cell(s: dict[str, Any]) -> str:
    """The plain mean's MAE of a summary row, marked † where the anchors were designed (:func:`designed_note`)."""
    return f"{s['mae_plain']:.4f}" + ("†" if s["method"] in DESIGNED else "")


def outcome(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What one pre-training's summary lines say at the largest k run: the best method, and how the best
    model-based method (:data:`DESIGNED`) compares with ``random`` anchors: ``random_wins`` (random as good
    or better), ``unclear`` (ahead by less than their standard errors combined) or ``designed_wins``;
    ``None`` when random or every model-based method was not run."""
    if not rows:
        return None
    k = max(s["k"] for s in rows)
    at_k = [s for s in rows if s["k"] == k]
    rand = next((s for s in at_k if s["method"] == "random"), None)
    # on a one-subset benchmark stratified anchors are random ones (identical rows, their means summed in
    # another order): the best is then named random
    same = [s for s in at_k if s["method"] == "stratified" and rand is not None
            and math.isclose(s["mae"], rand["mae"], rel_tol=1e-9, abs_tol=1e-12)]
    best = min((s for s in at_k if s not in same), key=lambda s: s["mae"])
    out = {"k": k, "best": best, "verdict": None, "designed": None, "random": None}
    designed = [s for s in at_k if s["method"] in DESIGNED]
    if rand is None or not designed:
        return out
    d = min(designed, key=lambda s: s["mae"])
    ses = [x for x in (rand.get("mae_se"), d.get("mae_se")) if x is not None and math.isfinite(x)]
    se = math.sqrt(sum(x * x for x in ses)) if len(ses) == 2 else None
    if rand["mae"] <= d["mae"]:
        verdict = "random_wins"
    elif se is not None and rand["mae"] - d["mae"] < se:
        verdict = "unclear"
    else:
        verdict = "designed_wins"
    out.update(verdict=verdict, designed=d, random=rand)
    return out


def _outcome_line(o: dict[str, Any] | None, n_learned: str, rows: list[dict[str, Any]] | None = None) -> str:
    """The summary's sentence on one pre-training's results at the largest k run (:func:`outcome`); ``rows``
    (the study's rows of that pre-training) say whether the runner-up is within a paired standard error."""
    if o is None:
        return ""
    k, best = o["k"], o["best"]
    line = f"- lowest MAE at k = {k} (the largest k run): `{best['method']}`, MAE {best['mae']:.4f}."
    close = []
    for meth in dict.fromkeys(r["method"] for r in rows or ()):
        diff = None if meth == best["method"] else paired_difference(rows, (meth, k), (best["method"], k))
        if diff is None or diff[1] is None or not math.isfinite(diff[1]):  # one held-out model: no standard error
            continue
        identical = abs(diff[0]) < 1e-12 and diff[1] < 1e-12  # stratified anchors = random ones (one subset)
        if not identical and diff[0] <= 2 * diff[1]:
            close.append(f"`{meth}` ({plus_minus(diff[0], diff[1], 4)})")
    if close:
        line += (" Within two standard errors of it (paired difference of MAE over the held-out models): "
                 + ", ".join(close) + ".")
    d, r = o["designed"], o["random"]
    if o["verdict"] == "random_wins":
        line += (f" `random` anchors (MAE {r['mae']:.4f}) do as well as or better than the model-based methods "
                 f"(best: `{d['method']}`, MAE {d['mae']:.4f}): their item parameters are learned from {n_learned}, "
                 f"too few to choose better anchors than chance here.")
    elif o["verdict"] == "unclear":
        line += (f" `{d['method']}` is ahead of `random` anchors (MAE {r['mae']:.4f}) by less than a standard error: "
                 f"no clear gain from the item parameters here.")
    elif o["verdict"] == "designed_wins":
        line += f" `random` anchors: MAE {r['mae']:.4f}."
    return line


def _n_learned(meta: dict, pre: str) -> int:
    """How many models' answers one pre-training's prompt side is learned from (the fewest, over its fits)."""
    if pre == "pool":
        return meta["m"] - 1
    held = len(meta["held_out"])
    folds = meta.get("folds") or held
    return meta["n_corpus_models"] - -(-held // folds)  # the largest fold is left out


def _learned_from(meta: dict, pre: str) -> str:
    """How many models' answers one pre-training's prompt side is learned from, in words."""
    n = _n_learned(meta, pre)
    return "the other model's answers" if n == 1 else f"{n} models' answers"


def population_note(n_models: int, n_pool: int, pretrain: list[str], result: dict[str, Any] | None = None, *,
                    learned: int | None = None) -> str:
    """What a population of this size allows and what it does not (written into summary.md).

    ``result``: :func:`outcome` of the pre-training this population is (what it achieved at the largest k run);
    the note never claims more than that. ``learned``: how many models' answers the prompt side is learned
    from (default ``n_models - 1``; fewer when the study holds models out in folds).
    """
    n = n_models - 1 if learned is None else int(learned)
    others = "the other model's answers" if n == 1 else (
        f"the other {n} models' answers" if n == n_models - 1 else f"{n} of them (the study holds models out in folds)")
    pre = "corpus" if "corpus" in pretrain else "pool"
    lines = [f"## What {_n(n_models, 'model')} allow{'s' * (n_models == 1)}, and what they do not", ""]
    first = (f"Under `{pre}` pre-training the prompt side (each prompt's loadings and difficulty as a function of its "
             f"embedding) is learned from {others} on the train prompts.")
    v = None if result is None else result["verdict"]
    if v is not None:
        k, d, r = result["k"], result["designed"], result["random"]
        if v == "designed_wins":
            first += (f" At k = {k} (the largest k run) that was enough to choose anchors: `{d['method']}` "
                      f"(MAE {d['mae']:.4f}) estimates a new model's mean better than {_n(k, 'random answer')} "
                      f"(`random`, MAE {r['mae']:.4f}), so these models pin down the directions along which they "
                      f"differ and each train prompt's own difficulty (the calibration) well enough to tell which "
                      f"prompts are informative.")
        elif v == "unclear":
            first += (f" At k = {k} (the largest k run) the best model-based method, `{d['method']}` (MAE "
                      f"{d['mae']:.4f}), is ahead of `random` anchors (MAE {r['mae']:.4f}) by less than a standard "
                      f"error: at this size the item parameters add no clear gain.")
        else:
            first += (f" At k = {k} (the largest k run) that was not enough to choose anchors: `random` anchors "
                      f"(MAE {r['mae']:.4f}) do as well as or better than the model-based methods (best: "
                      f"`{d['method']}`, MAE {d['mae']:.4f}). Their item parameters (each prompt's difficulty and "
                      f"loadings) are learned from {others}, too few to pin them down, so the designed anchors are "
                      f"chosen from noise and can lose to chance; more models (`--pretrain corpus` on a corpus that holds "
                      f"them) are what helps.")
    elif result is not None:
        first += (f" The tables above say how well a new model's mean is pinned down by the k values run (up to "
                  f"{result['k']}), and no further.")
    lines.append(first)
    lines.append("")
    prior = ("1 point in the model-vector space, widened into a broad prior" if n == 1 else
             f"{n} points in the model-vector space, its covariance shrunk towards the diagonal")
    lines.append(
        f"They do not teach the embedding-to-prompt map well: {_n(n, 'answer')} per prompt "
        f"{'is' if n == 1 else 'are'} a noisy label of its difficulty and loadings, so a prompt no model has "
        f"answered (a new prompt at routing time) gets only the coarse difficulty its embedding implies. The "
        f"population prior is {prior}: a new model unlike {'it' if n == 1 else 'all of them'} (a new family, a new skill profile) is "
        f"pulled towards the population and needs more anchors. And with so few models, removing one often changes "
        f"routing little: only the models the router picks give a routing gain to recover, so the recovery figure "
        f"rests on those few (the n in the tables). The RouterEval paper's proposal is to pre-train the prompt side "
        f"on the whole record set (thousands of models: `--pretrain corpus` on a corpus that holds them); with "
        f"{_n(n_models, 'model')} this is the small-population case, and `synth --scale full` in bench/RESULTS.md "
        f"the large one.")
    if "corpus" in pretrain and n_models == n_pool:
        lines.append("")
        lines.append("Here the corpus holds no model outside the pool, so `corpus` pre-training is the same fit as `pool`.")
    return "\n".join(lines) + "\n"


def stratified_is_random(meta: dict) -> bool:
    """Whether the study's ``stratified`` anchors are its ``random`` ones: one subset among the train prompts."""
    return meta.get("n_subsets") == 1 and "stratified" in meta.get("methods", ()) and "random" in meta.get("methods", ())


def _seeds(n: int) -> str:
    """``seed 0`` or ``seeds 0-4``: the anchor draws of a study of ``n`` seeds."""
    return "seed 0" if n == 1 else f"seeds 0-{n - 1}"


def summary_markdown(result, summary: list[dict[str, Any]], baseline: dict[int, float], se_random: dict[int, float],
                     plots: list[str]) -> str:
    meta = result.meta
    calib = "calibrated from the other models' answers" if meta.get("calibrate_test") else "unknown"
    n_held = len(meta["held_out"])
    learned = (_n(meta["n_corpus_models"], "corpus model") if "corpus" in meta["pretrain"]
               else _n(meta["m"], "pool model"))  # what the prompt side can be learned from
    out = [f"# Cold start: {meta['router']} on {meta['benchmark']}", ""]
    out.append(f"Leave-one-model-out over {n_held} of the {_n(meta['m'], 'pool model')} "
               f"(group `{meta['group']}`, protocol `{meta['protocol']}`, embedding `{meta['embedding']}`, missing "
               f"`{meta['missing']}`); {meta.get('split', 'random')} split{_note(meta.get('split_note', ''))}: "
               f"{meta['n_train']} train / {meta['n_test']} test prompts; anchors chosen among "
               f"the train prompts; {_seeds(meta['seeds'])}; pre-training {', '.join(meta['pretrain'])} "
               f"({learned}); test prompts' difficulty "
               f"{calib}.")
    out.append("")
    out.append("Error: |estimated - true test mean| of the held-out model (gp-IRT estimate with the neighbours' "
               f"correction: the residuals of the known models that answered the anchors most alike{_refs(meta)}), "
               "beside gp-IRT alone and the plain mean of "
               "the same anchors' answers; ± its standard error clustered by held-out model, and the mean signed "
               f"error (bias). Whole-benchmark MAE: the same estimator aimed at the model's mean over "
               f"{_whole(meta)}, against that mean: an extra column, not the "
               "target. µ: routing the test prompts over the whole pool with the model added from "
               "its anchors; recovered = share of the full refit's gain over the pool without the model, summed over "
               "the held-out models whose removal costs the full refit at least 0.005 and which it routes some test "
               "prompt to (n: how many; for the others the difference is refit noise); below 0 the model added "
               "from its anchors routes worse than the pool without it (it wins prompts it then gets wrong); "
               "recovered (same side) = the same against the router without the "
               "model plus the model fitted on all its train answers. µ added and the lower bound's µ below are "
               "means over all held-out models; the µ plot (mu_vs_k) shows only the models that matter (n). "
               f"Coverage: share of {100 * meta.get('level', 0.95):g}% intervals holding the true mean.")
    out.append("")
    if meta.get("skipped"):
        out += [meta["skipped"] + ".", ""]
    if (capped := corpus_cap_note(meta)) is not None:
        out += [capped.replace("--corpus-models", "`--corpus-models`").replace("--missing", "`--missing`") + ".", ""]
    if stratified_is_random(meta):
        out.append("The train prompts form one subset, so `stratified` anchors are `random` ones here (the same "
                   "draws: identical rows; in the plots its line, dashed, lies on random's).")
        out.append("")
    outcomes = {}
    for pre in meta["pretrain"]:
        rows = [s for s in summary if s["pretrain"] == pre]
        if not rows:
            continue
        up, lo = rows[0]["mu_upper"], sum(s["mu_lower"] for s in rows) / len(rows)
        n_matter, lo_matter = rows[0]["n_matter"], rows[0]["mu_lower_matter"]
        matter = (f"{lo_matter:.4f} over the {_n(n_matter, 'model')} that matter{'s' * (n_matter == 1)}, the µ "
                  f"plot's lower line" if n_matter else "no model matters: the µ plot shows them all")
        out.append(f"## Pre-training: {pre}")
        out.append("")
        full = sum(s["mu_full"] for s in rows) / len(rows)
        out.append(f"Bounds on the test prompts: upper (refit with the model's full training answers) µ = {up:.4f}; "
                   f"lower (the pool without the model) µ = {lo:.4f}, the mean over all {_n(n_held, 'held-out model')} "
                   f"({matter}); the router without the model plus the model fitted on all its train answers "
                   f"µ = {full:.4f}."
                   + (" The lower mean is above the upper bound: removing most of these models changes routing "
                      "little, so their lower bounds differ from the upper one by refit noise only." if lo > up else ""))
        out.append("")
        out.append("| method | k | error (MAE ± SE) | bias | gp-IRT alone MAE | whole-benchmark MAE | plain mean MAE "
                   f"| {100 * meta.get('level', 0.95):g}% coverage (mean half-width) | µ added | recovered (n) "
                   "| recovered, same side (n) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in rows:
            whole = "-" if s.get("mae_all") is None else f"{s['mae_all']:.4f}"
            gp = "-" if s.get("mae_gp") is None else f"{s['mae_gp']:.4f}"
            out.append(f"| {s['method']} | {s['k']} | {plus_minus(s['mae'], s['mae_se'])} | {s['bias']:+.4f} | {gp} | {whole} | "
                       f"{plain_cell(s)} | {percent(s['coverage'])}"
                       + ("" if s.get("half_width") is None else f" ({s['half_width']:.3f})") + " | "
                       f"{s['mu_added']:.4f} | {percent(s['recovered'])} ({s['n_matter']}) | "
                       f"{percent(s['recovered_full'])} ({s['n_matter_full']}) |")
        if any(s["method"] in DESIGNED for s in rows):
            out += ["", designed_note(s["method"] for s in rows)]
        out.append("")
        by = {(s["method"], s["k"]): s for s in rows}
        k = max(s["k"] for s in rows)  # the largest k run: never a figure for a k the study did not run
        lines = []
        if k in baseline:
            lines.append(f"- plain mean of {_n(k, 'random answer')}: MAE {baseline[k]:.4f} (standard error about "
                         f"{se_random[k]:.3f}).")
        for meth in METHODS:
            if (meth, k) in by:
                s = by[(meth, k)]
                lines.append(f"- {meth}, k = {k}: MAE {s['mae']:.4f}, recovered {percent(s['recovered'])} "
                             f"({s['n_matter']}).")
        pre_rows = [r for r in result.rows if r["pretrain"] == pre]
        if ("adaptive", k // 2) in by and ("irt", k) in by:
            half, full = by[("adaptive", k // 2)]["mae"], by[("irt", k)]["mae"]
            diff = paired_difference(pre_rows, ("adaptive", k // 2), ("irt", k))
            lines.append(f"- adaptive with k = {k // 2}: MAE {half:.4f}, {_compared(diff)} irt with {k} ({full:.4f}"
                         + ("" if diff is None or diff[1] is None else
                            f"; paired difference {plus_minus(diff[0], diff[1])} over the held-out models") + ").")
        outcomes[pre] = outcome(rows)
        lines.append(_outcome_line(outcomes[pre], _learned_from(meta, pre), pre_rows))
        if bias := strength_bias(pre_rows, k):
            lines.append(f"- bias by strength at k = {k}, mean signed error of the strongest / weakest third of the "
                         "held-out models (by true test mean): "
                         + ", ".join(f"{m} {hi:+.4f} / {lo:+.4f}" for m, (hi, lo) in bias.items()) + "."
                         + (" Every method underestimates the strongest and overestimates the weakest: the estimates "
                            "shrink towards the population's mean, so a new model better than the models the prompt "
                            "side was learned from is underestimated."  # (a third of one model says little)
                            if all(hi < 0 < lo for hi, lo in bias.values()) and len({r["model"] for r in pre_rows}) >= 6
                            else ""))
        out += [x for x in lines if x] + [""]
    out.append(f"Timing: {_n(meta['n_fits'], 'router fit')} ({meta['fit_s']:.1f} s), adding one model median "
               f"{meta['add_ms_median']:.2f} ms (95th percentile {meta['add_ms_p95']:.2f} ms), whole study "
               f"{meta['total_s']:.1f} s.")
    out.append("")
    pop = "corpus" if "corpus" in meta["pretrain"] else "pool"
    out.append(population_note(meta["n_corpus_models"] if pop == "corpus" else meta["m"], meta["m"],
                               meta["pretrain"], outcomes.get(pop), learned=_n_learned(meta, pop)))
    for p in plots:
        if p.endswith(".png"):
            out.append(f"![{p[:-4]}]({p})")
            out.append("")
    return "\n".join(out)


def plus_minus(value: float, se: float | None, digits: int = 4) -> str:
    """``value ± se``, or the value alone when the standard error is undefined (one cluster: None or NaN)."""
    if se is None or not math.isfinite(se):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {se:.{digits}f}"


def check_study_dir(out: str | os.PathLike) -> Path:
    """``out`` as a Path; refused unless it is missing, empty or an earlier study's directory."""
    from routereval.reports.studies import check_study_target

    return check_study_target(out, "coldstart")


def write_study(result, out: str | os.PathLike) -> dict[str, Any]:
    """Write the study to directory ``out`` (created; our files replaced, nothing else touched).

    Returns the summary as JSON: ``meta``, ``summary`` (one line per pretrain, method, k),
    ``baseline`` (k -> MAE of the plain mean of k random answers) and ``files``.
    """
    from routereval.coldstart.plots import plot_study
    from routereval.coldstart.study import random_mean_se, summarise

    from routereval.reports.build import write_atomic

    out = check_study_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    # the rows first: they mark the directory as a study's, so a run stopped while plotting can be rerun into it
    write_atomic(rows_csv(result.rows), out / "coldstart.csv")
    summary = summarise(result.rows)
    plain = {}
    for s in summary:
        if s["method"] == "random" and s["pretrain"] == result.meta["pretrain"][0]:
            plain[s["k"]] = s["mae_plain"]
    se = {k: random_mean_se(result.rows, k) for k in result.meta["anchors"]}
    title = (f"{result.meta['router']} on {result.meta['benchmark']}, m = {result.meta['m']} "
             f"{result.meta['group']}: leave-one-model-out over {len(result.meta['held_out'])} models")
    plots = [p.name for p in plot_study(summary, out, title=title, baseline=plain,
                                        stratified_is_random=stratified_is_random(result.meta))]
    doc = {"meta": result.meta, "summary": summary, "baseline": {str(k): v for k, v in plain.items()},
           "files": ["coldstart.csv", "coldstart.json", "summary.md", *plots]}
    write_atomic(json.dumps(json_safe(doc), indent=2), out / "coldstart.json")
    write_atomic(summary_markdown(result, summary, plain, se, plots), out / "summary.md")
    return doc
