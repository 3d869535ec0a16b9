"""Package-level promises: a light import, lazy heavy dependencies, the CLI entry point."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "sentence_transformers", "transformers", "sklearn", "fastapi", "dask", "matplotlib",
         "duckdb", "pyarrow", "huggingface_hub", "scipy")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    return set(out.stdout.split())


def test_import_routereval_loads_no_heavy_dependency():
    loaded = _loaded_after("import routereval")
    assert not {m for m in HEAVY if m in loaded}


def test_cli_startup_loads_no_heavy_dependency():
    # building the whole command tree must stay cheap: `routereval --help` is instant
    loaded = _loaded_after("import routereval.cli.main")
    assert not {m for m in HEAVY if m in loaded}


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "routereval", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "data" in out.stdout
