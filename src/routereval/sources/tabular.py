"""Tabular sources: ``long`` (one row per record) and ``wide`` (one row per prompt).

Files are read with pyarrow (csv, csv.gz, parquet, jsonl, jsonl.gz) or the standard
``json`` module (a .json list of objects), never by hand. Every reader turns its
files into :class:`Records` (flat arrays, one entry per (model, prompt) record, with
the file and 1-based data row each came from) and :func:`records_to_benchmarks`
turns records into :class:`~routereval.data.model.Benchmark` objects: transform,
checks with the offending row named, duplicates, the optional prompt table.

Row numbers in messages are 1-based data rows as a user counts them: the header of
a CSV file is not counted, the first line of a JSON-lines file is row 1, the first
element of a JSON list is row 1.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from routereval.data.splits import DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, SPLIT_LABELS, publisher_split_from_labels
from routereval.errors import InputError
from routereval.sources.spec import NAME_PATTERN, parse_score_rule, path_split_labels, resolve_paths, table_label

if TYPE_CHECKING:
    import pyarrow as pa

    from routereval.data.model import Benchmark

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".json", ".jsonl", ".jsonl.gz")


# ---------------------------------------------------------------------------- reading files
def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(s):
            return s
    raise InputError(f"unsupported file type; expected one of: {', '.join(SUFFIXES)}", file=path)


def _table_from_rows(rows: list, path: Path) -> "pa.Table":
    """A pyarrow table from a list of JSON objects (row i is 1-based data row i + 1)."""
    import json

    import pyarrow as pa

    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise InputError(f"is {type(r).__name__}; expected a JSON object", file=path, row=i + 1)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cols = {}
    for k in keys:
        values = [r.get(k) for r in rows]
        try:
            cols[k] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep them as text
            cols[k] = pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values])
    return pa.table(cols) if cols else pa.table({})


def _read_json_lines(path: Path) -> list:
    import gzip
    import json

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"invalid JSON ({e.msg} at column {e.colno}); expected one JSON object per line",
                                 file=path, row=i) from None
    return rows


def read_json_rows(path: Path) -> list:
    """The objects of a .json list or a .jsonl(.gz) file, parsed with the ``json`` module."""
    import json

    if _suffix(path) == ".json":
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                             "expected a JSON list of objects", file=path) from None
        if not isinstance(doc, list):
            raise InputError(f"holds a JSON {type(doc).__name__}; expected a JSON list of objects", file=path)
        return doc
    return _read_json_lines(path)


def read_table(path: Path, *, strings: tuple[str, ...] = ()) -> "pa.Table":
    """Read one data file into a pyarrow table.

    Parameters
    ----------
    path
        A csv, csv.gz, parquet, json (a list of objects), jsonl or jsonl.gz file.
    strings
        Columns to read as text whatever they look like (ids: "007" stays "007").
    """
    import pyarrow as pa

    kind = _suffix(path)
    try:
        if kind in (".csv", ".csv.gz"):
            return _read_csv(path, strings)
        if kind == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if kind == ".json":
            return _table_from_rows(read_json_rows(path), path)
        import pyarrow.json as pj

        try:
            return pj.read_json(path)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # the stdlib parser names the bad line, or copes with mixed types
            return _table_from_rows(_read_json_lines(path), path)
    except InputError:
        raise
    except (pa.ArrowException, OSError, EOFError, UnicodeDecodeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"cannot be read ({msg}); expected a valid {kind.lstrip('.')} file", file=path) from None


def _read_csv(path: Path, strings: tuple[str, ...]) -> "pa.Table":
    import pyarrow as pa
    import pyarrow.csv as pc

    convert = pc.ConvertOptions(column_types={c: pa.string() for c in strings})
    try:
        return pc.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as e:
        # re-read single-threaded: only then does pyarrow number the bad row
        bad: list = []

        def handler(row):
            bad.append(row)
            return "error"

        try:
            pc.read_csv(path, convert_options=convert, read_options=pc.ReadOptions(use_threads=False),
                        parse_options=pc.ParseOptions(invalid_row_handler=handler))
        except pa.ArrowInvalid:
            pass
        if bad and bad[0].number is not None:
            r = bad[0]
            sep = " (the header is one column: a file separated by ';' or tabs? expected commas)" \
                if r.expected_columns == 1 else ""
            raise InputError(f"has {r.actual_columns} fields; expected {r.expected_columns}, as many as the "
                             f"header{sep}", file=path, row=r.number - 1) from None
        raise InputError(f"cannot be read as CSV ({str(e).splitlines()[0]})", file=path) from None


def _require(tbl: "pa.Table", column: str, path: Path, what: str) -> None:
    if column not in tbl.column_names:
        have = ", ".join(repr(c) for c in tbl.column_names[:12]) + (" ..." if tbl.num_columns > 12 else "")
        sep = next((f"; the header is one column holding {c!r}: a file separated by {c!r}? expected commas"
                    for c in (";", "\t", "|") if tbl.num_columns == 1 and c in tbl.column_names[0]), "")
        raise InputError(f"is not in the file; expected {what} (columns: {have}){sep}", file=path, column=column)


def str_column(tbl: "pa.Table", column: str, path: Path, what: str, *, allow_empty: bool = False) -> np.ndarray:
    """(n_rows,) object array of the column's values as text; empty cells are an error unless allowed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    _require(tbl, column, path, what)
    col = tbl.column(column)
    if not allow_empty and col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0]) + 1
        raise InputError(f"is empty; expected {what}", file=path, row=row, column=column)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        if pa.types.is_floating(col.type):  # 3.0 -> "3" for ids read as floats
            vals = col.to_numpy(zero_copy_only=False)
            whole = np.isfinite(vals) & (vals == np.round(vals))
            if whole.all():
                col = pa.chunked_array([pa.array(vals.astype(np.int64))])
        try:
            col = pc.cast(col, pa.string())
        except pa.ArrowException:
            return np.array([None if v is None else str(v) for v in col.to_pylist()], dtype=object)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)


def float_column(tbl: "pa.Table", column: str, path: Path, what: str) -> np.ndarray:
    """(n_rows,) float64 of the column; empty cells are NaN; text that is not a number is an error."""
    import pyarrow as pa

    _require(tbl, column, path, what)
    col = tbl.column(column)
    if pa.types.is_boolean(col.type) or pa.types.is_integer(col.type) or pa.types.is_floating(col.type) \
            or pa.types.is_null(col.type):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    values = col.to_pylist()
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):  # only reached for text columns: find the offending cell
        try:
            out[i] = np.nan if v is None or v == "" else float(v)
        except (TypeError, ValueError):
            raise InputError(f"{v!r} is not a number; expected {what}", file=path, row=i + 1, column=column) from None
    return out


def parse_texts(values: np.ndarray, parser: str, path: Path, column: str) -> np.ndarray:
    """Apply a ``text_parser``: "python-list" reads a Python list literal safely (``ast.literal_eval``)."""
    if parser == "plain":
        return values
    import ast

    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values.tolist()):
        try:
            parsed = ast.literal_eval(v) if isinstance(v, str) else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if not isinstance(parsed, (list, tuple)) or not all(isinstance(s, str) for s in parsed):
            raise InputError("is not the Python repr of a list of strings; expected e.g. ['text'] "
                             "(text_parser = \"python-list\")", file=path, row=i + 1, column=column)
        out[i] = "\n".join(parsed)
    return out


# ---------------------------------------------------------------------------- records
@dataclass
class Records:
    """Flat (model, prompt, score) records and where each came from.

    Every array has shape (n_records,). ``score_column`` names the column a score came
    from when it is the same for every record (long format); otherwise the model
    name is the column (wide format) or the score key (scores-json).
    """

    files: list[Path]
    model: np.ndarray
    prompt: np.ndarray
    score: np.ndarray
    src: np.ndarray            # index into ``files``
    row: np.ndarray            # 1-based data row in that file
    cost: np.ndarray | None = None
    subset: np.ndarray | None = None
    text: np.ndarray | None = None
    gold: np.ndarray | None = None
    bench: np.ndarray | None = None
    score_column: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    split: np.ndarray | None = None  # publisher split label ("train", "val", "test") of each record

    @staticmethod
    def concat(parts: list["Records"]) -> "Records":
        """One :class:`Records` from per-file parts (their ``src`` re-based)."""
        files = [f for p in parts for f in p.files]
        offsets = np.cumsum([0] + [len(p.files) for p in parts[:-1]])

        def cat(name):
            arrs = [getattr(p, name) for p in parts]
            if all(a is None for a in arrs):
                return None
            if any(a is None for a in arrs):
                fill = np.nan if name == "cost" else None
                arrs = [np.full(len(p.model), fill, dtype=np.float64 if name == "cost" else object) if a is None else a
                        for a, p in zip(arrs, parts)]
            return np.concatenate(arrs)

        return Records(
            files=files, model=np.concatenate([p.model for p in parts]), prompt=np.concatenate([p.prompt for p in parts]),
            score=np.concatenate([p.score for p in parts]),
            src=np.concatenate([p.src + o for p, o in zip(parts, offsets)]), row=np.concatenate([p.row for p in parts]),
            cost=cat("cost"), subset=cat("subset"), text=cat("text"), gold=cat("gold"), bench=cat("bench"),
            score_column=parts[0].score_column if len({p.score_column for p in parts}) == 1 else None,
            split=cat("split"),
        )

    def take(self, idx: np.ndarray) -> "Records":
        sub = lambda a: None if a is None else a[idx]  # noqa: E731
        return Records(self.files, self.model[idx], self.prompt[idx], self.score[idx], self.src[idx], self.row[idx],
                       sub(self.cost), sub(self.subset), sub(self.text), sub(self.gold), sub(self.bench),
                       self.score_column, split=sub(self.split))

    def error(self, i: int, message: str, *, column: str | None = None) -> InputError:
        """An :class:`InputError` naming the file and row of record ``i``."""
        return InputError(message, file=self.files[int(self.src[i])], row=int(self.row[i]), column=column)

    def where(self, i: int, relative_to: int) -> str:
        """"row N" (with the file when it differs from record ``relative_to``'s)."""
        if self.src[i] == self.src[relative_to]:
            return f"row {int(self.row[i])}"
        return f"{self.files[int(self.src[i])]} row {int(self.row[i])}"


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes in order of first appearance: (codes (n,), uniques (k,))."""
    lookup: dict = {}
    codes = np.fromiter((lookup.setdefault(v, len(lookup)) for v in values.tolist()), dtype=np.int64,
                        count=len(values))
    return codes, np.array(list(lookup), dtype=object)


@dataclass
class PromptTable:
    """An optional ``[benchmark.prompts]`` table: prompt metadata joined on id."""

    files: list[Path]
    ids: np.ndarray
    index: dict
    text: np.ndarray | None
    gold: np.ndarray | None
    subset: np.ndarray | None
    id_column: str


def read_prompt_table(spec: dict, *, base_dir: Path, spec_file: Path, where: str) -> PromptTable:
    """Read and check the prompt table of a spec table (``spec["prompts"]``)."""
    p = spec["prompts"]
    files = resolve_paths(p["path"], base_dir=base_dir, spec_file=spec_file, where=f"{where} [benchmark.prompts]")
    ids, text, gold, subset = [], [], [], []
    for f in files:
        tbl = read_table(f, strings=tuple(p[k] for k in ("id", "text", "subset") if k in p))
        ids.append(str_column(tbl, p["id"], f, "the prompt id"))
        if "text" in p:
            t = str_column(tbl, p["text"], f, "the prompt text", allow_empty=True)
            text.append(parse_texts(t, p["text_parser"], f, p["text"]))
        if "gold" in p:
            gold.append(str_column(tbl, p["gold"], f, "the reference answer", allow_empty=True))
        if "subset" in p:
            subset.append(str_column(tbl, p["subset"], f, "the prompt's subset"))
    all_ids = np.concatenate(ids)
    index: dict = {}
    sizes = np.cumsum([0] + [len(a) for a in ids])
    for j, v in enumerate(all_ids.tolist()):
        if index.setdefault(v, j) != j:
            k = int(np.searchsorted(sizes, j, side="right")) - 1
            raise InputError(f"prompt id {v!r} appears twice in the prompt table; expected unique ids",
                             file=files[k], row=j - int(sizes[k]) + 1, column=p["id"])
    cat = lambda parts: np.concatenate(parts) if parts else None  # noqa: E731
    return PromptTable(files, all_ids, index, cat(text), cat(gold), cat(subset), p["id"])


# ---------------------------------------------------------------------------- records -> benchmarks
def records_to_benchmarks(rec: Records, spec: dict, *, base_dir: Path, spec_file: Path) -> list["Benchmark"]:
    """Check and assemble records into one benchmark (or one per value of ``spec["benchmark"]``).

    Scores become ``raw * score_scale + score_offset``; an empty score is an error
    (``missing = "error"``) or a record not made (``"skip"``); a score outside [0, 1]
    is an error naming its row; models in ``exclude_models`` are dropped; several
    records of one (model, prompt) are an error or averaged (``duplicates = "mean"``).
    """
    where = table_label(spec)
    score_col = lambda i: rec.score_column or str(rec.model[i])  # noqa: E731
    s = rec.score * float(spec["score_scale"]) + float(spec["score_offset"])
    rec.score = s
    empty = np.isnan(s)
    if empty.any():
        if spec["missing"] == "error":
            i = int(np.flatnonzero(empty)[0])
            raise rec.error(i, "score is empty or NaN; expected a number in [0, 1] (or missing = \"skip\" in the "
                               "spec, to treat empty cells as not evaluated)", column=score_col(i))
        rec = rec.take(np.flatnonzero(~empty))
        s = rec.score
    bad = (s < 0) | (s > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        how = " after score_scale/score_offset" if (spec["score_scale"], spec["score_offset"]) != (1.0, 0.0) else ""
        rule = f" (score_rule {spec['score_rule']!r} reads scores in [0, 1])" if "score_rule" in spec else ""
        if not how and not rule:  # scores on another scale: say how the spec maps them
            rule = (" (scores on another scale are mapped by score_scale and score_offset in the spec, e.g. "
                    "score_offset = -1 for a preference in [1, 2])")
        raise rec.error(i, f"score {float(s[i])!r}{how} is outside [0, 1]; expected a score in [0, 1]{rule}",
                        column=score_col(i))
    if rec.cost is not None:
        bad_cost = np.flatnonzero((rec.cost < 0) | np.isinf(rec.cost))  # NaN: a record without a cost
        if bad_cost.size:
            i = int(bad_cost[0])
            m = str(rec.model[i])
            column = spec.get("cost") or (m + spec["cost_suffix"] if spec.get("cost_suffix") else
                                          f"{spec['costs']}.{m}" if spec.get("costs") else None)
            raise rec.error(i, f"cost {float(rec.cost[i])!r} is not a price; expected a cost in USD >= 0 (or an "
                               "empty cell for an unknown cost)", column=column)
    if rec.split is not None:
        wrong = np.flatnonzero(~np.isin(rec.split, np.array(SPLIT_LABELS, dtype=object)))
        if wrong.size:
            i = int(wrong[0])
            raise rec.error(i, f"split label {rec.split[i]!r}; expected one of: {', '.join(SPLIT_LABELS)}",
                            column=spec.get("split"))
    if spec["exclude_models"]:
        present = set(rec.model.tolist())
        for m in spec["exclude_models"]:
            if m not in present:
                raise InputError(f"{where}: exclude_models names {m!r}, which is not a model in the data",
                                 file=rec.files[0])
        rec = rec.take(np.flatnonzero(~np.isin(rec.model, np.array(spec["exclude_models"], dtype=object))))
    prompts = read_prompt_table(spec, base_dir=base_dir, spec_file=spec_file, where=where) if "prompts" in spec else None

    if "benchmark" in spec:
        codes, names = _factorize(rec.bench)
        groups = []
        for k, value in enumerate(names.tolist()):
            name = f"{spec['name']}.{value}" if "name" in spec else str(value)
            if not NAME_PATTERN.match(name):
                i = int(np.flatnonzero(codes == k)[0])
                raise rec.error(i, f"benchmark name {name!r} is not valid; expected letters, digits, '_', '-' or '.'",
                                column=spec["benchmark"])
            groups.append((name, rec.take(np.flatnonzero(codes == k))))
    else:
        groups = [(spec["name"], rec)]
    if not groups:
        groups = [(spec.get("name", "?"), rec)]
    return [_assemble(name, r, spec, prompts, where) for name, r in groups]


def apply_score_rule(scores: np.ndarray, rule: tuple[str, float]) -> np.ndarray:
    """0/1 scores under a publisher's rule (:func:`~routereval.sources.spec.parse_score_rule`).

    ``("nonzero", _)``: 1 where score > 0; ``("threshold", T)``: 1 where score >= T.
    Applied after duplicates are averaged, so a benchmark with a rule is always binary.

    Parameters
    ----------
    scores
        (n,) scores in [0, 1].
    rule
        (kind, T) as parsed from the spec.

    Returns
    -------
    np.ndarray
        (n,) float64 of 0.0 and 1.0.
    """
    kind, t = rule
    return ((scores > 0) if kind == "nonzero" else (scores >= t)).astype(np.float64)


def _assemble(name: str, rec: Records, spec: dict, prompts: PromptTable | None, where: str) -> "Benchmark":
    from routereval.data.model import Benchmark

    source = ", ".join(dict.fromkeys(str(f) for f in rec.files))
    if len(rec.model) == 0:
        raise InputError(f"{where}: benchmark {name!r} has no records{' left after exclude_models' if spec['exclude_models'] else ''}; "
                         "expected at least one (model, prompt, score) record", file=source)
    mcode, models = _factorize(rec.model)
    if prompts is not None:
        get = prompts.index.get
        pos = np.fromiter((get(v, -1) for v in rec.prompt.tolist()), dtype=np.int64, count=len(rec.prompt))
        if (pos < 0).any():
            i = int(np.flatnonzero(pos < 0)[0])
            raise rec.error(i, f"prompt id {rec.prompt[i]!r} is not in the prompt table "
                               f"({', '.join(str(f) for f in prompts.files)}); expected every record's prompt there",
                            column=spec.get("prompt", spec.get("question")))
        used = np.unique(pos)  # prompts with records, in prompt-table order
        pcode = np.searchsorted(used, pos)
        prompt_ids = prompts.ids[used]
    else:
        pcode, prompt_ids = _factorize(rec.prompt)
        used = None
    n_m, n_p = len(models), len(prompt_ids)
    key = mcode * n_p + pcode
    order = np.argsort(key, kind="stable")
    ks = key[order]
    dup = np.flatnonzero(ks[1:] == ks[:-1])
    s, cost = rec.score, rec.cost
    if dup.size:
        if spec["duplicates"] == "error":
            later = order[dup + 1]
            j = int(np.argmin(later))
            i, first = int(later[j]), int(order[dup[j]])
            raise rec.error(i, f"duplicate record of model {rec.model[i]!r} on prompt {rec.prompt[i]!r} (also at "
                               f"{rec.where(first, i)}); expected one record per (model, prompt), or "
                               "duplicates = \"mean\" in the spec")
        key, inv = np.unique(key, return_inverse=True)
        counts = np.bincount(inv)
        s = np.bincount(inv, weights=s) / counts
        if cost is not None:
            ok = np.isfinite(cost)
            with np.errstate(invalid="ignore", divide="ignore"):
                cost = np.bincount(inv, weights=np.where(ok, cost, 0.0)) / np.bincount(inv, weights=ok)
    if "score_rule" in spec:  # a publisher's non-linear convention, on each (model, prompt)'s score: binary
        s = apply_score_rule(s, parse_score_rule(spec["score_rule"], where=where))
    scores = np.full((n_m, n_p), np.nan, dtype=np.float32)
    scores.ravel()[key] = s
    cost_m = None
    if cost is not None:
        cost_m = np.full((n_m, n_p), np.nan, dtype=np.float64)
        cost_m.ravel()[key] = cost

    first = np.full(n_p, -1, dtype=np.int64)
    first[pcode[::-1]] = np.arange(len(pcode))[::-1]  # first record of each prompt

    def per_prompt(values: np.ndarray | None, column: str | None, table_values: np.ndarray | None):
        if values is not None:
            out = values[first]
            if column is not None:  # one prompt, one value: catch contradicting rows
                diff = np.flatnonzero(values != out[pcode])
                if diff.size:
                    i = int(diff[0])
                    raise rec.error(i, f"prompt {rec.prompt[i]!r} has {values[i]!r} here but {out[pcode[i]]!r} at "
                                       f"{rec.where(int(first[pcode[i]]), i)}; expected one value per prompt",
                                    column=column)
            return out
        if table_values is not None and used is not None:
            return table_values[used]
        return None

    subsets = per_prompt(rec.subset, spec.get("subset"), None if prompts is None else prompts.subset)
    texts = per_prompt(rec.text, None, None if prompts is None else prompts.text)
    gold = per_prompt(rec.gold, None, None if prompts is None else prompts.gold)
    if texts is not None:
        texts = np.array(["" if t is None else t for t in texts.tolist()], dtype=object)
    bench = Benchmark(name, models=models, prompt_ids=prompt_ids, subsets=subsets, texts=texts, gold=gold,
                      scores=scores, cost=cost_m, source=source)
    if rec.split is not None:
        labels, conflicts = prompt_split_labels(rec.split, pcode, n_p)
        how = f"column {spec['split']!r}" if "split" in spec else "per-file labels"
        bench.saved_splits["publisher"] = publisher_split_from_labels(
            bench, labels, val_fraction=float(spec.get("val_fraction", DEFAULT_VAL_FRACTION)),
            seed=int(spec.get("split_seed", DEFAULT_SPLIT_SEED)), conflicts=conflicts, source=how, file=source)
    return bench


def prompt_split_labels(record_labels: np.ndarray, pcode: np.ndarray, n_prompts: int) -> tuple[np.ndarray, int]:
    """Each prompt's publisher-split label from its records' labels.

    A prompt whose records carry several labels (RouterBench ships 6 ARC prompts with some
    models' records in a train file and the others' in a test file) gets the latest of
    train < val < test: the publisher evaluates on it, so it must not be trained on.

    Returns
    -------
    labels, conflicts
        (n_prompts,) object array of labels; how many prompts had several.
    """
    names = np.array(SPLIT_LABELS)  # precedence order; the labels were checked against it
    by_name = np.argsort(names)
    code = by_name[np.searchsorted(names[by_name], record_labels.astype(str))]
    hi = np.full(n_prompts, -1, dtype=np.int64)
    lo = np.full(n_prompts, len(SPLIT_LABELS), dtype=np.int64)
    np.maximum.at(hi, pcode, code)
    np.minimum.at(lo, pcode, code)
    return np.array(SPLIT_LABELS, dtype=object)[hi], int(np.count_nonzero(hi != lo))


# ---------------------------------------------------------------------------- readers
def _common_columns(spec: dict) -> dict[str, str]:
    return {k: spec[k] for k in ("subset", "text", "gold", "benchmark", "split") if k in spec}


def read_long(table: dict, *, base_dir: Path, spec_file: Path) -> list["Benchmark"]:
    """Read a ``format = "long"`` table: one row per (model, prompt) record.

    Columns named by ``model``, ``prompt``, ``score`` (required) and ``cost``,
    ``subset``, ``text``, ``gold``, ``benchmark`` (optional).
    """
    where = table_label(table)
    files = resolve_paths(table["path"], base_dir=base_dir, spec_file=spec_file, where=where)
    labels = path_split_labels(table["path"], where=where, spec_file=spec_file)
    parts = []
    for f, label in zip(files, labels):
        tbl = read_table(f, strings=(table["model"], table["prompt"], *_common_columns(table).values()))
        n = tbl.num_rows
        rec = Records(
            files=[f],
            model=str_column(tbl, table["model"], f, "the model name"),
            prompt=str_column(tbl, table["prompt"], f, "the prompt id"),
            score=float_column(tbl, table["score"], f, "a score in [0, 1]"),
            src=np.zeros(n, dtype=np.int64), row=np.arange(1, n + 1),
            score_column=table["score"],
        )
        _fill_optional(rec, tbl, table, f, label)
        if "cost" in table:
            rec.cost = float_column(tbl, table["cost"], f, "the cost in USD")
        parts.append(rec)
    return records_to_benchmarks(Records.concat(parts), table, base_dir=base_dir, spec_file=spec_file)


def _fill_optional(rec: Records, tbl: "pa.Table", table: dict, f: Path, label: str | None) -> None:
    """The optional per-row columns of a file, and its publisher-split label (per file or a column)."""
    if "split" in table:
        rec.split = str_column(tbl, table["split"], f, "the prompt's publisher split (train, val or test)")
    elif label is not None:
        rec.split = np.full(tbl.num_rows, label, dtype=object)
    if "subset" in table:
        rec.subset = str_column(tbl, table["subset"], f, "the prompt's subset")
    if "benchmark" in table:
        rec.bench = str_column(tbl, table["benchmark"], f, "the benchmark name")
    if "text" in table:
        t = str_column(tbl, table["text"], f, "the prompt text", allow_empty=True)
        rec.text = parse_texts(t, table["text_parser"], f, table["text"])
    if "gold" in table:
        rec.gold = str_column(tbl, table["gold"], f, "the reference answer", allow_empty=True)


def read_wide(table: dict, *, base_dir: Path, spec_file: Path) -> list["Benchmark"]:
    """Read a ``format = "wide"`` table: one row per prompt, one score column per model.

    The model columns are ``models`` or every column not named by another key, not
    matched by an ``ignore`` pattern and not ending in ``cost_suffix``; the cost of
    model ``m`` is column ``m + cost_suffix``. Rows are melted into records, so two
    rows of one prompt id may each carry some of its models (as RouterBench's do).
    Files of one table (of one benchmark, with ``benchmark``) must share their model
    columns: an absent column, like an empty cell, is an error unless the spec
    says ``missing = "skip"``.
    """
    import pyarrow as pa

    where = table_label(table)
    files = resolve_paths(table["path"], base_dir=base_dir, spec_file=spec_file, where=where)
    labels = path_split_labels(table["path"], where=where, spec_file=spec_file)
    named = {table["prompt"], *_common_columns(table).values()}
    suffix = table.get("cost_suffix")
    parts = []
    columns: list[tuple[Path, list[str], set | None]] = []  # (file, its model columns, its benchmark values)
    for f, label in zip(files, labels):
        tbl = read_table(f, strings=tuple(named))
        if "models" in table:
            models = list(table["models"])
            for m in models:
                _require(tbl, m, f, "a score column (listed in models = [...])")
        else:
            models = [c for c in tbl.column_names
                      if c not in named and not (suffix and c.endswith(suffix))
                      and not any(fnmatch.fnmatchcase(c, p) for p in table["ignore"])]
            if not models:
                raise InputError(f"{where}: no model columns left; expected score columns besides the named ones",
                                 file=f)
        n, k = tbl.num_rows, len(models)
        ids = str_column(tbl, table["prompt"], f, "the prompt id")
        score = np.empty((n, k), dtype=np.float64)
        for j, m in enumerate(models):
            mtype = tbl.schema.field(m).type
            if "models" not in table and (pa.types.is_string(mtype) or pa.types.is_large_string(mtype)):
                raise InputError(f"holds text; expected 0/1 or graded scores of model {m!r} (or name the column in "
                                 "ignore = [...] if it is not a model)", file=f, column=m)
            score[:, j] = float_column(tbl, m, f, f"a score in [0, 1] of model {m!r}")
        rec = Records(files=[f], model=np.tile(np.array(models, dtype=object), n), prompt=np.repeat(ids, k),
                      score=score.ravel(), src=np.zeros(n * k, dtype=np.int64), row=np.repeat(np.arange(1, n + 1), k))
        if suffix:
            cost = np.empty((n, k), dtype=np.float64)
            for j, m in enumerate(models):
                cost[:, j] = float_column(tbl, m + suffix, f, f"the cost in USD of model {m!r} (cost_suffix)")
            rec.cost = cost.ravel()
        _fill_optional(rec, tbl, table, f, label)
        for name in ("subset", "bench", "text", "gold", "split"):
            v = getattr(rec, name)
            if v is not None:
                setattr(rec, name, np.repeat(v, k))
        parts.append(rec)
        columns.append((f, models, None if rec.bench is None else set(rec.bench.tolist())))
    if table["missing"] != "skip":
        _check_same_models(columns, where, exclude=set(table["exclude_models"]))
    return records_to_benchmarks(Records.concat(parts), table, base_dir=base_dir, spec_file=spec_file)


def _check_same_models(columns: list[tuple[Path, list[str], set | None]], where: str, *, exclude: set) -> None:
    """Every file feeding a benchmark must have all of its model columns.

    A model column absent from one file would leave that model's scores on the
    file's prompts empty: as with an empty cell, that is an error unless the spec
    says ``missing = "skip"``. With a ``benchmark`` column, only files sharing a
    benchmark value are compared (each benchmark gets its own models); models in
    ``exclude_models`` are not compared.
    """
    groups: dict = {}
    for f, models, benches in columns:
        for b in (benches if benches is not None else {None}):
            groups.setdefault(b, []).append((f, models))
    for b, files in groups.items():
        union = list(dict.fromkeys(m for _, models in files for m in models if m not in exclude))
        for f, models in files:
            lacks = [m for m in union if m not in set(models)]
            if lacks:
                other = next(g for g, ms in files if lacks[0] in ms)
                bench = "" if b is None else f" of benchmark {b!r}"
                raise InputError(f"{where}: lacks model column(s) {', '.join(repr(m) for m in lacks)}, which "
                                 f"{other} has{bench}; expected the same model columns in every file of the table "
                                 "(or missing = \"skip\" in the spec, to treat absent columns as not evaluated)",
                                 file=f)
