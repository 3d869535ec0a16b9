"""``routereval data ...``: bring records in, synthesise corpora, inspect and verify them."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from routereval.cli import ui

data_app = typer.Typer(help="Import, download, synthesise and inspect corpora of performance records.",
                       no_args_is_help=True)


class Scale(str, Enum):
    tiny = "tiny"
    small = "small"
    full = "full"


class Part(str, Enum):
    router_dataset = "router_dataset"
    leaderboard_score = "leaderboard_score"
    leaderboard_prompt = "leaderboard_prompt"
    leaderboard_embed = "leaderboard_embed"


def _print_info(path: Path, as_json: bool, models: bool = False) -> None:
    from routereval.data.info import corpus_info

    info = corpus_info(path, models=models)
    if as_json:
        ui.print_json(info)
        return
    rows = []
    for name, b in info["benchmarks"].items():
        ms = b["mean_score"]
        rows.append([name, f"{b['models']:,}", f"{b['prompts']:,}", f"{b['records']:,}", "binary" if b["binary"] else "graded",
                     f"{100 * b['missing']:.2f}%", f"{ms['min']:.3f} / {ms['median']:.3f} / {ms['max']:.3f}",
                     "yes" if b["cost"] else "no", ", ".join(b["splits"])])
    con = ui.console()
    con.print(ui.table(
        f"{path}: {info['models']:,} models, {info['records']:,} records",
        ["benchmark", "models", "prompts", "records", "scores", "missing", "model mean min / median / max", "cost",
         "splits"], rows))
    for name, b in info["benchmarks"].items():
        pub = b["publisher_split"]
        if pub:
            con.print(f"{name}: publisher split {pub['train']}/{pub['val']}/{pub['test']} ({pub['note']})")
    if models:
        for name, b in info["benchmarks"].items():
            con.print(ui.table(f"{name}: models", ["model", "mean", "records"],
                               [[r["model"], r["mean"], f"{r['records']:,}"] for r in b["per_model"]]))


@data_app.command("import")
def import_cmd(
    spec: Annotated[Path, typer.Argument(help="Source spec (TOML), one \\[\\[benchmark]] table per benchmark.")],
    out: Annotated[Path, typer.Option("--out", help="Corpus directory to write.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the corpus info as JSON.")] = False,
) -> None:
    """Import performance records described by a source spec into a corpus."""
    from routereval.data.store import write_corpus
    from routereval.sources import import_spec

    ui.check_out_dir(out, "--out")
    corpus = import_spec(spec)
    with ui.progress(not as_json) as update:
        write_corpus(corpus, out, progress=update)
    _print_info(out, as_json)


@data_app.command("info")
def info_cmd(
    corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
    models: Annotated[bool, typer.Option(
        "--models", help="Also every model's mean score and record count per benchmark.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per benchmark: models, prompts, records, binary or graded, missing share, spread of model means, cost,
    splits (publisher, random); with --models every model's mean and record count."""
    _print_info(corpus, as_json, models)


@data_app.command("verify")
def verify_cmd(corpus: Annotated[Path, typer.Argument(help="Corpus directory.")]) -> None:
    """Recompute the manifest's checksums; exit 2 if any file differs."""
    from routereval.data.store import verify_corpus
    from routereval.errors import CorpusError

    bad = verify_corpus(corpus)
    if bad:
        raise CorpusError(f"{corpus}: {len(bad)} file(s) do not match the manifest: {', '.join(bad[:5])}")
    ui.console().print(f"{corpus}: every checksum matches")


@data_app.command("synth")
def synth_cmd(
    out: Annotated[Path, typer.Option("--out", help="Corpus directory to write.")],
    scale: Annotated[Scale, typer.Option("--scale", help="tiny (unit tests), small (seconds), full (RouterEval's 201.7M records).")] = Scale.small,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the corpus is a function of (scale, seed).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the corpus info as JSON.")] = False,
) -> None:
    """Generate a synthetic corpus with the real RouterEval corpus's shape."""
    from routereval.sources.synth import synth_corpus

    ui.check_out_dir(out, "--out")
    with ui.progress(not as_json) as update:
        synth_corpus(out, scale=scale.value, seed=seed, progress=update)
    _print_info(out, as_json)


@data_app.command("download")
def download_cmd(
    out: Annotated[Path, typer.Option("--out", help="Directory to download into.")],
    part: Annotated[Optional[list[Part]], typer.Option("--part", help="Part(s) of the official data; all when omitted.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the downloaded files as JSON.")] = False,
) -> None:
    """Fetch the official RouterEval data (dataset linggm/RouterEval) from the Hugging Face hub."""
    from routereval.sources.download import download

    ui.check_out_dir(out, "--out")
    files = download(out, parts=None if not part else [p.value for p in part], progress=not as_json)
    if as_json:
        ui.print_json({"files": [str(f) for f in files]})
    else:
        ui.console().print(f"{len(files)} file(s) in {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
