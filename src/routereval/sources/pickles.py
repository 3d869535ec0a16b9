"""Readers of the official RouterEval pickles (MilkThink-Lab/RouterEval, dataset ``linggm/RouterEval``).

Two spec formats, both loaded through :func:`~routereval.sources.safe_pickle.safe_load`:

``routereval-pickle`` — the leaderboard files of the official download::

    <path>/leaderboard_score/leaderboard_<key>.pkl      {'model': [n_models names],
                                                         'data': {subscenario: {'correctness': (n_sub, n_models)}}}
    <path>/leaderboard_prompt/leaderboard_<key>_prompt.pkl            {subscenario: (n_sub,) prompt texts}
    <path>/leaderboard_embed/leaderboard_<key>_embed/<encoder>_result.pkl  {subscenario: (n_sub, dim)}

  with ``<key>`` one of ``old`` (Open LLM Leaderboard v1), ``new`` (v2), ``mmlu_pro``. Each
  subscenario is one subset of one of the paper's 12 benchmarks (:data:`routereval.catalog.BENCHMARKS`);
  a benchmark's prompts are its subsets' prompts in catalog order (the reference's ``scenarios_lb``
  order), so a benchmark's prompt positions equal the reference's. Spec options::

      [[benchmark]]
      format = "routereval-pickle"
      path = "data"                    # root folder of the official download
      leaderboards = ["old", "new"]    # optional: default every leaderboard_<key>.pkl present
      benchmarks = ["gsm8k", "bbh"]    # optional: default every benchmark with data in the files
      embeddings = ["RoBERTa"]         # optional: default every <encoder>_result.pkl present; [] for none
      prompts = true                   # optional: read prompt texts when the prompt file exists

  Prompt ids are ``"<subset>/<i>"``, ``i`` the prompt's position in its official subscenario
  array (e.g. ``"abstract_algebra/17"``, ``"gsm8k/3"``). Official embeddings are stored as
  ``official/<encoder>`` (e.g. ``official/RoBERTa``). TruthfulQA's scores are graded.

``router-dataset-pickle`` — one ``router_dataset/<scenario>_router_dataset.pkl``::

    {'easy': {3: {'all_strong': {'data': {'train_score': (n_train, 3), 'val_score': ..., 'test_score': ...
                                          [, 'train_label': (n_train, 3)]},
                                 'model': (3,) names}, 'all_weak': ..., 'strong_to_weak': ...}, 5: ...},
     'hard': {10: ..., 100: ..., 1000: ...},
     'split_index': {'train_indices', 'val_indices', 'test_indices'},   # positions in the benchmark
     'embedding': {'train_embed', 'val_embed', 'test_embed'},          # (n_split, dim)
     'prompt': {'train_prompt', 'val_prompt', 'test_prompt'}}          # (n_split,)

  It is rebuilt into one benchmark holding the union of every pool's models, each score placed
  at its prompt's position (``split_index``); a model in several pools must have identical
  scores in each. Spec options: ``path`` (the file), ``name`` (default from the file name,
  ``<scenario>_router_dataset.pkl``). When the prompt count equals the catalog's, prompts get
  the catalog's subsets and the same ids as ``routereval-pickle`` (``"<subset>/<i>"``);
  otherwise one subset named after the benchmark and ids ``"<benchmark>/<position>"``. The
  embeddings are stored as ``official/router_dataset``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from routereval.catalog import BENCHMARKS, LEADERBOARDS, SCENARIO_TO_NAME, BenchmarkInfo
from routereval.data.model import Benchmark
from routereval.data.splits import Split
from routereval.errors import InputError, ParameterError
from routereval.sources.safe_pickle import safe_load

SPLITS = ("train", "val", "test")
DIFFICULTIES = ("easy", "hard")
ROUTER_DATASET_EMBEDDING = "official/router_dataset"
_RP_OPTIONS = {"format", "path", "name", "leaderboards", "benchmarks", "embeddings", "prompts"}
_RD_OPTIONS = {"format", "path", "name"}


# ---------------------------------------------------------------------- helpers
def _str_list(table: dict, key: str, spec_file: Path, allowed: Iterable[str] | None = None) -> list[str] | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParameterError(f"[[benchmark]] option {key!r} must be a list of strings, got {value!r}", file=spec_file)
    if allowed is not None:
        allowed = list(allowed)
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ParameterError(f"[[benchmark]] option {key!r}: unknown {', '.join(map(repr, bad))}; "
                                 f"expected some of: {', '.join(allowed)}", file=spec_file)
    return value


def _check_options(table: dict, allowed: set[str], fmt: str, spec_file: Path) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ParameterError(f"[[benchmark]] format {fmt!r}: unknown option(s) {', '.join(map(repr, extra))}; "
                             f"expected some of: {', '.join(sorted(allowed))}", file=spec_file)


def _resolve(table: dict, base_dir: Path, spec_file: Path) -> Path:
    rel = table.get("path")
    if not isinstance(rel, str) or not rel:
        raise ParameterError("[[benchmark]] needs a 'path' (a string, relative to the spec file)", file=spec_file)
    return (Path(base_dir) / rel)


def _array(value: Any, where: str, file: Path, *, ndim: int, dtype=None) -> np.ndarray:
    try:
        arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: expected a {ndim}-D array, got {type(value).__name__} ({e})", file=file) from None
    if arr.ndim != ndim:
        raise InputError(f"{where}: expected a {ndim}-D array, got shape {arr.shape}", file=file)
    return arr


def _texts(value: Any, where: str, file: Path, n: int) -> np.ndarray:
    arr = _array(value, where, file, ndim=1)
    if len(arr) != n:
        raise InputError(f"{where}: {len(arr)} prompts, expected {n} (one per scored prompt)", file=file)
    return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr.tolist()],
                    dtype=object)


def _dict(value: Any, where: str, file: Path) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a dict, got {type(value).__name__}", file=file)
    return value


def _get(d: dict, key: Any, where: str, file: Path) -> Any:
    if key not in d:
        keys = ", ".join(map(repr, list(d)[:8]))
        raise InputError(f"{where}: missing key {key!r} (has {keys})", file=file)
    return d[key]


def _benchmark_name(value: str, spec_file: Path) -> str:
    """A catalog name from a routereval name or the reference's scenario name."""
    if value in BENCHMARKS:
        return value
    if value in SCENARIO_TO_NAME:
        return SCENARIO_TO_NAME[value]
    raise ParameterError(f"unknown benchmark {value!r}; expected one of: {', '.join(BENCHMARKS)}", file=spec_file)


# ---------------------------------------------------------------------- routereval-pickle
def leaderboard_files(root: Path, key: str) -> dict[str, Any]:
    """Paths of one leaderboard's official files under ``root`` (the download folder).

    Returns ``{'score': Path, 'prompt': Path, 'embed': {encoder: Path}}``; the prompt and
    embedding files may not exist (``embed`` lists only those that do).
    """
    root = Path(root)
    edir = root / "leaderboard_embed" / f"leaderboard_{key}_embed"
    embeds = {}
    if edir.is_dir():
        embeds = {p.name[: -len("_result.pkl")]: p for p in sorted(edir.glob("*_result.pkl"))}
    return {
        "score": root / "leaderboard_score" / f"leaderboard_{key}.pkl",
        "prompt": root / "leaderboard_prompt" / f"leaderboard_{key}_prompt.pkl",
        "embed": embeds,
    }


def read_routereval_pickle(table: dict, *, base_dir: Path, spec_file: Path) -> list[Benchmark]:
    """Read the official leaderboard pickles of one ``[[benchmark]]`` table (format ``routereval-pickle``).

    Parameters
    ----------
    table
        The spec table: ``path`` (root of the official download), optional ``leaderboards``,
        ``benchmarks``, ``embeddings``, ``prompts`` (see the module docstring).
    base_dir
        Folder the ``path`` is relative to (the spec file's folder).
    spec_file
        The spec file, for error messages.

    Returns
    -------
    One :class:`Benchmark` per benchmark with data, in catalog order: scores (n_models, n_prompts)
    float32, subsets, prompt texts when present, embeddings ``official/<encoder>`` (n_prompts, dim).
    """
    spec_file = Path(spec_file)
    _check_options(table, _RP_OPTIONS, "routereval-pickle", spec_file)
    root = _resolve(table, base_dir, spec_file)
    if not root.is_dir():
        raise InputError("no such folder; expected the root of the official RouterEval download "
                         "(holding leaderboard_score/)", file=root)
    leaderboards = _str_list(table, "leaderboards", spec_file, LEADERBOARDS)
    wanted = _str_list(table, "benchmarks", spec_file)
    if wanted is None and isinstance(table.get("name"), str):
        wanted = [table["name"]]
    wanted = None if wanted is None else [_benchmark_name(b, spec_file) for b in wanted]
    encoders = _str_list(table, "embeddings", spec_file)
    prompts = table.get("prompts", True)
    if not isinstance(prompts, bool):
        raise ParameterError(f"[[benchmark]] option 'prompts' must be true or false, got {prompts!r}", file=spec_file)

    if leaderboards is None:
        needed = {BENCHMARKS[b].leaderboard for b in wanted} if wanted else set(LEADERBOARDS)
        leaderboards = [lb for lb in LEADERBOARDS if lb in needed and leaderboard_files(root, lb)["score"].is_file()]
        if not leaderboards:
            expect = ", ".join(f"leaderboard_score/leaderboard_{lb}.pkl" for lb in LEADERBOARDS if lb in needed)
            raise InputError(f"no official score file found; expected {expect}", file=root)
    if wanted is not None:
        outside = [b for b in wanted if BENCHMARKS[b].leaderboard not in leaderboards]
        if outside:
            raise ParameterError(f"benchmark(s) {', '.join(outside)} are not on the selected leaderboards "
                                 f"({', '.join(leaderboards)})", file=spec_file)

    out: list[Benchmark] = []
    for lb in leaderboards:
        names = [b for b in LEADERBOARDS[lb] if wanted is None or b in wanted]
        out.extend(_read_leaderboard(root, lb, names, explicit=wanted is not None, encoders=encoders,
                                     prompts=prompts))
    if not out:
        raise InputError("the official score files hold no data for the selected benchmarks", file=root)
    return out


def _read_leaderboard(root: Path, key: str, names: list[str], *, explicit: bool,
                      encoders: list[str] | None, prompts: bool) -> list[Benchmark]:
    files = leaderboard_files(root, key)
    score_file: Path = files["score"]
    raw = _dict(safe_load(score_file), "the file", score_file)
    models = _array(_get(raw, "model", "the file", score_file), "['model']", score_file, ndim=1)
    models = np.array([str(m) for m in models.tolist()], dtype=object)
    data = _dict(_get(raw, "data", "the file", score_file), "['data']", score_file)

    # every subscenario of the file must be one the catalog knows for this leaderboard
    catalog = {s.official: (b, s) for b in LEADERBOARDS[key] for s in BENCHMARKS[b].subsets}
    unknown = [s for s in data if s not in catalog]
    if unknown:
        raise InputError(f"subscenario(s) {', '.join(map(repr, unknown[:10]))} are not part of leaderboard {key!r} "
                         f"of the RouterEval catalog (e.g. {next(iter(catalog))!r})", file=score_file)

    prompt_data = None
    if prompts and files["prompt"].is_file():
        prompt_data = _dict(safe_load(files["prompt"]), "the file", files["prompt"])
    if encoders is None:
        embed_files = files["embed"]
    else:
        embed_files = {}
        for enc in encoders:
            p = root / "leaderboard_embed" / f"leaderboard_{key}_embed" / f"{enc}_result.pkl"
            if not p.is_file():
                have = ", ".join(files["embed"]) or "none"
                raise InputError(f"no embeddings {enc!r} for leaderboard {key!r}; expected this file "
                                 f"(encoders present: {have})", file=p)
            embed_files[enc] = p
    embed_data = {enc: _dict(safe_load(p), "the file", p) for enc, p in embed_files.items()}

    out = []
    for name in names:
        info = BENCHMARKS[name]
        subs = [s for s in info.subsets if s.official in data]
        if not subs:
            if explicit:
                raise InputError(f"benchmark {name!r} was asked for but the file has none of its subscenarios "
                                 f"(e.g. {info.subsets[0].official!r})", file=score_file)
            continue
        out.append(_leaderboard_benchmark(info, subs, models, data, score_file, prompt_data, files["prompt"],
                                          embed_data, embed_files))
    return out


def _leaderboard_benchmark(info: BenchmarkInfo, subs, models: np.ndarray, data: dict, score_file: Path,
                           prompt_data: dict | None, prompt_file: Path, embed_data: dict, embed_files: dict) -> Benchmark:
    blocks, ids, subsets = [], [], []
    for s in subs:
        where = f"['data'][{s.official!r}]['correctness']"
        entry = _dict(data[s.official], f"['data'][{s.official!r}]", score_file)
        # graded scores stay float64 as in the files, so the paper protocol ranks and breaks near-ties
        # exactly as the reference does; 0/1 scores lose nothing in float32
        c = _array(_get(entry, "correctness", f"['data'][{s.official!r}]", score_file), where, score_file,
                   ndim=2, dtype=np.float32 if info.binary else np.float64)
        if c.shape[1] != len(models):
            raise InputError(f"{where}: shape {c.shape}, expected (prompts, {len(models)} models) "
                             "as in ['model']", file=score_file)
        blocks.append(c)
        n = c.shape[0]
        ids.extend(f"{s.name}/{i}" for i in range(n))
        subsets.extend([s.name] * n)
    # official layout is (prompts, models); the data model is (models, prompts)
    scores = np.ascontiguousarray(np.concatenate(blocks, axis=0).T)
    if np.isnan(scores).all(axis=1).any():
        # a model with no record on any of this benchmark's prompts is not one of its models
        keep = ~np.isnan(scores).all(axis=1)
        scores, bench_models = scores[keep], models[keep]
    else:
        bench_models = models
    sizes = [b.shape[0] for b in blocks]

    texts = None
    if prompt_data is not None:
        parts = []
        for s, n in zip(subs, sizes):
            parts.append(_texts(_get(prompt_data, s.official, "the file", prompt_file), f"[{s.official!r}]",
                                prompt_file, n))
        texts = np.concatenate(parts)

    embeddings = {}
    for enc, edata in embed_data.items():
        f = embed_files[enc]
        parts = []
        for s, n in zip(subs, sizes):
            e = _array(_get(edata, s.official, "the file", f), f"[{s.official!r}]", f, ndim=2, dtype=np.float32)
            if e.shape[0] != n:
                raise InputError(f"[{s.official!r}]: {e.shape[0]} embeddings, expected {n} (one per scored prompt)",
                                 file=f)
            parts.append(e)
        dims = {p.shape[1] for p in parts}
        if len(dims) > 1:
            raise InputError(f"benchmark {info.name!r}: subscenarios have embeddings of different widths {sorted(dims)}",
                             file=f)
        embeddings[f"official/{enc}"] = np.concatenate(parts, axis=0)

    return Benchmark(info.name, models=bench_models, prompt_ids=np.array(ids, dtype=object),
                     subsets=np.array(subsets, dtype=object), texts=texts, scores=scores,
                     binary=None if info.binary else False, embeddings=embeddings, source=str(score_file))


# ---------------------------------------------------------------------- router-dataset-pickle
def load_router_dataset(path: str | Path) -> dict:
    """Load one official ``<scenario>_router_dataset.pkl`` safely and check its structure.

    Parameters
    ----------
    path
        The pickle file.

    Returns
    -------
    The raw dict (see the module docstring), with every array checked: per split ``s`` of
    size ``n_s``, ``split_index[s + '_indices']`` (n_s,) int, ``embedding[s + '_embed']``
    (n_s, dim), ``prompt[s + '_prompt']`` (n_s,), and per pool ``data[s + '_score']`` (n_s, m)
    with ``m = len(model)``; the indices of the three splits are a permutation of
    ``range(n_train + n_val + n_test)``.

    Raises
    ------
    InputError
        Naming the file and the key path of the first thing that is not as expected.
    """
    path = Path(path)
    raw = _dict(safe_load(path), "the file", path)
    sizes = {}
    si = _dict(_get(raw, "split_index", "the file", path), "['split_index']", path)
    for s in SPLITS:
        where = f"['split_index']['{s}_indices']"
        idx = _array(_get(si, f"{s}_indices", "['split_index']", path), where, path, ndim=1)
        if len(idx) and not np.issubdtype(idx.dtype, np.integer):
            raise InputError(f"{where}: expected integer positions, got dtype {idx.dtype}", file=path)
        sizes[s] = len(idx)
    n = sum(sizes.values())
    allidx = np.concatenate([np.asarray(si[f"{s}_indices"], dtype=np.int64) for s in SPLITS])
    if n == 0 or not np.array_equal(np.sort(allidx), np.arange(n)):
        raise InputError(f"['split_index']: the train/val/test indices must together be a permutation of "
                         f"0..{n - 1} (each prompt in exactly one split)", file=path)
    emb = _dict(_get(raw, "embedding", "the file", path), "['embedding']", path)
    dims = set()
    for s in SPLITS:
        where = f"['embedding']['{s}_embed']"
        e = _array(_get(emb, f"{s}_embed", "['embedding']", path), where, path, ndim=2)
        if e.shape[0] != sizes[s]:
            raise InputError(f"{where}: {e.shape[0]} rows, expected {sizes[s]} (one per {s} prompt)", file=path)
        dims.add(e.shape[1])
    if len(dims) > 1:
        raise InputError(f"['embedding']: the splits have different widths {sorted(dims)}", file=path)
    pr = _dict(_get(raw, "prompt", "the file", path), "['prompt']", path)
    for s in SPLITS:
        where = f"['prompt']['{s}_prompt']"
        p = _array(_get(pr, f"{s}_prompt", "['prompt']", path), where, path, ndim=1)
        if len(p) != sizes[s]:
            raise InputError(f"{where}: {len(p)} prompts, expected {sizes[s]} (one per {s} prompt)", file=path)
    if not any(d in raw for d in DIFFICULTIES):
        raise InputError("no candidate pools: expected an 'easy' and/or 'hard' entry", file=path)
    for d in DIFFICULTIES:
        if d not in raw:
            continue
        for m, groups in _dict(raw[d], f"[{d!r}]", path).items():
            if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
                raise InputError(f"[{d!r}]: pool size key {m!r} is not an integer", file=path)
            for g, pool in _dict(groups, f"[{d!r}][{m}]", path).items():
                at = f"[{d!r}][{m}][{g!r}]"
                pool = _dict(pool, at, path)
                names = _array(_get(pool, "model", at, path), f"{at}['model']", path, ndim=1)
                k = len(names)
                if k == 0:
                    raise InputError(f"{at}['model']: an empty pool", file=path)
                if len(set(map(str, names.tolist()))) != k:
                    raise InputError(f"{at}['model']: a model appears twice in one pool", file=path)
                data = _dict(_get(pool, "data", at, path), f"{at}['data']", path)
                for s in SPLITS:
                    where = f"{at}['data']['{s}_score']"
                    sc = _array(_get(data, f"{s}_score", f"{at}['data']", path), where, path, ndim=2)
                    if sc.shape != (sizes[s], k):
                        raise InputError(f"{where}: shape {sc.shape}, expected ({sizes[s]}, {k}) "
                                         f"({s} prompts, models of the pool)", file=path)
                if "train_label" in data:
                    lab = _array(data["train_label"], f"{at}['data']['train_label']", path, ndim=2)
                    if lab.shape != (sizes["train"], k):
                        raise InputError(f"{at}['data']['train_label']: shape {lab.shape}, "
                                         f"expected ({sizes['train']}, {k})", file=path)
    return raw


def router_dataset_pools(raw: dict) -> list[tuple[int, str, list[str]]]:
    """The candidate pools of a router dataset: ``(m, group, model names)`` in file order.

    Parameters
    ----------
    raw
        A dict as returned by :func:`load_router_dataset`.
    """
    out = []
    for d in DIFFICULTIES:
        for m, groups in raw.get(d, {}).items():
            for g, pool in groups.items():
                out.append((int(m), str(g), [str(x) for x in np.asarray(pool["model"]).tolist()]))
    return out


def _prompt_layout(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompt ids and subsets of a benchmark with ``n`` prompts in catalog order."""
    info = BENCHMARKS.get(name)
    if info is not None and info.prompts == n:
        ids = [f"{s.name}/{i}" for s in info.subsets for i in range(s.prompts)]
        subsets = [s.name for s in info.subsets for _ in range(s.prompts)]
        return np.array(ids, dtype=object), np.array(subsets, dtype=object)
    return (np.array([f"{name}/{i}" for i in range(n)], dtype=object), np.full(n, name, dtype=object))


def router_dataset_benchmark(raw: dict, *, name: str, source: str | Path | None = None) -> Benchmark:
    """Rebuild one :class:`Benchmark` from a validated router dataset.

    Parameters
    ----------
    raw
        A dict as returned by :func:`load_router_dataset`.
    name
        The benchmark name.
    source
        The file, for error messages.

    Returns
    -------
    A benchmark with the union of the pools' models (in order of first appearance), scores
    (n_models, n_prompts) placed by ``split_index``, prompt texts and the
    ``official/router_dataset`` embeddings (n_prompts, dim).
    """
    si = raw["split_index"]
    idx = {s: np.asarray(si[f"{s}_indices"], dtype=np.int64) for s in SPLITS}
    n = sum(len(v) for v in idx.values())
    pools = router_dataset_pools(raw)
    order: dict[str, int] = {}
    for _, _, names in pools:
        for m in names:
            order.setdefault(m, len(order))
    graded = name in BENCHMARKS and not BENCHMARKS[name].binary
    dtype = np.float64 if graded else np.float32  # see _leaderboard_benchmark
    scores = np.full((len(order), n), np.nan, dtype=dtype)
    filled = np.zeros(len(order), dtype=bool)
    first_pool: dict[str, str] = {}
    for d in DIFFICULTIES:
        for m, groups in raw.get(d, {}).items():
            for g, pool in groups.items():
                names = [str(x) for x in np.asarray(pool["model"]).tolist()]
                rows = np.array([order[x] for x in names], dtype=np.int64)
                block = np.empty((len(rows), n), dtype=dtype)
                for s in SPLITS:
                    block[:, idx[s]] = np.asarray(pool["data"][f"{s}_score"], dtype=dtype).T
                seen = filled[rows]
                if seen.any():
                    old = scores[rows[seen]]
                    new = block[seen]
                    diff = ~((old == new) | (np.isnan(old) & np.isnan(new)))
                    if diff.any():
                        r, c = map(int, np.argwhere(diff)[0])
                        model = names[int(np.flatnonzero(seen)[r])]
                        raise InputError(f"model {model!r} has different scores in pool [{d!r}][{m}][{g!r}] and "
                                         f"pool {first_pool[model]} (prompt position {c}: {new[r, c]} vs {old[r, c]})",
                                         file=source)
                scores[rows[~seen]] = block[~seen]
                filled[rows] = True
                for x in names:
                    first_pool.setdefault(x, f"[{d!r}][{m}][{g!r}]")

    texts = np.empty(n, dtype=object)
    emb = None
    for s in SPLITS:
        texts[idx[s]] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                         for v in np.asarray(raw["prompt"][f"{s}_prompt"]).tolist()]
        e = np.asarray(raw["embedding"][f"{s}_embed"], dtype=np.float32)
        if emb is None:
            emb = np.empty((n, e.shape[1]), dtype=np.float32)
        emb[idx[s]] = e
    ids, subsets = _prompt_layout(name, n)
    info = BENCHMARKS.get(name)
    binary = False if info is not None and not info.binary else None
    bench = Benchmark(name, models=np.array(list(order), dtype=object), prompt_ids=ids, subsets=subsets,
                      texts=texts, scores=scores, binary=binary, embeddings={ROUTER_DATASET_EMBEDDING: emb},
                      source=None if source is None else str(source))
    # the file's split is the publisher's: the corpus keeps it, and no seed changes it
    bench.saved_splits["publisher"] = Split(idx["train"], idx["val"], idx["test"], seed=None, name="publisher",
                                            note="the router dataset's split_index")
    return bench


def read_router_dataset_pickle(table: dict, *, base_dir: Path, spec_file: Path) -> list[Benchmark]:
    """Read one official router dataset (format ``router-dataset-pickle``) into one benchmark.

    Parameters
    ----------
    table
        The spec table: ``path`` (the ``<scenario>_router_dataset.pkl`` file), optional ``name``.
    base_dir
        Folder the ``path`` is relative to (the spec file's folder).
    spec_file
        The spec file, for error messages.

    Returns
    -------
    A one-element list; see :func:`router_dataset_benchmark`.
    """
    spec_file = Path(spec_file)
    _check_options(table, _RD_OPTIONS, "router-dataset-pickle", spec_file)
    path = _resolve(table, base_dir, spec_file)
    name = table.get("name")
    if name is None:
        stem = path.name.removesuffix(".pkl").removesuffix("_router_dataset")
        if stem not in BENCHMARKS and stem not in SCENARIO_TO_NAME:
            raise ParameterError(f"cannot tell the benchmark from the file name {path.name!r} "
                                 f"(expected <scenario>_router_dataset.pkl); give name = \"...\"", file=spec_file)
        name = stem
    if not isinstance(name, str) or not name:
        raise ParameterError(f"[[benchmark]] option 'name' must be a non-empty string, got {name!r}", file=spec_file)
    name = SCENARIO_TO_NAME.get(name, name)
    raw = load_router_dataset(path)
    return [router_dataset_benchmark(raw, name=name, source=path)]
