"""``routereval scaling``: the model-level scaling-up study (curves against pool size, weak models, cost)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from routereval.cli import ui


def _float_list(text: str, option: str) -> list[float]:
    from routereval.errors import ParameterError

    out = []
    for part in text.split(","):
        try:
            out.append(float(part.strip()))
        except ValueError:
            raise ParameterError(f"{option}: {part.strip()!r} is not a number; expected e.g. 0.25,0.5,0.75") from None
    return out


def _names(text: str) -> list[str]:
    return list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


def register(app: typer.Typer) -> None:
    @app.command("scaling")
    def scaling_cmd(
        corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
        benchmark: Annotated[str, typer.Option("--benchmark", "-b", help="Benchmark, comma-separated list, or 'all'.")] = "all",
        groups: Annotated[str, typer.Option("--groups", help="Comma-separated: all_strong, all_weak, strong_to_weak, random.")]
        = "all_strong,all_weak,strong_to_weak,random",
        m: Annotated[Optional[str], typer.Option("--m", help="Pool sizes, comma-separated (default: log-spaced "
                                                               "1, 2, 3, 5, 7, 10, 15, ... up to --m-max or every model).")] = None,
        m_max: Annotated[int, typer.Option("--m-max", help="Largest default pool size.")] = 1000,
        draws: Annotated[int, typer.Option("--draws", help="Seeded draws of each random pool.")] = 20,
        p: Annotated[str, typer.Option("--p", help="Oracle probabilities of the r_o(p) curves, each in [0, 1].")] = "0.25,0.5,0.75",
        routers: Annotated[Optional[str], typer.Option("--routers", help="Learned routers fitted per point, e.g. knn,mlp.")] = None,
        param: Annotated[Optional[list[str]], typer.Option("--param", help="Router hyperparameter ROUTER.NAME=VALUE "
                                                                              "(or NAME=VALUE for all; repeatable).")] = None,
        router_m: Annotated[Optional[str], typer.Option("--router-m", help="Pool sizes of the router curves "
                                                                             "(default 2,3,5,10,20,50,100 that fit).")] = None,
        embedding: Annotated[Optional[str], typer.Option("--embedding", help="Prompt embedding of the routers.")] = None,
        protocol: Annotated[str, typer.Option("--protocol", help="clean, paper or both.")] = "clean",
        weak: Annotated[float, typer.Option("--weak", help="Weak-model threshold: models scoring at most this.")] = 0.3,
        target: Annotated[Optional[float], typer.Option("--target", help="Score the weak pool should reach "
                                                                           "(default: the best single model's).")] = None,
        missing: Annotated[str, typer.Option("--missing", help="Missing records: prompts (default: every model, the "
                                                               "prompts all were evaluated on), models or auto.")] = "prompts",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the split and the draws.")] = 42,
        split: ui.SplitOpt = None,
        out: Annotated[Path, typer.Option("--out", help="Output directory (curves.csv, weak.csv, frontier.csv, "
                                                        "summary.md, plots).")] = Path("scaling"),
        plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG and SVG figures.")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """The scaling-up study: test score against the pool size m, weak models, quality-cost frontier.

        Curves of the oracle, r_o(p), random routing, the best single model and learned routers, per
        pool group and protocol; the weak-models analysis; the quality-cost frontier where costs
        exist. Writes OUT/curves.csv, weak.csv, frontier.csv, summary.md and plots."""
        from routereval.cli.pools import _int_list
        from routereval.cli.routing import parse_params, router_params
        from routereval.data.store import open_corpus
        from routereval.errors import ParameterError
        from routereval.experiments.scaling.outputs import check_out, write_outputs
        from routereval.experiments.scaling.study import resolve_benchmarks, run_scaling

        protocols = {"clean": ["clean"], "paper": ["paper"], "both": ["clean", "paper"]}.get(protocol)
        if protocols is None:
            raise ParameterError(f"--protocol {protocol!r}: expected clean, paper or both")
        ms = None if m is None else _int_list(m, "--m")
        rms = None if router_m is None else _int_list(router_m, "--router-m")
        ps = _float_list(p, "--p")
        names = _names(routers) if routers else []
        params = parse_params(param)
        unknown = sorted({k.rpartition(".")[0] for k in params if "." in k} - set(names))
        if unknown:
            raise ParameterError(f"--param names router {unknown[0]!r}, which is not in --routers ({', '.join(names) or 'none'})")
        per_router = {n: router_params(params, n, several=len(names) > 1) for n in names}
        import time

        t0 = time.perf_counter()
        ui.check_out_dir(out, "--out")
        check_out(out)
        c = open_corpus(corpus, texts=bool(names))
        resolve_benchmarks(c, benchmark)  # an unknown name fails before any work
        with ui.progress(not as_json) as update:
            result = run_scaling(c, benchmarks=benchmark, groups=_names(groups), ms=ms, m_max=m_max, draws=draws,
                                 ps=ps, protocols=protocols, weak=weak, target=target, seed=seed, missing=missing,
                                 routers=names, router_params=per_router, router_ms=rms, embedding=embedding,
                                 split=ui.split_name(split), progress=update)
        files = write_outputs(result, out, plots=plots)
        total = time.perf_counter() - t0
        if as_json:
            ui.print_json({**result.to_json(), "out": str(out), "files": [f.name for f in files], "total_seconds": total})
            return
        _print(result, out, files, total)


def _print(result, out: Path, files, total: float) -> None:
    con = ui.console()
    for info in result.benchmarks:
        con.print(f"[bold]{info.name}[/bold]: {info.n_eligible} models; "
                  f"{ui.split_line(info.split_name, info.split_note, info.split)}; missing records: {info.missing}")
        for proto in result.settings["protocols"]:
            rnd = sorted((r for r in result.curves if r["benchmark"] == info.name and r["protocol"] == proto
                          and r["group"] == "random" and r["curve"] == "oracle"), key=lambda r: r["m"])
            bs = info.best_single[proto]
            line = f"  {proto}: best single {bs['score']:.3f} ({bs['model']})"
            if rnd:
                line += f"; random-pool oracle {rnd[0]['score']:.3f} at m={rnd[0]['m']} -> {rnd[-1]['score']:.3f} at m={rnd[-1]['m']}"
            con.print(line)
            con.print(f"    weak models: {info.weak[proto].sentence()}")
    if result.skipped:
        con.print(f"{len(result.skipped)} points skipped (pool size larger than the models available): see summary.md")
    con.print(f"wrote {len(files)} files to {out}: curves in {result.seconds:.1f} s, {total:.1f} s in all")
