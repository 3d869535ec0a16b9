"""``summary.md``: the study's findings per benchmark, in Markdown."""

from __future__ import annotations

import math
from typing import Sequence

from routereval.experiments.scaling.curves import curve_name


def _f(v, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _find(rows, **key) -> dict | None:
    for r in rows:
        if all(r[k] == v for k, v in key.items()):
            return r
    return None


def _models(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _ranges(ms: list[int]) -> str:
    """1,2,3,5,7 -> '1-7' style compaction of consecutive entries of a sorted list."""
    return ", ".join(str(m) for m in ms) if len(ms) <= 4 else f"{ms[0]}..{ms[-1]} ({len(ms)} sizes)"


def _oracle_table(rows: list[dict], info, protocols: list[str], groups: list[str]) -> list[str]:
    cols = [(p, g) for p in protocols for g in groups]
    head = ["m"] + [f"{g} ({p})" for p, g in cols]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in info.ms:
        cells = [str(m)]
        for p, g in cols:
            r = _find(rows, protocol=p, group=g, curve="oracle", m=m)
            if r is None:
                cells.append("-")
            elif g == "random" and math.isfinite(r["lo"]):
                cells.append(f"{_f(r['score'])} [{_f(r['lo'])}, {_f(r['hi'])}]")
            else:
                cells.append(_f(r["score"]))
        if any(c != "-" for c in cells[1:]):
            out.append("| " + " | ".join(cells) + " |")
    return out


def _random_findings(rows: list[dict], info, protocol: str, ps: list[float]) -> list[str]:
    rnd = sorted((r for r in rows if r["protocol"] == protocol and r["group"] == "random" and r["curve"] == "oracle"),
                 key=lambda r: r["m"])
    if not rnd:
        return []
    first, last = rnd[0], rnd[-1]
    gain = last["score"] - first["score"]
    out = [f"- Random pools ({protocol}): the oracle rises from {_f(first['score'])} at m = {first['m']} to "
           f"{_f(last['score'])} at m = {last['m']}" + (" (every model)" if last["m"] == info.n_eligible else "") + "."]
    for m in (3, 5, 10):
        r = _find(rnd, m=m)
        if r is not None and gain > 0:
            out.append(f"  - m = {m}: {_f(r['score'])} [{_f(r['lo'])}, {_f(r['hi'])}], "
                       f"{100 * (r['score'] - first['score']) / gain:.0f}% of the gain from m = {first['m']} to {last['m']}.")
    mid = 0.5 if 0.5 in ps else (ps[len(ps) // 2] if ps else None)
    if mid is not None:
        r = _find(rows, protocol=protocol, group="random", curve=curve_name(mid), m=last["m"])
        rr = _find(rows, protocol=protocol, group="random", curve="random", m=last["m"])
        if r is not None and rr is not None:
            out.append(f"  - At m = {last['m']}: {curve_name(mid)} {_f(r['score'])}, random routing {_f(rr['score'])}.")
    return out


def summary_markdown(result, *, figures: Sequence[str] = ()) -> str:
    """The Markdown summary of a :class:`~routereval.experiments.scaling.study.ScalingResult`."""
    s = result.settings
    lines = ["# Model-level scaling-up study", "",
             f"Protocols: {', '.join(s['protocols'])}; groups: {', '.join(s['groups'])}; "
             f"{s['draws']} seeded draws per random pool (band: 2.5-97.5 percentile over draws); "
             f"r_o(p) for p = {', '.join(f'{p:g}' for p in s['ps']) or '-'} (in expectation, exactly); "
             f"seed {s['seed']}; missing records: `{s['missing']}` policy; weak threshold {s['weak']:g}"
             + (f", target {s['target']:g}" if s["target"] is not None else "") + ".",
             "Scores are test-set means. Under `clean` pools and the best single model are chosen on "
             "train + val; under `paper` on all prompts, test included (the reference).", ""]
    for name in figures:
        if name.endswith(".png") and name.startswith("grid"):
            lines += [f"![all benchmarks]({name})", ""]
    for info in result.benchmarks:
        rows = [r for r in result.curves if r["benchmark"] == info.name]
        lines += [f"## {info.name}", "",
                  f"{info.n_models} models ({info.n_eligible} eligible), {'binary' if info.binary else 'graded'} "
                  f"scores, {info.split_name} split {info.split[0]}/{info.split[1]}/{info.split[2]}"
                  + (f" ({info.split_note})" if info.split_note else "") + f"; missing records: {info.missing}; "
                  f"costs: {info.cost_unit or 'none'}.", ""]
        fig = f"scaling_{info.name}.png"
        if fig in figures:
            lines += [f"![{info.name}]({fig})", ""]
        for p in s["protocols"]:
            bs = info.best_single[p]
            lines.append(f"- Best single model ({p}): `{bs['model']}`, {_f(bs['score'])}"
                         + (f" at {bs['cost']:.4g} per prompt" if bs.get("cost") is not None else "") + ".")
            lines += _random_findings(rows, info, p, s["ps"])
            lines.append(f"- Weak models ({p}): {info.weak[p].sentence()}.")
            if info.cost_kind is not None:
                c = info.cheapest.get(p)
                if c is None:
                    lines.append(f"- Cheapest pool reaching the best single model ({p}): none reaches it.")
                else:
                    names = c.get("models")
                    who = f": {_models(names)}" if names else ""
                    lines.append(f"- Cheapest pool reaching the best single model ({p}): {c['group']} m = {c['m']}"
                                 f"{' draw ' + str(c['draw']) if c['group'] == 'random' else ''} ({c['curve']}), "
                                 f"score {_f(c['score'])} at {c['cost']:.4g} per prompt{who}.")
        lines += ["", "Oracle test score by pool size:", ""]
        lines += _oracle_table(rows, info, s["protocols"], [g for g in s["groups"]])
        routers = [r for r in rows if r["curve"] in s["routers"]]
        if routers:
            lines += ["", "Learned routers (µ on test, 95% bootstrap CI; random pools: draw 0; the oracle of the same pool):",
                      "", "| router | protocol | group | m | µ | CI | pool oracle |", "|---|---|---|---|---|---|---|"]
            for r in sorted(routers, key=lambda r: (r["curve"], r["protocol"], r["group"], r["m"])):
                lines.append(f"| {r['curve']} | {r['protocol']} | {r['group']} | {r['m']} | {_f(r['score'])} | "
                             f"[{_f(r['lo'])}, {_f(r['hi'])}] | {_f(r.get('pool_oracle'))} |")
        skipped = [k for k in result.skipped if k["benchmark"] == info.name]
        if skipped:
            lines += ["", "Skipped points (pool size larger than the models available):", ""]
            by: dict[tuple, list] = {}
            for k in skipped:
                by.setdefault((k["protocol"], k["group"], k["reason"]), []).append(k["m"])
            for (p, g, reason), ms in by.items():
                lines.append(f"- {g} ({p}): m = {_ranges(sorted(ms))}: {reason}")
        lines.append("")
    lines += ["## Files", "",
              "- `curves.csv`: one row per point: benchmark, protocol, group, curve, m, score, lo, hi, cost "
              "(`lo`/`hi`: the band over random draws, or a router's 95% CI; `weak_oracle` rows have group `weak` "
              "and m = the number of weak models, added best first).",
              "- `weak.csv`: the weak pools, one row per model added.",
              "- `frontier.csv` (when costs exist): one row per pool and curve with its mean cost per prompt; "
              "`on_frontier` marks the quality-cost Pareto frontier. The oracle routes to the cheapest of the "
              "prompt's best models.", ""]
    return "\n".join(lines)
