"""Sweep configs: a TOML file, ``--set KEY=VALUE`` overrides, validation before any work.

A config names the corpus and the axes of the grid (a list is an axis, a scalar one value)::

    corpus = "corpora/small"            # relative to the config file
    benchmarks = "all"                  # or a list
    protocols = ["paper", "clean"]
    m = [3, 5]
    groups = ["all_strong", "all_weak", "strong_to_weak"]
    seeds = [42]
    draws = [0]                         # pool draws of the "random" group (other groups: draw 0)
    embedding = "synth"                 # or a list: an axis
    n_boot = 1000
    [routers.knn]
    k = [5, 10]                         # a router parameter given as a list is an axis too

Every mistake is a :class:`~routereval.errors.ParameterError` naming the file, the key and
what was expected, raised by :func:`load_config` before anything is run or written.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routereval.errors import InputError, ParameterError
from routereval.validate import as_path, check_bool

# key -> (what it must be, whether it is an axis)
KEYS: dict[str, str] = {
    "corpus": "a corpus directory (relative to the config file)",
    "benchmarks": '"all" or a list of benchmark names',
    "protocols": 'a list of "paper" and/or "clean"',
    "m": "a list of pool sizes (ints >= 1)",
    "groups": "a list of all_strong, all_weak, strong_to_weak, random",
    "seeds": "a list of ints in [0, 2**32 - 1]",
    "draws": "a list of ints >= 0 (pool draws of the random group)",
    "embedding": "an encoder name or a list of them (synth, minilm, tfidf, official/NAME, a directory)",
    "split": '"auto" (the publisher\'s split where the corpus stores one, else random), "publisher", "random", or a list',
    "n_boot": "an int >= 1 (bootstrap resamples)",
    "reference_score": "a float in (0, 1] (V_R's reference for every benchmark; default the catalog's)",
    "routers": "a table of routers: [routers.NAME] with parameters (a list is an axis); NAME = false leaves it out",
}
DEFAULTS: dict[str, Any] = {"benchmarks": "all", "protocols": ["clean"], "split": "auto", "seeds": [42], "draws": [0],
                            "embedding": None, "n_boot": 1000, "reference_score": None}
REQUIRED = ("corpus", "m", "groups", "routers")


@dataclass
class SweepConfig:
    """A validated sweep config; the axes are lists (``embedding`` None: each benchmark's default)."""

    corpus: Path
    benchmarks: list[str]
    protocols: list[str]
    m: list[int]
    groups: list[str]
    seeds: list[int]
    draws: list[int]
    embeddings: list[str | None]
    splits: list[str]  # "auto" resolves per benchmark when the grid is planned
    n_boot: int
    reference_score: float | None
    routers: dict[str, dict[str, list[Any]]]  # router -> parameter -> values (an axis)
    source: str = ""  # the config file, for messages
    raw: dict[str, Any] = field(default_factory=dict)  # the merged document, recorded in _sweep.json


# --------------------------------------------------------------------------- overrides


def parse_set(item: str) -> tuple[list[str], Any]:
    """``KEY=VALUE`` -> (key path, value); KEY is a TOML dotted key, VALUE a TOML value or a bare string.

    ``m=[3]`` -> (["m"], [3]); ``routers.knn.k=[5,10]`` -> (["routers", "knn", "k"], [5, 10]);
    ``routers."pkg.mod:R".alpha=0.1`` works; ``corpus=corpora/x`` (not TOML) is the string.
    """
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ParameterError(f"--set {item!r}: expected KEY=VALUE, e.g. --set m=[3] or --set routers.knn.k=[5,10]")
    try:
        doc = tomllib.loads(f"{key.strip()} = {value.strip()}")
    except tomllib.TOMLDecodeError:
        try:  # a bare word or path: a string value
            doc = tomllib.loads(f"{key.strip()} = {_toml_string(value.strip())}")
        except tomllib.TOMLDecodeError:
            raise ParameterError(f"--set {item!r}: {key.strip()!r} is not a TOML key (quote names with dots "
                                 'or colons: routers."pkg.mod:Router".k=[1])') from None
    path: list[str] = []
    node: Any = tomllib.loads(f"{key.strip()} = 0")  # the key alone tells how deep the value sits
    while isinstance(node, dict):
        k, node = next(iter(node.items()))
        path.append(k)
    value_node: Any = doc
    for k in path:
        value_node = value_node[k]
    return path, value_node


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def apply_overrides(doc: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``doc`` with each ``KEY=VALUE`` replacing the value at its key path."""
    import copy

    out = copy.deepcopy(doc)
    for item in overrides:
        path, value = parse_set(item)
        node = out
        for k in path[:-1]:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            elif not isinstance(nxt, dict):
                raise ParameterError(f"--set {item!r}: {k!r} is not a table in the config")
            node = nxt
        node[path[-1]] = value
    return out


# --------------------------------------------------------------------------- validation


def _axis(doc: dict, key: str, where: str) -> list:
    v = doc[key]
    vals = v if isinstance(v, list) else [v]
    if not vals:
        raise ParameterError(f"{where}: {key!r} is empty, so the grid is empty; expected {KEYS[key]}")
    seen: list = []
    for x in vals:  # an axis value given twice would run (and count) the same cells twice
        if x not in seen:
            seen.append(x)
    return seen


def _ints(vals: list, key: str, where: str, lo: int, hi: int | None = None) -> list[int]:
    for x in vals:
        if isinstance(x, bool) or not isinstance(x, int) or x < lo or (hi is not None and x > hi):
            raise ParameterError(f"{where}: {key!r} has {x!r}; expected {KEYS[key]}")
    return [int(x) for x in vals]


def _choices(vals: list, key: str, where: str, allowed: tuple[str, ...]) -> list[str]:
    for x in vals:
        if x not in allowed:
            raise ParameterError(f"{where}: {key!r} has {x!r}; expected one of: {', '.join(allowed)}")
    return list(vals)


def validate(doc: dict[str, Any], *, base_dir: Path, where: str, trust_code: bool = False) -> SweepConfig:
    """A :class:`SweepConfig` from a parsed document, or a :class:`ParameterError` on the first mistake."""
    from routereval.pools import GROUPS, PROTOCOLS

    unknown = sorted(set(doc) - set(KEYS))
    if unknown:
        raise ParameterError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(KEYS)}")
    for key in REQUIRED:
        if key not in doc:
            raise ParameterError(f"{where}: missing key {key!r}; expected {KEYS[key]}")
    doc = {**DEFAULTS, **doc}
    if not isinstance(doc["corpus"], str) or not doc["corpus"]:
        raise ParameterError(f"{where}: 'corpus' is {doc['corpus']!r}; expected {KEYS['corpus']}")
    corpus = Path(doc["corpus"])
    corpus = (corpus if corpus.is_absolute() else base_dir / corpus).resolve()
    bm = doc["benchmarks"]
    if bm == "all":
        benchmarks: list[str] = []
    elif isinstance(bm, list) and all(isinstance(b, str) for b in bm):
        benchmarks = _axis(doc, "benchmarks", where)
    else:
        raise ParameterError(f"{where}: 'benchmarks' is {bm!r}; expected {KEYS['benchmarks']}")
    protocols = _choices(_axis(doc, "protocols", where), "protocols", where, PROTOCOLS)
    ms = _ints(_axis(doc, "m", where), "m", where, 1)
    groups = _choices(_axis(doc, "groups", where), "groups", where, GROUPS)
    seeds = _ints(_axis(doc, "seeds", where), "seeds", where, 0, 2**32 - 1)
    draws = _ints(_axis(doc, "draws", where), "draws", where, 0)
    emb = doc["embedding"]
    embeddings: list[str | None] = [None] if emb is None else _axis(doc, "embedding", where)
    for e in embeddings:
        if e is not None and (not isinstance(e, str) or not e):
            raise ParameterError(f"{where}: 'embedding' has {e!r}; expected {KEYS['embedding']}")
    from routereval.data.splits import SPLIT_CHOICES

    splits = _choices(_axis(doc, "split", where), "split", where, SPLIT_CHOICES)
    n_boot = doc["n_boot"]
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ParameterError(f"{where}: 'n_boot' is {n_boot!r}; expected {KEYS['n_boot']}")
    ref = doc["reference_score"]
    if ref is not None:
        from routereval.evaluate import check_reference_score

        try:
            ref = check_reference_score(ref)
        except ParameterError as e:
            raise ParameterError(f"{where}: 'reference_score': {e}") from None
    routers = _routers(doc["routers"], where, protocols=protocols, seeds=seeds, trust_code=trust_code)
    return SweepConfig(corpus=corpus, benchmarks=benchmarks, protocols=protocols, m=ms, groups=groups, seeds=seeds,
                       draws=draws, embeddings=embeddings, splits=splits, n_boot=n_boot, reference_score=ref, routers=routers,
                       source=where, raw=doc)


def _routers(table: Any, where: str, *, protocols: list[str], seeds: list[int],
             trust_code: bool) -> dict[str, dict[str, list[Any]]]:
    """Router -> parameter axes, each combination validated by the router itself."""
    from routereval.experiments.grid import param_grid
    from routereval.evaluate import make_router_from

    if not isinstance(table, dict) or not table:
        raise ParameterError(f"{where}: 'routers' is empty, so the grid is empty; expected {KEYS['routers']}, "
                             "e.g. [routers.knn] with k = [5, 10]")
    out: dict[str, dict[str, list[Any]]] = {}
    for name, params in table.items():
        if params is False:  # `--set routers.mlc=false` leaves a router of the config out
            continue
        if not isinstance(params, dict):
            raise ParameterError(f"{where}: routers.{name} is {params!r}; expected a table of parameters "
                                 f"([routers.{name}] or routers.{name} = {{}}), or false to leave it out")
        if ":" in name and not trust_code:  # importing module:Class runs its code
            raise ParameterError(f"{where}: router {name!r} is code from a module; importing it runs that code: "
                                 "pass --trust-code if you trust it")
        axes: dict[str, list[Any]] = {}
        for p, v in params.items():
            vals = v if isinstance(v, list) else [v]
            if not vals:
                raise ParameterError(f"{where}: routers.{name}.{p} is empty, so the grid is empty; "
                                     "expected a value or a list of values")
            # as for the top-level axes: a value given twice would store the same row twice
            axes[p] = [x for i, x in enumerate(vals) if x not in vals[:i]]
        for combo in param_grid(axes):
            for protocol in protocols:
                try:
                    make_router_from(name, combo, seed=seeds[0], protocol=protocol)
                except (ParameterError, InputError, TypeError) as e:
                    raise ParameterError(f"{where}: routers.{name}: {e}") from None
        out[name] = axes
    if not out:
        raise ParameterError(f"{where}: every router is left out (false), so the grid is empty")
    return out


def load_config(path: str | os.PathLike, *, overrides: list[str] | None = None,
                trust_code: bool = False) -> SweepConfig:
    """Read, override and validate a sweep config (nothing is run or written).

    Parameters
    ----------
    path
        The TOML file; ``corpus`` is relative to its folder.
    overrides
        ``KEY=VALUE`` items (``--set``): TOML values replacing the value at a dotted key path.
        A ``corpus`` given here is relative to the current directory.
    trust_code
        Allow ``module:Class`` routers (their module's code runs when imported).
    """
    f = as_path(path, "path (the sweep config)")
    trust_code = check_bool(trust_code, "trust_code")  # a truthy "no" must not allow running code
    try:
        doc = tomllib.loads(f.read_text())
    except FileNotFoundError:
        raise ParameterError(f"{f}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ParameterError(f"{f}: unreadable config ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ParameterError(f"{f}: not valid TOML ({e})") from None
    merged = apply_overrides(doc, list(overrides or []))
    base_dir = f.resolve().parent
    if overrides and any(parse_set(o)[0][:1] == ["corpus"] for o in overrides):
        base_dir = Path.cwd()  # a path typed on the command line is relative to where it was typed
    return validate(merged, base_dir=base_dir, where=str(f), trust_code=trust_code)
