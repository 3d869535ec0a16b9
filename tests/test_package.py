"""Package-level promises: a light import, lazy heavy dependencies, the CLI entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


def test_saving_and_loading_are_importable_from_routers_lazily():
    import routereval.routers as routers
    from routereval.routers import load_router, save_router
    from routereval.routers.persist import load_router as direct

    assert load_router is direct and callable(save_router) and "load_router" in routers.__all__
    loaded = _loaded_after("import routereval.routers")
    assert "safetensors" not in loaded and not {m for m in HEAVY if m in loaded}


@pytest.mark.parametrize("module", ["routereval", "routereval.routers", "routereval.sources", "routereval.coldstart"])
def test_lazy_names_are_listed_for_completion_without_loading_them(module):
    # dir() is what IPython completes from: the lazily exported names were missing (routereval.open_<TAB>: nothing)
    code = (f"import {module} as m\nnames = dir(m)\nassert set(m.__all__) <= set(names), set(m.__all__) - set(names)\n"
            f"assert all(hasattr(m, n) for n in m.__all__)")
    loaded = _loaded_after(code)
    if module != "routereval.coldstart":  # its names' modules are numpy-only; the others' must stay unloaded
        assert not {m for m in HEAVY if m in loaded}


def test_help_texts_keep_their_square_brackets(cli):
    # typer renders help as rich markup, where [name] is a style tag: a TOML table name must be escaped
    res = cli("data", "import", "--help")
    assert res.code == 0 and "[[benchmark]]" in " ".join(res.out.split())


def test_help_paragraphs_are_wrapped_by_the_terminal_not_by_the_docstring(cli):
    # Typer's rich help keeps a docstring's line breaks inside a paragraph: "eval --help" broke its
    # --json paragraph after '"group",' at any terminal width
    res = cli("eval", "--help")
    assert res.code == 0 and '"m", "group", "protocol", "split"' in " ".join(res.out.split())
    import typer.main

    from routereval.cli.main import app

    def helps(command, path=()):
        for name, sub in getattr(command, "commands", {}).items():
            yield (*path, name), sub.help or ""
            yield from helps(sub, (*path, name))

    broken = [" ".join(path) for path, text in helps(typer.main.get_command(app))
              if any("\n" in p for p in text.split("\n\n") if not p.startswith("\b"))]
    assert broken == []


def test_argument_helpers():
    from fractions import Fraction

    import numpy as np

    from routereval.errors import InputError
    from routereval.validate import as_list, is_real, option

    assert as_list("knn", "routers") == ["knn"] and as_list(("a", "b"), "routers") == ["a", "b"]
    assert as_list(3, "ms") == [3] and as_list(None, "ms") is None
    with pytest.raises(InputError, match="routers: expected one value or a list of them; got object"):
        as_list(object(), "routers")
    assert all(is_real(v) for v in (0, 1.5, -2, np.float64(0.5), np.float32(0.5), np.int64(3), Fraction(1, 2)))
    assert not any(is_real(v) for v in (True, np.bool_(True), float("nan"), np.float32("inf"), "1", None, 1j))
    assert option("max_batch") == "max_batch (--max-batch)" and option("ms", "--m") == "ms (--m)"


def test_bool_int_and_path_checks(tmp_path):
    import numpy as np

    from routereval.errors import InputError, ParameterError
    from routereval.validate import as_path, check_bool, check_int

    assert check_bool(True, "texts") is True and check_bool(np.bool_(False), "texts") is False
    for bad in ("no", 1, None):
        with pytest.raises(ParameterError, match="texts must be True or False"):
            check_bool(bad, "texts")
    assert check_int(np.int64(3), "k", low=1) == 3 and type(check_int(np.int64(3), "k")) is int
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(ParameterError, match="k must be an int >= 1"):
            check_int(bad, "k", low=1)
    assert check_int(np.uint32(2**32 - 1), "seed", low=0, high=2**32 - 1) == 2**32 - 1
    for bad, msg in ((2**32, r"^seed must be an int in \[0, 2\*\*32 - 1\]; got 4294967296$"), (-1, r"in \[0, ")):
        with pytest.raises(ParameterError, match=msg):
            check_int(bad, "seed", low=0, high=2**32 - 1, high_text="2**32 - 1")
    with pytest.raises(ParameterError, match=r"^n must be an int <= 5; got 6$"):
        check_int(6, "n", high=5)
    assert as_path(str(tmp_path), "path") == tmp_path and as_path(tmp_path, "path") == tmp_path
    for bad in (None, "", 3, ["a"]):
        with pytest.raises(InputError, match="path must be a path"):
            as_path(bad, "path")


def test_float_array():
    import numpy as np

    from routereval.errors import InputError
    from routereval.validate import float_array

    assert float_array([1, 2], "a", shape=(2,)).dtype == np.float64
    assert float_array(np.ones((3, 2)), "a", shape=(None, 2)).shape == (3, 2)
    for value, kw, msg in (("x", dict(expected="(n,) of scores"), r"^a must be a numeric array \(n,\) of scores; got str$"),
                           ([1, 2], dict(ndim=2), r"^a must be a 2-D array; got shape \(2,\)$"),
                           ([1, 2], dict(shape=(3,)), r"^a must have shape \(3,\); got \(2,\)$"),
                           (np.ones((2, 2)), dict(shape=(None, 3)), r"^a must have shape \(any, 3\); got \(2, 2\)$"),
                           ([1, np.nan], {}, "^a must be finite")):
        with pytest.raises(InputError, match=msg):
            float_array(value, "a", **kw)
    assert np.isnan(float_array([np.nan], "a", finite=False)).all()
