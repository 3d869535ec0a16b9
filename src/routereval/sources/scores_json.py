"""The ``scores-json`` format: a JSON list of ``{"question": text, "scores": {model: score}}``.

This is how RouterDC and LLMRouter publish per-prompt scores. The keys are
configurable (``question``, ``scores``, and optionally ``prompt`` for an id,
``subset``, ``gold``, ``costs`` for a ``{model: cost}`` object, ``benchmark``).
Files are a .json list or .jsonl(.gz) with one object per line; row N in messages is
the N-th object (1-based). Without a ``prompt`` key, a prompt's id is its 1-based
position across the spec's files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from routereval.errors import InputError
from routereval.sources.spec import path_split_labels, resolve_paths, table_label
from routereval.sources.tabular import Records, parse_texts, read_json_rows, records_to_benchmarks

if TYPE_CHECKING:
    from routereval.data.model import Benchmark


def _number(v, *, file: Path, row: int, column: str, what: str) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{v!r} is not a number; expected {what}", file=file, row=row, column=column)
    return float(v)


def read_scores_json(table: dict, *, base_dir: Path, spec_file: Path) -> list["Benchmark"]:
    """Read a ``format = "scores-json"`` table into benchmarks (one, or one per ``benchmark`` value)."""
    where = table_label(table)
    files = resolve_paths(table["path"], base_dir=base_dir, spec_file=spec_file, where=where)
    qk, sk, ck, idk = table["question"], table["scores"], table.get("costs"), table.get("prompt")
    extra = {name: table[name] for name in ("subset", "gold", "benchmark", "split") if name in table}
    labels = path_split_labels(table["path"], where=where, spec_file=spec_file)
    parts, position = [], 0
    for f, label in zip(files, labels):
        rows = read_json_rows(f)
        model, prompt, score, cost, row = [], [], [], [], []
        meta: dict[str, list] = {name: [] for name in extra}
        texts = []
        for i, obj in enumerate(rows, start=1):
            position += 1
            if not isinstance(obj, dict):
                raise InputError(f"is {type(obj).__name__}; expected a JSON object", file=f, row=i)
            if qk not in obj:
                raise InputError(f"has no key {qk!r}; expected the prompt text there", file=f, row=i, column=qk)
            scores = obj.get(sk)
            if not isinstance(scores, dict):
                raise InputError(f"is {type(scores).__name__ if sk in obj else 'absent'}; expected an object "
                                 "{model: score}", file=f, row=i, column=sk)
            costs = obj.get(ck, {}) if ck else {}
            if not isinstance(costs, dict):
                raise InputError(f"is {type(costs).__name__}; expected an object {{model: cost}}", file=f, row=i,
                                 column=ck)
            if idk is not None and obj.get(idk) is None:
                raise InputError("is absent or null; expected the prompt id", file=f, row=i, column=idk)
            pid = str(obj[idk]) if idk is not None else str(position)
            texts.append(obj[qk] if isinstance(obj[qk], str) else str(obj[qk]))
            for name, key in extra.items():
                v = obj.get(key)
                if v is None and name != "gold":
                    raise InputError(f"is absent or null; expected the prompt's {name}", file=f, row=i, column=key)
                meta[name].append(None if v is None else str(v))
            for m, v in scores.items():
                model.append(m)
                prompt.append(pid)
                score.append(_number(v, file=f, row=i, column=f"{sk}.{m}", what="a score in [0, 1]"))
                cost.append(_number(costs.get(m), file=f, row=i, column=f"{ck}.{m}", what="a cost in USD"))
                row.append(i)
        counts = np.fromiter((len(obj[sk]) for obj in rows), dtype=np.int64, count=len(rows))
        per_record = lambda values: np.repeat(np.array(values, dtype=object), counts)  # noqa: E731
        text_arr = parse_texts(np.array(texts, dtype=object), table["text_parser"], f, qk)
        n = len(model)
        parts.append(Records(
            files=[f], model=np.array(model, dtype=object), prompt=np.array(prompt, dtype=object),
            score=np.array(score, dtype=np.float64), src=np.zeros(n, dtype=np.int64), row=np.array(row, dtype=np.int64),
            cost=np.array(cost, dtype=np.float64) if ck else None, text=np.repeat(text_arr, counts),
            subset=per_record(meta["subset"]) if "subset" in meta else None,
            gold=per_record(meta["gold"]) if "gold" in meta else None,
            bench=per_record(meta["benchmark"]) if "benchmark" in meta else None,
            score_column=None,
            split=(per_record(meta["split"]) if "split" in meta
                   else None if label is None else np.full(n, label, dtype=object)),
        ))
    rec = Records.concat(parts)
    return records_to_benchmarks(rec, table, base_dir=base_dir, spec_file=spec_file)
