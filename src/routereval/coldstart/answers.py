"""The answers file a new model fills in: the anchors CSV written, ANSWERS.csv (``text,score``) read back."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routereval.coldstart.anchors import METHODS
from routereval.errors import InputError


# typographic characters an editor or a spreadsheet substitutes (after NFKC, which maps no-break spaces and the
# like to plain ones)
_TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                              "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'})


def loose_text(text: str) -> str:
    """``text`` with its line ends as ``\\n`` and without white space at the end of a line or around the whole:
    what a spreadsheet changes in a prompt on its way back as an answer."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def normal_text(text: str) -> str:
    """``text`` as an editor may also hand it back, normalised further than :func:`loose_text`: Unicode NFKC
    (no-break and other spaces, full-width forms), typographic quotes as ASCII ones, each run of spaces and tabs
    as one space, no blank lines, no white space around a line."""
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHIC)
    lines = (" ".join(line.split()) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


ANCHOR_COLUMNS = ("prompt_id", "subset", "method", "weight", "text", "score")


def write_anchor_csv(rows: list[dict[str, Any]], out) -> None:
    """Write anchor rows (:data:`ANCHOR_COLUMNS`; ``score`` blank, for the new model's answers) as CSV to ``out``."""
    w = csv.DictWriter(out, fieldnames=list(ANCHOR_COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "weight": "" if r["weight"] is None else f"{r['weight']:.6g}"})


@dataclass
class Answers:
    """An answers file: texts (k,), scores (k,), the anchors' design weights (k,) or None, the file's checksum,
    and the method that chose the anchors (its ``method`` column; None without one)."""

    texts: list[str]
    scores: np.ndarray
    weights: np.ndarray | None
    sha256: str
    method: str | None = None


def read_answers(path: str | os.PathLike, *, allow_empty: bool = False) -> Answers:
    """Read ANSWERS.csv: columns ``text`` and ``score`` (in [0, 1]), optional ``weight``; one line per prompt.

    ``allow_empty``: an empty file, or one with the header and no answer, is no error (an adaptive
    test's start).

    The weights are the anchors' design weights: a ``weight`` column left empty on every row
    (``fisher`` anchors have none) means no weights; empty on some rows only is an error. An
    optional ``method`` column (the anchors file carries it) names the method that chose the
    anchors, the same on every row that names one: ``adaptive`` answers are an adaptive
    test's, which the estimate's references are matched to (:func:`~routereval.coldstart.neighbours.level_matched`).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", file=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text (a spreadsheet's own encoding, e.g. Latin-1 or Windows-1252?); save it "
                         "as CSV UTF-8", file=path) from None
    if not text.strip():
        if allow_empty:  # no answer yet
            return Answers([], np.zeros(0), None, hashlib.sha256(raw).hexdigest())
        raise InputError("is empty; expected a CSV with a header text,score and one row per answer", file=path)
    # newline="": csv splits records itself; str.splitlines would also split prompts at \x0c, \x85, \u2028...
    reader = csv.DictReader(io.StringIO(text, newline=""))
    # a spreadsheet's header: Text, Score or " score" name the columns as text, score do
    cols = [c.strip().casefold() for c in (reader.fieldnames or [])]
    reader.fieldnames = cols
    twice = sorted({c for c in cols if cols.count(c) > 1})
    if twice:  # csv would keep the last of them silently
        raise InputError(f"column {twice[0]!r} appears {cols.count(twice[0])} times in the header; expected it once",
                         file=path)
    for need in ("text", "score"):
        if need not in cols:
            sep = next((f"; the header is one column: a file separated by {c!r}? expected commas" for c in (";", "\t")
                        if len(cols) == 1 and c in cols[0]), "")
            raise InputError(f"has no {need!r} column (columns: {', '.join(cols) or 'none'}){sep}; expected a CSV with "
                             f"columns text,score", file=path)
    texts, scores, weights, seen, blank_w = [], [], [], {}, []
    has_w = "weight" in cols
    methods: dict[str, int] = {}  # method -> first row naming it
    for row_no, row in enumerate(reader, start=1):
        if None in row:  # more fields than the header: most often a text with an unquoted comma
            raise InputError(f"{len(cols) + len(row[None])} fields, the header has {len(cols)}; quote a text that "
                             "holds a comma", file=path, row=row_no)
        t = row.get("text")
        if t is None or not t.strip():
            raise InputError("empty prompt text", file=path, row=row_no, column="text")
        s_raw = (row.get("score") or "").strip()
        try:
            s = float(s_raw)
        except ValueError:
            raise InputError(f"score {s_raw!r} is not a number; expected a score in [0, 1]", file=path, row=row_no,
                             column="score") from None
        if math.isnan(s):  # leaving the anchor out would unbalance the design weights of the others
            raise InputError(f"score {s_raw} is missing; expected a score in [0, 1] (an answer the model failed to "
                             "give usually scores 0)", file=path, row=row_no, column="score")
        if not math.isfinite(s) or not 0 <= s <= 1:
            raise InputError(f"score {s_raw} is out of range; expected a score in [0, 1], on the scale of the "
                             "corpus's records (a score on another scale, e.g. a preference in [1, 2], mapped as the "
                             "corpus's import mapped it)", file=path, row=row_no, column="score")
        if t in seen:
            raise InputError(f"duplicate prompt (also at row {seen[t]}); expected one score per prompt", file=path,
                             row=row_no, column="text")
        seen[t] = row_no
        if has_w:
            w_raw = (row.get("weight") or "").strip()
            if not w_raw and not weights:
                blank_w.append(row_no)
            elif blank_w:
                raise InputError(f"weight is empty on row {blank_w[0]} but not here; give every anchor its weight "
                                 f"or leave the column empty on every row", file=path, row=row_no, column="weight")
            else:
                try:
                    w = float(w_raw)
                except ValueError:
                    w = float("nan")
                if not (math.isfinite(w) and w > 0):
                    raise InputError(f"weight {w_raw!r} is not a positive number", file=path, row=row_no,
                                     column="weight")
                weights.append(w)
        if m := (row.get("method") or "").strip().casefold():  # a row left blank (added by hand) names none
            methods.setdefault(m, row_no)
            if len(methods) > 1:
                first = next(iter(methods))
                raise InputError(f"method {m!r}, but {first!r} on row {methods[first]}; expected one method for "
                                 "every anchor (the answers of one anchors file)", file=path, row=row_no,
                                 column="method")
            if m not in METHODS:
                raise InputError(f"method {m!r} is not an anchor method; expected one of {', '.join(METHODS)} (or "
                                 "the column empty)", file=path, row=row_no, column="method")
        texts.append(t)
        scores.append(s)
    if not texts and not allow_empty:
        raise InputError("holds no answers, only its header; expected one row per answer under it", file=path)
    return Answers(texts, np.asarray(scores), np.asarray(weights) if has_w and weights else None,
                   hashlib.sha256(raw).hexdigest(), method=next(iter(methods), None))
