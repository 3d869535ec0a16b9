"""``routereval coldstart CORPUS ...`` (the leave-one-model-out study), ``routereval coldstart anchors ROUTER_DIR``
and ``routereval add-model ROUTER_DIR``: adding a new model to a router from about 100 answers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from routereval.cli import ui


class _StudyByDefault(TyperGroup):
    """``coldstart CORPUS ...`` runs the study; ``coldstart anchors ROUTER_DIR ...`` the subcommand.

    A corpus directory named like a subcommand (``anchors``, ``study``) is read as the subcommand;
    when that then fails to parse with the study's own options given, the error says to write
    ``./anchors``.
    """

    _STUDY_ONLY = ("--benchmark", "-b", "--m", "--group", "-g", "--anchors", "--pretrain")

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["study", *args]
        elif args and args[0] in self.commands and Path(args[0]).is_dir() and \
                any(a.split("=")[0] in self._STUDY_ONLY for a in args[1:]):
            ctx.meta["coldstart.shadowed"] = args[0]
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            from typer._click.exceptions import UsageError
        except ImportError:  # pragma: no cover - older typer uses click itself
            from click import UsageError
        try:
            return super().invoke(ctx)
        except UsageError as e:
            name = ctx.meta.get("coldstart.shadowed")
            if name is None:
                raise
            raise UsageError(f"{e.format_message().rstrip('. ')}; '{name}' is read as the subcommand: to run the "
                             f"study on the directory '{name}' here, write ./{name}", ctx=e.ctx) from None


coldstart_app = typer.Typer(cls=_StudyByDefault, no_args_is_help=True,
                            help="Cold start: the leave-one-model-out study (coldstart CORPUS ...) and the anchors "
                                 "a new model should answer (coldstart anchors ROUTER_DIR ...).")


def _ints(text: str, what: str) -> list[int]:
    from routereval.errors import ParameterError

    items = [x.strip() for x in text.split(",")]
    if not any(items):
        raise ParameterError(f"{what} must name at least one value")
    if not all(items):  # "10,,20" or "10,": a value left out is a typo, not a shorter list
        raise ParameterError(f"{what} has an empty item in {text!r}; expected comma-separated integers, e.g. "
                             f"10,25,50,100,200")
    try:
        return [int(x) for x in items]
    except ValueError:
        raise ParameterError(f"{what} must be comma-separated integers, e.g. 10,25,50,100,200. Got {text!r}.") from None


def _names(text: str, what: str | None = None) -> list[str]:
    """The comma-separated names of ``text``; with ``what`` (the option), an empty item among names is refused."""
    names = [x.strip() for x in text.split(",")]
    if what is not None and any(names) and not all(names):
        from routereval.errors import ParameterError

        raise ParameterError(f"{what} has an empty item in {text!r}; expected comma-separated names")
    return [x for x in names if x]


@coldstart_app.command("study")
def study_cmd(
    corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
    benchmark: Annotated[str, typer.Option("--benchmark", "-b", help="Benchmark name.")],
    m: Annotated[int, typer.Option("--m", help="Pool size.")],
    group: Annotated[str, typer.Option("--group", "-g", help="all_strong, all_weak, strong_to_weak or random.")],
    router: Annotated[str, typer.Option("--router", "-r", help="A router with add_model: irt, mf, linear, mlp.")] = "irt",
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Router hyperparameter NAME=VALUE.")] = None,
    anchors: Annotated[str, typer.Option("--anchors", help="k values, comma-separated.")] = "10,25,50,100,200",
    method: Annotated[str, typer.Option("--method", help="Anchor methods: random,stratified,irt,fisher,adaptive.")] =
        "random,stratified,irt,fisher,adaptive",
    models: Annotated[Optional[int], typer.Option("--models", help="Hold out N pool models (spread over the pool's "
                                                                   "range; default all).")] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Anchor seeds per (model, method, k).")] = 5,
    pretrain: Annotated[str, typer.Option("--pretrain", help="pool: the prompt side from the pool without the "
                                          "model; corpus (or pool,corpus): also from every corpus model but it, "
                                          "both reported side by side.")] = "pool",
    folds: Annotated[Optional[int], typer.Option("--folds", help="corpus pre-training: held-out models in this many "
                                                 "folds, 1 to the number held out (default one per model: exact "
                                                 "leave-one-out).")] = None,
    corpus_models: Annotated[Optional[int], typer.Option("--corpus-models", help="corpus pre-training on at most N "
                                                         "corpus models (seeded sample, pool included: N >= --m).")] = None,
    embedding: Annotated[Optional[str], typer.Option("--embedding", "-e", help="Encoder (default: stored synth, "
                                                     "else minilm).")] = None,
    missing: Annotated[str, typer.Option("--missing", help="auto, models or prompts (see `routereval pools`).")] = "auto",
    calibrate_test: Annotated[bool, typer.Option("--calibrate-test/--no-calibrate-test", help="Calibrate the test "
                              "prompts' difficulty from the other models' answers (never the held-out one's).")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random split (never of a publisher split), pool "
                                      "and router fits.")] = 42,
    split: ui.SplitOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Output directory: coldstart.csv, plots, summary.md.")] =
        Path("coldstart"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Leave-one-model-out: add each pool model back from k anchors; estimate error and routing µ vs bounds."""
    from routereval.cli.routing import parse_params
    from routereval.coldstart.anchors import METHODS
    from routereval.coldstart.output import (DESIGNED, check_study_dir, designed_note, corpus_cap_note, percent,
                                              plain_cell, plus_minus, write_study)
    from routereval.coldstart.study import run_study
    from routereval.validate import check_choices, option
    from routereval.errors import ParameterError

    chosen = set(_names(pretrain, "--pretrain"))
    if not chosen or not chosen <= {"pool", "corpus"}:
        raise ParameterError(f"--pretrain must be pool, corpus or pool,corpus. Got {pretrain!r}.")
    pretrain = "corpus" if "corpus" in chosen else "pool"  # corpus pre-training is always reported beside pool
    if not _names(method):
        raise ParameterError("--method names no method")
    check_choices(_names(method, "--method"), option("methods", "--method"), METHODS)  # the study's own check
    ui.check_out_dir(out, "--out")
    check_study_dir(out)  # before the study's minutes, not after
    with ui.progress(not as_json) as update:
        res = run_study(corpus, benchmark=benchmark, router=router, params=parse_params(param), m=m, group=group,
                        anchors=_ints(anchors, "--anchors"), methods=_names(method), models=models, seeds=seeds,
                        pretrain=("pool", "corpus") if pretrain == "corpus" else ("pool",), embedding=embedding,
                        seed=seed, missing=missing, folds=folds, corpus_models=corpus_models,
                        calibrate_test=calibrate_test, split=ui.split_name(split), progress=update)
    doc = write_study(res, out)
    if as_json:
        ui.print_json({**doc, "out": str(out)})
        return
    rows = [[s["pretrain"], s["method"], s["k"], plus_minus(s["mae"], s["mae_se"]), f"{s['bias']:+.4f}",
             "-" if s["mae_all"] is None else f"{s['mae_all']:.4f}", plain_cell(s), percent(s["coverage"]),
             s["mu_added"], f"{percent(s['recovered'])} ({s['n_matter']})"] for s in doc["summary"]]
    meta = doc["meta"]
    split_text = ui.split_line(meta["split"], meta["split_note"], (meta["n_train"], meta["n_val"], meta["n_test"]))
    ui.console().print(ui.table(
        f"cold start: {meta['router']} on {meta['benchmark']}, m={meta['m']} {meta['group']}, {split_text}, "
        f"{len(meta['held_out'])} held-out model{'s' * (len(meta['held_out']) != 1)} x {meta['seeds']} "
        f"seed{'s' * (meta['seeds'] != 1)}",
        ["pretrain", "method", "k", "error (MAE ± SE)", "bias", "whole-benchmark MAE", "plain mean MAE", "coverage",
         "µ added", "recovered (n)"], rows))
    if any(s["method"] in DESIGNED for s in doc["summary"]):
        ui.console().print(designed_note(s["method"] for s in doc["summary"]))
    if (capped := corpus_cap_note(meta)) is not None:
        ui.console().print(capped)
    ui.console().print(f"add one model: median {meta['add_ms_median']:.2f} ms; study {meta['total_s']:.1f} s; "
                       f"written to {out}/ (coldstart.csv, summary.md, plots)")


@coldstart_app.command("anchors")
def anchors_cmd(
    router_dir: Annotated[Path, typer.Argument(help="A saved router directory (routereval fit --save).")],
    k: Annotated[Optional[int], typer.Option("--k", help="Number of anchors (default 100; adaptive: the next 1).")
                 ] = None,
    method: Annotated[str, typer.Option("--method", help="random, stratified, irt, fisher, or adaptive (one prompt "
                                        "at a time: give the answers so far with --answers).")] = "irt",
    answers: Annotated[Optional[Path], typer.Option("--answers", help="adaptive: the new model's answers so far "
                                                    "(CSV text,score, as add-model reads); none: the test's "
                                                    "start.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="adaptive: the new model's name, should the corpus "
                                                "hold its records (they are then no reference of the estimate, as "
                                                "in add-model).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed gives the same anchors.")] = 0,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus directory (default: the one the router "
                                                   "was fitted on).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the CSV here (default: stdout).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Print the train prompts a new model should answer (CSV: prompt_id, subset, method, weight, text, and score to
    fill in; keep the other columns: add-model reads weight and method).

    With --method adaptive, the next prompt(s) of an adaptive test given the answers so far
    (--answers), and the current estimate of the model's mean score on stderr.
    """
    import io

    from routereval.coldstart.anchors import METHODS
    from routereval.coldstart.answers import write_anchor_csv
    from routereval.coldstart.context import open_router_context
    from routereval.coldstart.saved import adaptive_next, anchor_table
    from routereval.errors import ParameterError
    from routereval.reports.build import check_out, write_atomic
    from routereval.validate import option

    if method not in METHODS:  # before --answers is judged: a misspelt adaptive is a bad method
        raise ParameterError(f"{option('method')} must be one of {', '.join(METHODS)}. Got {method!r}.")
    if (answers is not None or name is not None) and method != "adaptive":
        raise ParameterError(f"{'--answers' if answers is not None else '--name'}: only --method adaptive depends on "
                             f"the answers so far; {method} anchors are chosen before any answer (leave it out)")

    if out is not None:
        check_out(out)  # a bad --out fails before the anchors are chosen
        if not _blank_anchors(out):
            from routereval.errors import InputError

            raise InputError("exists and is not a blank anchors file (it may hold a model's answers); refusing to "
                             "overwrite it: choose another --out, or delete the file first", file=out)
    ctx = open_router_context(router_dir, corpus=corpus)
    # --json is one object for every method: the rows to ask under "anchors"; the adaptive test adds its state
    doc: dict = {"method": method, "seed": seed}
    if method == "adaptive":
        doc |= adaptive_next(ctx, 1 if k is None else k, answers=answers, seed=seed, name=name)
        if not as_json:
            sys.stderr.write(_adaptive_note(doc))
    else:
        doc["anchors"] = anchor_table(ctx, 100 if k is None else k, method, seed=seed)
    rows = doc["anchors"]
    if out is not None:  # the CSV to fill in; with --json as well, the JSON still goes to stdout
        buf = io.StringIO()
        write_anchor_csv(rows, buf)
        write_atomic(buf.getvalue(), out)
        if not as_json:
            sys.stderr.write(f"{len(rows)} anchors written to {out}\n")
    if as_json:
        ui.print_json(doc)
    elif out is None:
        write_anchor_csv(rows, sys.stdout)


def _adaptive_note(doc: dict) -> str:
    """The line ``coldstart anchors --method adaptive`` writes to stderr: the answers so far and the estimate."""
    n = doc["answered"]
    if not n:
        return "adaptive test: no answer yet; answer the prompt(s) below, add them to --answers, run this again\n"
    e = doc["estimate"]
    done = "" if doc["anchors"] else "; every train prompt is answered (one per text)"
    return (f"adaptive test: {n} answer{'s' * (n != 1)}, estimated mean score {e['mean']:.3f} "
            f"[{e['low']:.3f}, {e['high']:.3f}]{done}\n")


def _blank_anchors(path: Path) -> bool:
    """Whether ``path`` may be replaced by anchors: missing, empty, or an anchors CSV whose ``score`` column
    is blank on every row. Anything else (filled-in scores, a spreadsheet's other encoding or separator,
    a renamed column) may hold a model's answers."""
    import csv

    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return True
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return "score" in (reader.fieldnames or []) and not any((r.get("score") or "").strip() for r in rows)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def _correction_note(correction: float, n_references: int, at_level: int | None = None) -> str:
    """What the printed line says of the neighbours' correction: its size and how many references it drew on
    (``at_level``: for an adaptive test's answers, how many of them answered its prompts at the model's level)."""
    from routereval.coldstart.neighbours import NEIGHBOURS

    if not n_references:
        return ""
    if at_level is None:
        n, pool = n_references, f"its {n_references} reference models"
    elif not at_level:
        return (f" (no neighbours' correction: none of its {n_references} reference models answered the test at its "
                "level)")
    else:
        n, pool = at_level, f"the {at_level} of its {n_references} reference models at its level on the test"
    among = pool if n <= NEIGHBOURS else f"the {NEIGHBOURS} (more when tied) of {pool} that answered most alike"
    return f" (neighbours' correction {round(correction, 3) + 0.0:+.3f}, from {among})"  # + 0.0: no '-0.000'


def add_model_cmd(
    router_dir: Annotated[Path, typer.Argument(help="A saved router directory.")],
    name: Annotated[str, typer.Option("--name", help="The new model's name (not already in the pool).")],
    answers: Annotated[Path, typer.Option("--answers", help="CSV with columns text,score (and the anchors file's weight and method).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory of the new version (default ROUTER_DIR-vN; "
                                                "ROUTER_DIR itself replaces it).")] = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus directory (default: the router's).")] = None,
    allow_new_prompts: Annotated[bool, typer.Option("--allow-new-prompts", help="Embed answer texts that are not "
                                                    "prompts of the router's benchmark (default: an error).")] = False,
    cost: Annotated[Optional[float], typer.Option("--cost", help="The new model's mean cost per prompt in USD, when "
                                                  "the pool has costs (else cost-aware routing is refused).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Add a model to a saved router from its answers on a few prompts; save a new version (no pickle)."""
    from routereval.coldstart.saved import add_model_to_saved

    ui.check_out_dir(out, "--out")
    doc = add_model_to_saved(router_dir, name=name, answers=answers, out=out, corpus=corpus,
                             allow_new_prompts=allow_new_prompts, cost=cost)
    if as_json:
        ui.print_json(doc)
        return
    e = doc["estimate"]
    share = doc["routing"]["routed_share"]
    n = doc["n_answers"]
    ui.console().print(f"added {doc['model']} from {n} answer{'s' * (n != 1)}: pool of {doc['m']} models saved to "
                       f"{doc['path']}; estimated mean score {e['mean']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"
                       + _correction_note(e["correction"], doc["n_references"], doc.get("n_references_at_level"))
                       + ("" if share is None else f"; routing sends it {share:.0%} of the held-out prompts"))
    for note in doc.get("notes", []):
        sys.stderr.write(f"note: {note}\n")


def register(app: typer.Typer) -> None:
    """Add ``coldstart`` (study, anchors) and ``add-model`` to the app."""
    app.add_typer(coldstart_app, name="coldstart")
    app.command("add-model")(add_model_cmd)
