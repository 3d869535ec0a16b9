"""``import_spec``: a source spec in, a :class:`~routereval.data.model.Corpus` out."""

from __future__ import annotations

import os
from typing import Callable

from routereval.data.model import Benchmark, Corpus
from routereval.sources.spec import load_spec
from routereval.validate import as_path

Reader = Callable[..., list[Benchmark]]


def reader_for(fmt: str) -> Reader:
    """The reader of a format; each is ``reader(table, *, base_dir, spec_file) -> list[Benchmark]``."""
    # imported here: a reader's dependencies load only when its format is used
    if fmt == "long":
        from routereval.sources.tabular import read_long
        return read_long
    if fmt == "wide":
        from routereval.sources.tabular import read_wide
        return read_wide
    if fmt == "scores-json":
        from routereval.sources.scores_json import read_scores_json
        return read_scores_json
    if fmt == "routereval-pickle":
        from routereval.sources.pickles import read_routereval_pickle
        return read_routereval_pickle
    if fmt == "router-dataset-pickle":
        from routereval.sources.pickles import read_router_dataset_pickle
        return read_router_dataset_pickle
    raise AssertionError(f"format {fmt!r} passed spec validation but has no reader")


def import_spec(path: str | os.PathLike) -> Corpus:
    """Read every ``[[benchmark]]`` of a source spec into one corpus (in memory; nothing is written).

    Parameters
    ----------
    path
        The TOML spec; data paths in it are relative to its folder.

    Returns
    -------
    Corpus
        The benchmarks in spec order; benchmark names must be unique across the spec.

    Raises
    ------
    routereval.errors.InputError
        On any bad input, with one line naming the file, row or column and what was expected.
    """
    spec_file = as_path(path, "path (the spec file)")
    tables = load_spec(spec_file)
    base_dir = spec_file.resolve().parent
    benchmarks: list[Benchmark] = []
    for table in tables:
        benchmarks.extend(reader_for(table["format"])(table, base_dir=base_dir, spec_file=spec_file))
    return Corpus.from_benchmarks(benchmarks)
