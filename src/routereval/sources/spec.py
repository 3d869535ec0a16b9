"""Source specs: TOML files with one ``[[benchmark]]`` table per benchmark.

A spec names, for each benchmark, a format, the file(s) holding its records (paths
relative to the spec file) and which columns or keys mean what::

    [[benchmark]]
    name = "mmlu_pro"
    format = "long"
    path = "mmlu_pro_correctness_long.csv.gz"
    model = "model"
    prompt = "question_id"
    score = "correct"
    subset = "category"
    [benchmark.prompts]
    path = "mmlu_pro_questions.jsonl.gz"
    id = "question_id"
    text = "question"

:func:`load_spec` parses and validates the file (unknown keys, missing keys and
wrong types are an :class:`~routereval.errors.InputError` naming the spec file and
the table) and fills in defaults; the readers then trust the tables they get.
The two pickle formats are validated by their own reader beyond ``format``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from routereval.data.splits import DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, SPLIT_LABELS
from routereval.errors import InputError
from routereval.validate import as_path

FORMATS = ("long", "wide", "scores-json", "routereval-pickle", "router-dataset-pickle")
PICKLE_FORMATS = ("routereval-pickle", "router-dataset-pickle")

# key -> (type check, what it is); ``str`` keys name columns or keys of the data files.
_STR, _STRS, _NUM, _PATHS, _TABLE = "a string", "a list of strings", "a number", "a string or a list of strings", "a table"
_INT = "an integer"
_FILES = "a string, or a list of strings or {file = \"...\", split = \"train\"|\"val\"|\"test\"} tables"

_COMMON: dict[str, tuple[str, str]] = {
    "name": (_STR, "the benchmark name (the prefix of the names when `benchmark` splits a file)"),
    "format": (_STR, f"one of {', '.join(FORMATS)}"),
    "path": (_FILES, "the data file(s), relative to the spec file, each optionally labelled with its publisher split"),
    "benchmark": (_STR, "a column whose values split the records into several benchmarks"),
    "subset": (_STR, "the column holding each prompt's subset"),
    "text": (_STR, "the column holding the prompt text"),
    "text_parser": (_STR, 'how to read the text column: "plain" or "python-list"'),
    "gold": (_STR, "the column holding the reference answer"),
    "exclude_models": (_STRS, "models to leave out"),
    "score_offset": (_NUM, "added to every score (after score_scale)"),
    "score_scale": (_NUM, "every score is multiplied by it"),
    "duplicates": (_STR, '"error" (default) or "mean": what to do with several records of one (model, prompt)'),
    "missing": (_STR, '"error" (default) or "skip": what an empty or NaN score (and, in wide files, '
                        'a model column absent from some of the files) means'),
    "split": (_STR, "the column (key) holding each prompt's publisher split: train, val or test"),
    "val_fraction": (_NUM, f"share of each subset's train prompts carved into val when the publisher split has "
                           f"no val prompts, in [0, 1) (default {DEFAULT_VAL_FRACTION})"),
    "split_seed": (_INT, f"seed of that carving (default {DEFAULT_SPLIT_SEED})"),
    "score_rule": (_STR, '"nonzero" (score > 0 -> 1, else 0) or "threshold:T" (score >= T -> 1, else 0, '
                         'T in (0, 1]), applied after score_scale/score_offset'),
    "prompts": (_TABLE, "a prompt table joined on id: path, id, text, gold, subset, text_parser"),
}
_BY_FORMAT: dict[str, dict[str, tuple[str, str]]] = {
    "long": {
        "model": (_STR, "the column holding the model name"),
        "prompt": (_STR, "the column holding the prompt id"),
        "score": (_STR, "the column holding the score"),
        "cost": (_STR, "the column holding the cost of the query (USD)"),
    },
    "wide": {
        "prompt": (_STR, "the column holding the prompt id"),
        "models": (_STRS, "the score columns, one per model (default: every column not otherwise named)"),
        "ignore": (_STRS, "columns that are not models (shell-style patterns, e.g. \"*|model_response\")"),
        "cost_suffix": (_STR, "the suffix of the per-model cost columns, e.g. \"|total_cost\""),
    },
    "scores-json": {
        "question": (_STR, 'the key holding the prompt text (default "question")'),
        "scores": (_STR, 'the key holding the {model: score} object (default "scores")'),
        "prompt": (_STR, "the key holding the prompt id (default: the 1-based position in the file(s))"),
        "costs": (_STR, "the key holding a {model: cost} object"),
    },
}
_REQUIRED = {
    "long": ("path", "model", "prompt", "score"),
    "wide": ("path", "prompt"),
    "scores-json": ("path",),
}
_DEFAULTS: dict[str, Any] = {
    "text_parser": "plain", "exclude_models": [], "score_offset": 0.0, "score_scale": 1.0,
    "duplicates": "error", "missing": "error",
}
_FORMAT_DEFAULTS = {"scores-json": {"question": "question", "scores": "scores"}, "wide": {"ignore": []}}
_CHOICES = {"text_parser": ("plain", "python-list"), "duplicates": ("error", "mean"), "missing": ("error", "skip")}
_PROMPTS_KEYS: dict[str, tuple[str, str]] = {
    "path": (_PATHS, "the prompt table file(s), relative to the spec file"),
    "id": (_STR, "the column holding the prompt id"),
    "text": (_STR, "the column holding the prompt text"),
    "text_parser": (_STR, '"plain" or "python-list"'),
    "gold": (_STR, "the column holding the reference answer"),
    "subset": (_STR, "the column holding the prompt's subset"),
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def table_label(table: dict, index: int | None = None) -> str:
    """How error messages name a ``[[benchmark]]`` table: its name, else its position."""
    name = table.get("name")
    if isinstance(name, str):
        return f"[[benchmark]] {name!r}"
    return "[[benchmark]]" if index is None else f"[[benchmark]] #{index + 1}"


def _check_type(value: Any, kind: str) -> bool:
    if kind == _STR:
        return isinstance(value, str)
    if kind == _STRS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == _PATHS:
        return isinstance(value, str) or (isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value))
    if kind == _FILES:
        return isinstance(value, str) or (isinstance(value, list) and bool(value)
                                          and all(isinstance(v, (str, dict)) for v in value))
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, dict)


def parse_score_rule(rule: str, *, where: str = "", spec_file: Path | None = None) -> tuple[str, float]:
    """``"nonzero"`` -> ("nonzero", 0.0); ``"threshold:T"`` -> ("threshold", T) with T in (0, 1].

    Anything else is an :class:`InputError` naming the spec file, the table and the key.
    """
    kind, sep, raw = rule.partition(":")
    if rule == "nonzero":
        return "nonzero", 0.0
    if kind == "threshold" and sep:
        try:
            t = float(raw)
        except ValueError:
            t = math.nan
        if 0 < t <= 1:  # NaN fails too
            return "threshold", t
    raise InputError(f"{where}: key 'score_rule' is {rule!r}; expected \"nonzero\" or \"threshold:T\" with T a "
                     "number in (0, 1], e.g. \"threshold:0.5\"", file=spec_file)


def path_split_labels(value: str | list, *, where: str, spec_file: Path) -> list[str | None]:
    """The publisher-split label of each entry of a ``path`` key (None where unlabelled).

    Entries are file names or ``{file = "...", split = "train"}`` tables; labelling some
    files and not others is an error (a file's prompts would have no split).
    """
    entries = [value] if isinstance(value, str) else list(value)
    labels: list[str | None] = []
    for i, e in enumerate(entries, start=1):
        if isinstance(e, str):
            labels.append(None)
            continue
        keys = sorted(e)
        if keys != ["file", "split"] or not isinstance(e["file"], str) or e["split"] not in SPLIT_LABELS:
            raise InputError(f"{where}: path entry {i} is {e!r}; expected a file name or a table "
                             f"{{file = \"...\", split = \"train\"}} with split one of: {', '.join(SPLIT_LABELS)}",
                             file=spec_file)
        labels.append(e["split"])
    if any(lab is not None for lab in labels) and any(lab is None for lab in labels):
        i = labels.index(None) + 1
        raise InputError(f"{where}: path entry {i} has no split label but others do; expected every file labelled "
                         "{file = ..., split = ...} or none", file=spec_file)
    return labels


def _check_keys(table: dict, allowed: dict[str, tuple[str, str]], required: tuple[str, ...], where: str,
                spec_file: Path) -> None:
    for key in table:
        if key not in allowed:
            raise InputError(f"{where}: unknown key {key!r}; expected one of: {', '.join(allowed)}", file=spec_file)
    for key in required:
        if key not in table:
            raise InputError(f"{where}: missing required key {key!r} ({allowed[key][1]})", file=spec_file)
    for key, value in table.items():
        kind, what = allowed[key]
        if not _check_type(value, kind):
            raise InputError(f"{where}: key {key!r} is {value!r}; expected {kind} ({what})", file=spec_file)
        if key in _CHOICES and value not in _CHOICES[key]:
            raise InputError(f"{where}: key {key!r} is {value!r}; expected one of: "
                             f"{', '.join(repr(c) for c in _CHOICES[key])}", file=spec_file)


def normalize_table(table: dict, *, spec_file: Path, index: int | None = None) -> dict:
    """Validate one ``[[benchmark]]`` table and return a copy with defaults filled in.

    Pickle formats are returned as given (their reader validates the rest).
    """
    where = table_label(table, index)
    if not isinstance(table, dict):
        raise InputError(f"{where}: expected a table", file=spec_file)
    fmt = table.get("format")
    if fmt is None:
        raise InputError(f"{where}: missing required key 'format' (one of: {', '.join(FORMATS)})", file=spec_file)
    if fmt not in FORMATS:
        raise InputError(f"{where}: unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}", file=spec_file)
    if fmt in PICKLE_FORMATS:
        return dict(table)
    allowed = {**_COMMON, **_BY_FORMAT[fmt]}
    required = _REQUIRED[fmt] + (() if "benchmark" in table else ("name",))
    _check_keys(table, allowed, required, where, spec_file)
    if "name" in table and not NAME_PATTERN.match(table["name"]):
        raise InputError(f"{where}: name {table['name']!r} is not a valid benchmark name; expected letters, "
                         "digits, '_', '-' or '.'", file=spec_file)
    _check_split_keys(table, where, spec_file)
    out = {**_DEFAULTS, **_FORMAT_DEFAULTS.get(fmt, {}), **table}
    if "prompts" in table:
        p = table["prompts"]
        _check_keys(p, _PROMPTS_KEYS, ("path", "id"), f"{where} [benchmark.prompts]", spec_file)
        out["prompts"] = {"text_parser": "plain", **p}
    if fmt == "scores-json" and out.get("text") is not None:
        raise InputError(f"{where}: key 'text' is not used by the scores-json format; the prompt text is "
                         "the key named by 'question'", file=spec_file)
    return out


def _check_split_keys(table: dict, where: str, spec_file: Path) -> None:
    """Publisher-split and scoring-rule keys: values in range, and used together sensibly."""
    labelled = any(lab is not None for lab in path_split_labels(table["path"], where=where, spec_file=spec_file))
    if labelled and "split" in table:
        raise InputError(f"{where}: both a split column (split = {table['split']!r}) and per-file split labels; "
                         "expected one of them", file=spec_file)
    for key in ("val_fraction", "split_seed"):
        if key in table and not (labelled or "split" in table):
            raise InputError(f"{where}: key {key!r} is only used with a publisher split; expected a split column "
                             "(split = \"...\") or per-file split labels in path", file=spec_file)
    if "val_fraction" in table and not 0 <= table["val_fraction"] < 1:
        raise InputError(f"{where}: key 'val_fraction' is {table['val_fraction']!r}; expected a number in [0, 1)",
                         file=spec_file)
    if "split_seed" in table and not 0 <= table["split_seed"] < 2**32:
        raise InputError(f"{where}: key 'split_seed' is {table['split_seed']!r}; expected an integer in "
                         "[0, 2**32 - 1]", file=spec_file)
    if "score_rule" in table:
        parse_score_rule(table["score_rule"], where=where, spec_file=spec_file)


def load_spec(path: str | Path) -> list[dict]:
    """Parse and validate a source spec.

    Parameters
    ----------
    path
        The TOML spec file (a str or pathlib.Path).

    Returns
    -------
    list of dict
        One validated table (defaults filled in) per ``[[benchmark]]``, in file order.
    """
    import tomllib

    spec_file = as_path(path, "path (the spec file)")
    if not spec_file.is_file():
        what = "is a directory" if spec_file.is_dir() else "spec file does not exist"
        raise InputError(f"{what}; expected a TOML file with [[benchmark]] tables", file=spec_file)
    try:
        doc = tomllib.loads(spec_file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"invalid TOML: {e}", file=spec_file) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text ({e.reason}); expected a TOML file", file=spec_file) from None
    unknown = [k for k in doc if k != "benchmark"]
    if unknown:
        raise InputError(f"unknown top-level key {unknown[0]!r}; expected only [[benchmark]] tables", file=spec_file)
    tables = doc.get("benchmark")
    if not isinstance(tables, list) or not tables:
        raise InputError("no [[benchmark]] table; expected at least one", file=spec_file)
    return [normalize_table(t, spec_file=spec_file, index=i) for i, t in enumerate(tables)]


def resolve_paths(value: str | list, *, base_dir: Path, spec_file: Path, where: str) -> list[Path]:
    """The data files a ``path`` key names (``{file, split}`` entries: their file), resolved
    against ``base_dir``; each must exist."""
    paths = [value] if isinstance(value, str) else [v["file"] if isinstance(v, dict) else v for v in value]
    out = []
    for p in paths:
        full = (base_dir / p) if not Path(p).is_absolute() else Path(p)
        if not full.is_file():
            what = "is a directory" if full.is_dir() else "does not exist"
            raise InputError(f"{where}: data file {p!r} {what} (looked for {full}); expected a readable file",
                             file=spec_file)
        out.append(full)
    return out
