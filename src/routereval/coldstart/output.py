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
        w.writerow({k: ("" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k])) for k in ROW_KEYS})
    return buf.getvalue()


def _refs(meta: dict) -> str:
    """Which models were the neighbours' correction's references, from a study's ``meta``."""
    parts = []
    if "pool" in meta["pretrain"]:
        parts.append(f"`pool`: the {meta['m'] - 1} other pool models")
    if "corpus" in meta["pretrain"] and meta.get("n_references") is not None:
        parts.append(f"`corpus`: every eligible corpus model but the held-out one, {meta['n_references']}")
    copies = meta.get("reference_copies") or {}
    if copies:
        share = meta.get("copy_agreement")
        rule = "" if share is None else f": the same score on at least {100 * share:g}% of the train prompts"
        parts.append(f"copies of held-out models left out, of the fits without them too unless no model would be "
                     f"left ({sum(map(len, copies.values()))} pairs{rule}, beyond chance)")
    return f" ({'; '.join(parts)})" if parts else ""


def _note(note: str) -> str:
    return f" ({note})" if note else ""


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def population_note(n_models: int, n_pool: int, pretrain: list[str]) -> str:
    """What a population of this size allows and what it does not (written into summary.md)."""
    lines = [f"## What {n_models} models allow, and what they do not", ""]
    lines.append(
        f"The prompt side (each prompt's loadings and difficulty as a function of its embedding) is learned from "
        f"the other {n_models - 1} models' answers on the train prompts. That many respondents pin down the few "
        f"directions along which these models differ and each train prompt's own difficulty (the calibration), "
        f"so a new model's ability vector, its mean score and its place in the pool (which prompts it should win) "
        f"are pinned down by about 100 answers to within the errors in the tables above.")
    lines.append("")
    lines.append(
        f"They do not teach the embedding-to-prompt map well: {n_models - 1} answers per prompt are a noisy label of "
        f"its difficulty and loadings, so a prompt no model has answered (a new prompt at routing time) gets only "
        f"the coarse difficulty its embedding implies. The population prior is {n_models - 1} points in the "
        f"model-vector space, its covariance shrunk towards the diagonal: a new model unlike all of them (a new "
        f"family, a new skill profile) is pulled towards the population and needs more anchors. And with so few "
        f"models, removing one often changes routing little: only the models the router picks give a routing "
        f"gain to recover, so the recovery figure rests on those few (the n in the tables). The RouterEval "
        f"paper's proposal is to pre-train the prompt side on the whole record set (thousands of models: "
        f"`--pretrain corpus` on a corpus that holds them); with {n_models} models this is the small-population "
        f"case, and `synth --scale full` in bench/RESULTS.md the large one.")
    if "corpus" in pretrain and n_models == n_pool:
        lines.append("")
        lines.append("Here the corpus holds no model outside the pool, so `corpus` pre-training is the same fit as `pool`.")
    return "\n".join(lines) + "\n"


def summary_markdown(result, summary: list[dict[str, Any]], baseline: dict[int, float], se_random: dict[int, float],
                     plots: list[str]) -> str:
    meta = result.meta
    calib = "calibrated from the other models' answers" if meta.get("calibrate_test") else "unknown"
    out = [f"# Cold start: {meta['router']} on {meta['benchmark']}", ""]
    out.append(f"Leave-one-model-out over {len(meta['held_out'])} of the {meta['m']} pool models "
               f"(group `{meta['group']}`, protocol `{meta['protocol']}`, embedding `{meta['embedding']}`, missing "
               f"`{meta['missing']}`); {meta.get('split', 'random')} split{_note(meta.get('split_note', ''))}: "
               f"{meta['n_train']} train / {meta['n_test']} test prompts; anchors chosen among "
               f"the train prompts; seeds 0-{meta['seeds'] - 1}; pre-training {', '.join(meta['pretrain'])} "
               f"({meta['n_corpus_models']} corpus models); test prompts' difficulty "
               f"{calib}.")
    out.append("")
    out.append("Error: |estimated - true test mean| of the held-out model (gp-IRT estimate with the neighbours' "
               f"correction: the residuals of the known models that answered the anchors most alike{_refs(meta)}), "
               "beside gp-IRT alone and the plain mean of "
               "the same anchors' answers; ± its standard error clustered by held-out model, and the mean signed "
               "error (bias). Whole-benchmark MAE: the same estimator aimed at the model's mean over every prompt "
               "(train, val and test; what tinyBenchmarks reports), against that mean: an extra column, not the "
               "target. µ: routing the test prompts over the whole pool with the model added from "
               "its anchors; recovered = share of the full refit's gain over the pool without the model, summed over "
               "the held-out models whose removal costs the full refit at least 0.005 (n: how many; for the others "
               "the difference is refit noise); recovered (same side) = the same against the router without the "
               "model plus the model fitted on all its train answers. Coverage: share of 95% intervals holding the "
               "true mean.")
    out.append("")
    for pre in meta["pretrain"]:
        rows = [s for s in summary if s["pretrain"] == pre]
        if not rows:
            continue
        up, lo = rows[0]["mu_upper"], sum(s["mu_lower"] for s in rows) / len(rows)
        out.append(f"## Pre-training: {pre}")
        out.append("")
        full = sum(s["mu_full"] for s in rows) / len(rows)
        out.append(f"Bounds on the test prompts: upper (refit with the model's full training answers) µ = {up:.4f}; "
                   f"lower (the pool without the model, mean over held-out models) µ = {lo:.4f}; the router without "
                   f"the model plus the model fitted on all its train answers µ = {full:.4f}.")
        out.append("")
        out.append("| method | k | error (MAE ± SE) | bias | gp-IRT alone MAE | whole-benchmark MAE | plain mean MAE "
                   "| 95% coverage | µ added | recovered (n) | recovered, same side (n) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in rows:
            whole = "-" if s.get("mae_all") is None else f"{s['mae_all']:.4f}"
            gp = "-" if s.get("mae_gp") is None else f"{s['mae_gp']:.4f}"
            out.append(f"| {s['method']} | {s['k']} | {plus_minus(s['mae'], s['mae_se'])} | {s['bias']:+.4f} | {gp} | {whole} | "
                       f"{s['mae_plain']:.4f} | {_pct(s['coverage'])} | "
                       f"{s['mu_added']:.4f} | {_pct(s['recovered'])} ({s['n_matter']}) | "
                       f"{_pct(s['recovered_full'])} ({s['n_matter_full']}) |")
        out.append("")
        by = {(s["method"], s["k"]): s for s in rows}
        k = 100 if any(s["k"] == 100 for s in rows) else max(s["k"] for s in rows)
        lines = []
        if k in baseline:
            lines.append(f"- plain mean of {k} random answers: MAE {baseline[k]:.4f} (standard error about "
                         f"{se_random[k]:.3f}).")
        for meth in METHODS:
            if (meth, k) in by:
                s = by[(meth, k)]
                lines.append(f"- {meth}, k = {k}: MAE {s['mae']:.4f}, recovered {_pct(s['recovered'])}.")
        if ("adaptive", k // 2) in by and ("irt", k) in by:
            lines.append(f"- adaptive with k = {k // 2}: MAE {by[('adaptive', k // 2)]['mae']:.4f} "
                         f"(irt with {k}: {by[('irt', k)]['mae']:.4f}).")
        out += lines + [""]
    out.append(f"Timing: {meta['n_fits']} router fits ({meta['fit_s']:.1f} s), adding one model median "
               f"{meta['add_ms_median']:.2f} ms (95th percentile {meta['add_ms_p95']:.2f} ms), whole study "
               f"{meta['total_s']:.1f} s.")
    out.append("")
    out.append(population_note(meta["n_corpus_models"] if "corpus" in meta["pretrain"] else meta["m"], meta["m"],
                               meta["pretrain"]))
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
    plots = [p.name for p in plot_study(summary, out, title=title, baseline=plain)]
    doc = {"meta": result.meta, "summary": summary, "baseline": {str(k): v for k, v in plain.items()},
           "files": ["coldstart.csv", "coldstart.json", "summary.md", *plots]}
    write_atomic(json.dumps(json_safe(doc), indent=2), out / "coldstart.json")
    write_atomic(summary_markdown(result, summary, plain, se, plots), out / "summary.md")
    return doc
