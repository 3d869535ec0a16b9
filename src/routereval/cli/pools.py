"""``routereval pools``: a benchmark's candidate pools under the paper or the clean protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from routereval.cli import ui


def _int_list(text: str, option: str) -> list[int]:
    from routereval.errors import InputError

    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            out.append(int(part))
        except ValueError:
            raise InputError(f"{option}: {part!r} is not an integer; expected comma-separated integers like 3,5,10") from None
    return list(dict.fromkeys(out))  # "3,3" asks for one pool size, not two identical rows


def pool_rows(bench, *, protocol: str = "clean", ms: list[int] | None = None, groups: list[str] | None = None,
              seed: int = 42, missing: str = "auto", draws: int = 1, split: str = "auto") -> dict:
    """Everything ``routereval pools`` prints, as a JSON-ready dict (see the command's help).

    The same shape as ``routereval eval --json``: the cell's context (benchmark, protocol, split,
    seed, ...) and a ``results`` list, one entry per pool.
    """
    import numpy as np

    from routereval.catalog import REFERENCE_SCORES
    from routereval.pools import PAPER_GROUPS, PAPER_MS, PoolBuilder, oracle_score, pool_scores
    from routereval.pools.build import _check_group, _check_m
    from routereval.validate import check_int, option

    groups = list(PAPER_GROUPS) if groups is None else [_check_group(g, "--groups") for g in groups]
    explicit = ms is not None
    ms = list(PAPER_MS) if ms is None else [_check_m(m) for m in ms]
    draws = check_int(draws, option("draws"), low=1)
    builder = PoolBuilder(bench, protocol=protocol, seed=seed, missing=missing, split=split)
    sp = builder.split
    paper = PoolBuilder(bench, protocol="paper", seed=seed, missing=missing, split=sp) if protocol == "clean" else None
    ref = REFERENCE_SCORES.get(bench.name)
    result = {"benchmark": bench.name, "protocol": protocol, "split": sp.name, "split_note": sp.note, "seed": seed,
              "n_train": len(sp.train), "n_val": len(sp.val), "n_test": len(sp.test),
              "missing": {"policy": builder.policy.name, "note": builder.policy.note},
              "reference_score": ref, "results": [], "skipped": []}

    def measure(pool):
        te = pool_scores(bench, pool)[2]
        means = te.mean(axis=0)
        oracle = oracle_score(te)
        return means, oracle

    for m in ms:
        for g in groups:
            room = builder.eligible(g, m)
            if m > room:
                if explicit:
                    builder.pool(m, g)  # raises the one-line error
                result["skipped"].append({"m": m, "group": g, "reason": f"only {room} eligible models"})
                continue
            for d in range(draws if g == "random" else 1):
                pool = builder.pool(m, g, draw=d)
                means, oracle = measure(pool)
                bs = float(means[pool.best_single])
                row = {"m": m, "group": g, "draw": pool.draw, "models": pool.model_names.tolist(),
                       "test_means": means, "oracle": oracle, "choice_oracle": pool.choice_oracle,
                       "best_single": bs, "best_single_model": str(pool.model_names[pool.best_single]),
                       "v_r": None if ref is None else oracle / ref, "v_b": oracle / bs if bs > 0 else None,
                       "n_train": len(sp.train), "n_val": len(sp.val), "n_test": len(sp.test)}
                if paper is not None and g != "random":
                    if m > paper.eligible(g, m):
                        row.update(paper_models=None, paper_oracle=None, paper_v_b=None)
                    else:
                        pp = paper.pool(m, g)
                        pmeans, poracle = measure(pp)
                        pbs = float(np.max(pmeans))
                        row.update(paper_models=pp.model_names.tolist(), paper_oracle=poracle,
                                   paper_v_b=poracle / pbs if pbs > 0 else None)
                result["results"].append(row)
    return result


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _models_cell(names: list[str], means) -> str:
    shown = [f"{n} ({v:.3f})" for n, v in zip(names[:3], means[:3])]
    return ", ".join(shown) + (f" +{len(names) - 3} more" if len(names) > 3 else "")


def register(app: typer.Typer) -> None:
    @app.command("pools")
    def pools_cmd(
        corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
        benchmark: Annotated[str, typer.Option("--benchmark", "-b", help="Benchmark name.")],
        protocol: Annotated[str, typer.Option(
            "--protocol", help="clean: choose pools and the best single model on train+val only (default); "
                               "paper: the reference exactly (all prompts, test included).")] = "clean",
        m: Annotated[Optional[str], typer.Option(
            "--m", help="Pool sizes, comma-separated (default: the paper's 3,5,10,100,1000 that fit).")] = None,
        groups: Annotated[Optional[str], typer.Option(
            "--groups", help="Comma-separated: all_strong, all_weak, strong_to_weak, random.")] = None,
        missing: Annotated[str, typer.Option(
            "--missing", help="Missing records: auto, models (only fully evaluated models) or prompts "
                              "(only prompts every model was evaluated on).")] = "auto",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the random split (never of a publisher split) and the draws.")] = 42,
        draws: Annotated[int, typer.Option("--draws", help="Seeded draws of each random pool.")] = 1,
        export: Annotated[Optional[Path], typer.Option(
            "--export-router-dataset", help="Also write DIR/<scenario>_router_dataset.pkl (the reference's file name, e.g. "
                 "harness_truthfulqa_mc_0_router_dataset.pkl) in the official structure.")] = None,
        embedding: Annotated[Optional[str], typer.Option(
            "--embedding", help="Stored embedding for the export (default official/RoBERTa, else synth, else the first).")] = None,
        split: ui.SplitOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Candidate pools per (m, group): their models, test oracle, V_R and V_B.

        Per pool: the models and their test means, the test oracle, oracle / reference model (V_R)
        and oracle / best single model (V_B); under the clean protocol also the paper protocol's pool
        oracle, so the test-set leakage of the reference is visible."""
        from routereval.data.store import open_corpus
        from routereval.pools.build import _check_group, _check_protocol

        _check_protocol(protocol)
        ms = None if m is None else _int_list(m, "--m")
        gs = None if groups is None else list(dict.fromkeys(_check_group(g.strip(), "--groups") for g in groups.split(",")))
        ui.check_out_dir(export, "--export-router-dataset")
        bench = open_corpus(corpus, benchmarks=[benchmark], texts=export is not None)[benchmark]
        res = pool_rows(bench, protocol=protocol, ms=ms, groups=gs, seed=seed, missing=missing, draws=draws,
                        split=ui.split_name(split))
        if export is not None:
            from routereval.pools.export import export_router_dataset

            path, notes = export_router_dataset(bench, export, protocol=protocol, seed=seed, missing=missing,
                                                embedding=embedding, split=res["split"])
            res["export"] = {"path": str(path), "notes": notes}
        if as_json:
            ui.print_json(res)
            return
        import shutil
        import sys

        from rich.console import Console

        # wide enough for the pool table even when stdout is not a terminal
        con = Console(file=sys.stdout, soft_wrap=True, width=max(170, shutil.get_terminal_size().columns))
        sizes = (res["n_train"], res["n_val"], res["n_test"])
        con.print(f"{bench.name}: {protocol} protocol, seed {seed}, {ui.split_line(res['split'], res['split_note'], sizes)}; "
                  f"missing records: {res['missing']['note']}; reference model {_fmt(res['reference_score'])}")
        clean = protocol == "clean"
        cols = ["m", "group", "models (test mean)", "oracle"] + (["paper oracle"] if clean else []) + \
               ["or/ref", "or/bsm"] + (["paper or/bsm"] if clean else []) + ["best single"]
        rows = []
        for r in res["results"]:
            g = r["group"] + (f" #{r['draw']}" if r["group"] == "random" else "")
            row = [r["m"], g, _models_cell(r["models"], r["test_means"]), _fmt(r["oracle"])]
            if clean:
                row.append(_fmt(r.get("paper_oracle")))
            row += [_fmt(r["v_r"]), _fmt(r["v_b"])]
            if clean:
                row.append(_fmt(r.get("paper_v_b")))
            row.append(f"{r['best_single_model']} ({r['best_single']:.3f})")
            rows.append(row)
        con.print(ui.table(None, cols, rows))
        for s in res["skipped"]:
            con.print(f"skipped m={s['m']} {s['group']}: {s['reason']}")
        if export is not None:
            # the file holds the reference's whole grid, whatever --m and --groups chose for the table above
            from routereval.pools.types import EASY_MS, HARD_MS

            con.print(f"wrote {res['export']['path']} (the reference's grid: easy m = {', '.join(map(str, EASY_MS))}; "
                      f"hard m = {', '.join(map(str, HARD_MS))})")
            for n in res["export"]["notes"]:
                con.print(f"  note (the file): {n}")
