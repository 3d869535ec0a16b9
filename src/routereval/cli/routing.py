"""``routereval eval | fit | routers | check-router``: train, evaluate and inspect routers."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from routereval.cli import ui


class Protocol(str, Enum):
    clean = "clean"
    paper = "paper"


def parse_param(text: str) -> tuple[str, Any]:
    """``k=v`` -> (k, v) with v an int, float, bool (true/false), None (none) or else the string."""
    from routereval.errors import ParameterError

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not all(part.isidentifier() for part in key.split(".", 1)):
        raise ParameterError(f"--param {text!r}: expected NAME=VALUE or ROUTER.NAME=VALUE, e.g. --param k=5")
    low = raw.strip().lower()
    if low in ("true", "false"):
        return key, low == "true"
    if low in ("none", "null"):
        return key, None
    for conv in (int, float):
        try:
            return key, conv(raw)
        except ValueError:
            pass
    return key, raw


def parse_params(items: list[str] | None) -> dict[str, Any]:
    from routereval.errors import ParameterError

    out: dict[str, Any] = {}
    for item in items or []:
        k, v = parse_param(item)
        if k in out:
            raise ParameterError(f"--param {k!r} is given twice")
        out[k] = v
    return out


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _split_text(res: dict) -> str:
    line = ui.split_line(res["split"], res.get("split_note", ""), (res["n_train"], res["n_val"], res["n_test"]))
    return line + (f"; missing records: {res['missing_note']}" if res.get("missing_note") else "")


def _print_result(res: dict) -> None:
    c = ui.console()
    lo, hi = res["mu_ci"]
    rows = [
        ["µ (mean test score)", f"{res['mu']:.4f}  [{lo:.4f}, {hi:.4f}]"],
        ["V_R (µ / reference model)", _fmt(res["v_r"])],
        ["V_B (µ / best single)", f"{res['v_b']:.4f}  [{res['v_b_ci'][0]:.4f}, {res['v_b_ci'][1]:.4f}]"],
        ["p (router beats best single)", f"{res['p_beats_best_single']:.4f}"],
        ["E_p (reference's way, bits)", f"{res['e_p']:.4f}"],
        ["selection entropy (bits)", f"{res['e_sel']:.4f}"],
        ["oracle / gap", f"{res['oracle']:.4f} / {res['oracle_gap']:.4f}"],
        ["best single", f"{res['best_single']:.4f} ({res['best_single_model']})"],
        ["oracle recall", _fmt(res["oracle_recall"])],
        ["test prompts / fit s / route s", f"{res['n_test']} / {res['fit_s']:.3f} / {res['route_s']:.3f}"],
    ]
    if res.get("cost"):
        cost = res["cost"]
        rows.append(["mean cost per prompt (USD)", f"{cost['mean_cost']:.6f}"])
        if "aiq" in cost:
            rows.append(["AIQ / APGR", f"{cost['aiq']:.4f} / {_fmt(cost['apgr'])}"])
    title = (f"{res['router']} on {res['benchmark']}: m={res['m']} {res['group']}, protocol {res['protocol']}, "
             f"embedding {res['embedding']}, {_split_text(res)}")
    c.print(ui.table(title, ["metric", "value"], rows))
    c.print(ui.table("selection shares", ["model", "share"],
                     [[k, v] for k, v in sorted(res["selection"].items(), key=lambda kv: -kv[1])]))


CorpusArg = Annotated[Path, typer.Argument(help="Corpus directory.")]
BenchOpt = Annotated[str, typer.Option("--benchmark", "-b", help="Benchmark name.")]
RouterOpt = Annotated[str, typer.Option("--router", "-r", help="Router name (see `routereval routers`) or module:Class; eval takes a comma-separated list.")]
ParamOpt = Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Router hyperparameter NAME=VALUE, or ROUTER.NAME=VALUE for one of several routers (repeatable).")]
MOpt = Annotated[int, typer.Option("--m", help="Pool size.")]
GroupOpt = Annotated[str, typer.Option("--group", "-g", help="all_strong, all_weak, strong_to_weak or random.")]
ProtoOpt = Annotated[Protocol, typer.Option("--protocol", help="clean: choose on train+val; paper: the reference.")]
EmbOpt = Annotated[Optional[str], typer.Option("--embedding", "-e",
                                               help="Encoder: synth/official/<name>, minilm, tfidf or a local directory "
                                                    "(default: stored 'synth' if any, else minilm).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random split (never of a publisher split), pool draws, router and bootstrap.")]
MissingOpt = Annotated[str, typer.Option("--missing", help="Missing records: auto, models (only the models evaluated "
                                                           "on every prompt) or prompts (every model, on the prompts "
                                                           "all of them answered); see `routereval pools`.")]


def eval_cmd(
    corpus: CorpusArg, benchmark: BenchOpt, router: RouterOpt, m: MOpt, group: GroupOpt,
    param: ParamOpt = None, protocol: ProtoOpt = Protocol.clean, embedding: EmbOpt = None, seed: SeedOpt = 42,
    split: ui.SplitOpt = None, missing: MissingOpt = "auto",
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for CIs and the p-value.")] = 1000,
    reference_score: Annotated[Optional[float], typer.Option(
        "--reference-score", help="Reference model's score behind V_R (default: the catalog's for the benchmark).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Fit a router on train (tune on val), route the test prompts and print the metrics.

    --json prints one shape for one router or several: the cell ({"benchmark", "m", "group",
    "protocol", "split", "seed", "n_test", ...}) and "results", a list with one entry per router."""
    from routereval.errors import ParameterError
    from routereval.evaluate import check_reference_score, evaluate, results_document

    check_reference_score(reference_score)

    if n_boot < 1:
        raise ParameterError(f"--n-boot must be an int >= 1. Got {n_boot}.")
    names = list(dict.fromkeys(r.strip() for r in router.split(",") if r.strip()))  # each router once
    if not names:
        raise ParameterError("--router must name at least one router")
    params = parse_params(param)
    unknown = sorted({k.rpartition(".")[0] for k in params if "." in k} - set(names))
    if unknown:  # a typo in ROUTER.NAME=VALUE must not be dropped silently
        raise ParameterError(f"--param names router {unknown[0]!r}, which is not in --router ({', '.join(names)})")
    per_router = {name: router_params(params, name, several=len(names) > 1) for name in names}
    results = []
    with ui.progress(not as_json) as update:
        for i, name in enumerate(names):
            results.append(evaluate(corpus, benchmark=benchmark, router=name, params=per_router[name], m=m,
                                    group=group, protocol=protocol.value, embedding=embedding, seed=seed,
                                    n_boot=n_boot, reference_score=reference_score, split=ui.split_name(split),
                                    missing=missing, progress=update))
            if len(names) > 1:
                update("routers", i + 1, len(names))
    if as_json:
        ui.print_json(results_document(results))
    elif len(names) == 1:
        _print_result(results[0])
    else:
        _print_comparison(results)


def router_params(params: dict[str, Any], name: str, *, several: bool) -> dict[str, Any]:
    """The parameters of router ``name``: ``ROUTER.k=v`` for it alone, plain ``k=v`` for every router."""
    out = {}
    for key, value in params.items():
        target, dot, pname = key.rpartition(".")
        if not dot:
            out[key] = value
        elif target == name:
            out[pname] = value
    return out


def _print_comparison(results: list[dict]) -> None:
    """One row per router: the paper's metrics plus the consistent diagnostics."""
    first = results[0]
    embeddings = list(dict.fromkeys(r["embedding"] for r in results))
    costs = any(r.get("cost") for r in results)
    rows = []
    for r in results:
        lo, hi = r["mu_ci"]
        row = [r["router"], f"{r['mu']:.4f} [{lo:.3f}, {hi:.3f}]", _fmt(r["v_r"]), f"{r['v_b']:.4f}",
               f"{r['e_p']:.3f}", f"{r['e_sel']:.3f}", _fmt(r["oracle_recall"])]
        if len(embeddings) > 1:  # routers that need no embedding (mlc reads texts) say so on their row
            row.append(r["embedding"])
        if costs:
            c = r.get("cost") or {}
            row += ["-" if "mean_cost" not in c else f"{c['mean_cost']:.6f}",
                    "-" if "aiq" not in c else f"{c['aiq']:.4f} / {_fmt(c['apgr'])}"]
        rows.append(row + [f"{r['fit_s']:.2f}"])
    emb = f"embedding {embeddings[0]}, " if len(embeddings) == 1 else ""
    title = (f"{first['benchmark']}: m={first['m']} {first['group']}, protocol {first['protocol']}, "
             f"{emb}{_split_text(first)}; oracle {first['oracle']:.4f}, best single "
             f"{first['best_single']:.4f} ({first['best_single_model']}), {first['n_test']} test prompts")
    columns = ["router", "µ [95% CI]", "V_R", "V_B", "E_p", "selection entropy", "oracle recall"]
    columns += ["embedding"] * (len(embeddings) > 1) + ["mean cost (USD)", "AIQ / APGR"] * costs + ["fit s"]
    ui.console().print(ui.table(title, columns, rows))


def fit_cmd(
    corpus: CorpusArg, benchmark: BenchOpt, router: RouterOpt, m: MOpt, group: GroupOpt,
    save: Annotated[Path, typer.Option("--save", help="Directory to write the fitted router to.")],
    param: ParamOpt = None, protocol: ProtoOpt = Protocol.clean, embedding: EmbOpt = None, seed: SeedOpt = 42,
    split: ui.SplitOpt = None, missing: MissingOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Fit a router on train (tune on val) and save it with its pool, encoder and metadata (no pickle)."""
    from routereval.evaluate import fit_router

    ui.check_out_dir(save, "--save")
    with ui.progress(not as_json) as update:
        doc = fit_router(corpus, benchmark=benchmark, router=router, params=parse_params(param), m=m, group=group,
                         protocol=protocol.value, embedding=embedding, seed=seed, save=save,
                         split=ui.split_name(split), missing=missing, progress=update)
    if as_json:
        ui.print_json(doc)
    else:
        md = doc["metadata"]
        split_text = _split_text({**doc, **md})
        ui.console().print(f"saved {router} (m={doc['pool']['m']} {doc['pool']['group']} on {doc['pool']['benchmark']}, "
                           f"embedding {doc['encoder']}, {split_text}, fit in {md['fit_s']:.2f} s) to {save}")
        names = [str(n) for n in doc["pool"]["models"]]  # which models it routes among (a trial had to read router.json)
        ui.console().print("pool: " + (", ".join(names) if len(names) <= 20 else
                                       ", ".join(names[:20]) + f" and {len(names) - 20} more (router.json lists them)"))


def routers_cmd(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the registered routers with their parameters, defaults and allowed values."""
    from routereval.routers import available_routers

    rows = []
    for name, cls in available_routers().items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        rows.append({"name": name, "class": f"{cls.__module__}:{cls.__qualname__}",
                     "oracle": bool(getattr(cls, "requires_scores", False)),
                     "input": getattr(cls, "input_kind", "embedding"), "description": doc,
                     "add_model": bool(getattr(cls, "supports_add_model", False)),
                     "parameters": cls.describe_parameters()})
    if as_json:
        ui.print_json(rows)
        return
    table_rows = []
    for r in rows:
        ps = "; ".join(f"{p['name']}={p['default']!r} ({p['constraint']})" for p in r["parameters"]) or "-"
        table_rows.append([r["name"], ps, r["description"]])
    ui.console().print(ui.table("routers", ["name", "parameters (default, allowed)", "description"], table_rows))


def check_router_cmd(spec: Annotated[str, typer.Argument(help="Router name or module:Class.")]) -> int:
    """Run the router contract checks on a router class; exit 2 if any fails."""
    from routereval.routers.base import get_router_class
    from routereval.routers.checks import CHECKS, run_check

    cls = get_router_class(spec)
    failed = 0
    for name in CHECKS:
        res = run_check(cls, name)
        failed += not res.ok
        typer.echo(f"{'PASS' if res.ok else 'FAIL'}  {name}" + ("" if res.ok else f": {res.message}"))
    typer.echo(f"{len(CHECKS) - failed}/{len(CHECKS)} checks passed for {spec}")
    if failed:
        raise typer.Exit(2)
    return 0


def register(app: typer.Typer) -> None:
    """Add eval, fit, routers and check-router to the app."""
    app.command("eval")(eval_cmd)
    app.command("fit")(fit_cmd)
    app.command("routers")(routers_cmd)
    app.command("check-router")(check_router_cmd)
