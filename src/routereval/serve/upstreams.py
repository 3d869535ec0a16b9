"""UPSTREAMS.toml: where each pool model is served (an OpenAI-compatible base URL).

```toml
[defaults]                       # optional, applies to every model
timeout = 60                     # seconds to wait for an upstream (connect, read)

[models."gpt-4-1106-preview"]    # a model of the router's pool
base_url = "https://api.openai.com/v1"
model = "gpt-4-1106-preview"     # the upstream's name for it (default: the key)
api_key_env = "OPENAI_API_KEY"   # or api_key = "..." (a literal; keep the file private)
timeout = 120                    # overrides [defaults]
```

Every pool model must have an entry (a routed request must have somewhere to go); an entry
for a model outside the pool is an error too (a typo would otherwise go unnoticed).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from routereval.errors import InputError
from routereval.validate import is_real

_MODEL_KEYS = {"base_url", "model", "api_key", "api_key_env", "timeout"}
_DEFAULT_KEYS = {"timeout"}


@dataclass(frozen=True)
class Upstream:
    """One model's upstream: base URL (ending before ``/chat/completions``), upstream model name, key, timeout."""

    name: str
    base_url: str
    model: str
    api_key: str | None
    timeout: float

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


def _timeout(value, file: Path, where: str) -> float:
    if not (is_real(value) and value > 0):
        raise InputError(f"{where}.timeout must be a number of seconds > 0; got {value!r}", file=file)
    return float(value)


def _port_ok(parts) -> bool:
    try:
        parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        return False
    return True


def load_upstreams(path: str | os.PathLike, pool: list[str], *, default_timeout: float = 60.0) -> dict[str, Upstream]:
    """Parse and check ``path`` against the pool's model names.

    Returns
    -------
    dict
        Pool model name -> :class:`Upstream`.
    """
    file = Path(path)
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("upstreams file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read upstreams file: {e}", file=file) from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"not valid TOML: {e}", file=file) from None
    extra = set(doc) - {"defaults", "models"}
    if extra:
        raise InputError(f"unknown table {sorted(extra)[0]!r}; expected [defaults] and [models.\"NAME\"]", file=file)
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - _DEFAULT_KEYS:
        raise InputError(f"[defaults] may hold only: {', '.join(sorted(_DEFAULT_KEYS))}", file=file)
    timeout = _timeout(defaults["timeout"], file, "defaults") if "timeout" in defaults else default_timeout
    models = doc.get("models")
    if not isinstance(models, dict) or not models:
        raise InputError('no [models."NAME"] tables; expected one per pool model', file=file)
    out: dict[str, Upstream] = {}
    for name, entry in models.items():
        where = f'models."{name}"'
        if name not in pool:
            raise InputError(f"{where} is not a model of the router's pool; expected one of: {', '.join(pool)}", file=file)
        if not isinstance(entry, dict):
            raise InputError(f"{where} must be a table", file=file)
        bad = set(entry) - _MODEL_KEYS
        if bad:
            raise InputError(f"{where}: unknown key {sorted(bad)[0]!r}; allowed: {', '.join(sorted(_MODEL_KEYS))}",
                             file=file)
        if "base_url" not in entry:
            raise InputError(f"{where}: missing key 'base_url' (the upstream's http(s) URL, such as "
                             "'https://api.openai.com/v1')", file=file)
        base = entry.get("base_url")
        parts = urlsplit(base) if isinstance(base, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts):
            raise InputError(f"{where}.base_url must be an http(s) URL such as 'https://api.openai.com/v1'; "
                             f"got {base!r}", file=file)
        upstream_model = entry.get("model", name)
        if not isinstance(upstream_model, str) or not upstream_model:
            raise InputError(f"{where}.model must be a non-empty string", file=file)
        if "api_key" in entry and "api_key_env" in entry:
            raise InputError(f"{where}: give api_key or api_key_env, not both", file=file)
        key = entry.get("api_key")
        if "api_key_env" in entry:
            var = entry["api_key_env"]
            if not isinstance(var, str) or var not in os.environ:
                raise InputError(f"{where}.api_key_env names environment variable {var!r}, which is not set", file=file)
            key = os.environ[var]
        if key is not None and (not isinstance(key, str) or not key):
            raise InputError(f"{where}.api_key must be a non-empty string", file=file)
        t = _timeout(entry["timeout"], file, where) if "timeout" in entry else timeout
        out[name] = Upstream(name=name, base_url=base, model=upstream_model, api_key=key, timeout=t)
    missing = [m for m in pool if m not in out]
    if missing:
        raise InputError(f"no upstream for pool model(s) {', '.join(repr(m) for m in missing)}; every pool model "
                         'needs a [models."NAME"] table', file=file)
    return out
