"""routereval: build, run and serve LLM-router benchmarks at RouterEval scale.

Importing this package is cheap: heavy dependencies (torch, sentence-transformers,
FastAPI, Dask, matplotlib, DuckDB) are imported where they are used.
"""

from __future__ import annotations

from routereval.errors import (
    CorpusError,
    InputError,
    NotFittedError,
    ParameterError,
    RouterEvalError,
    UnsafePickleError,
)

__version__ = "0.1.0"

__all__ = [
    "CorpusError",
    "InputError",
    "NotFittedError",
    "ParameterError",
    "RouterEvalError",
    "UnsafePickleError",
    "__version__",
    "open_corpus",
    "write_corpus",
    "Benchmark",
    "Corpus",
    "ModelTable",
]


def __dir__() -> list[str]:  # the lazy names too, for dir() and a notebook's tab completion
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str):  # lazy re-exports keep `import routereval` fast
    if name in {"open_corpus", "write_corpus", "CorpusWriter"}:
        from routereval.data import store

        return getattr(store, name)
    if name in {"Benchmark", "Corpus", "ModelTable"}:
        from routereval.data import model

        return getattr(model, name)
    raise AttributeError(f"module 'routereval' has no attribute {name!r}")
