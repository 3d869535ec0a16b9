"""The restricted unpickler: malicious pickles are refused before anything runs; data pickles round-trip."""

from __future__ import annotations

import io
import pickle
import subprocess  # noqa: F401 - the payload class below names it
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from routereval.errors import InputError, UnsafePickleError
from routereval.sources.safe_pickle import safe_load

sys.path.insert(0, str(Path(__file__).parent))
from official_fixtures import dump_pickle  # noqa: E402


class _Reduce:
    """Pickles as ``func(*args)``: what an attacker's pickle does on load."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(target: Path) -> dict[str, bytes]:
    import os

    t = str(target)
    code = f"open({t!r}, 'w').write('pwned')"
    out: dict[str, bytes] = {}
    for proto in (0, 2, 4, 5):
        out[f"os.system-p{proto}"] = pickle.dumps(_Reduce(os.system, (f"touch {t}",)), protocol=proto)
        out[f"builtins.exec-p{proto}"] = pickle.dumps(_Reduce(exec, (code,)), protocol=proto)
    out["builtins.eval-p4"] = pickle.dumps(_Reduce(eval, (code,)), protocol=4)
    out["subprocess.call-p3"] = pickle.dumps(_Reduce(subprocess.call, (["touch", t],)), protocol=3)
    out["subprocess.Popen-p5"] = pickle.dumps(_Reduce(subprocess.Popen, (["touch", t],)), protocol=5)
    # hand-written protocol 0: GLOBAL + REDUCE, and the INST opcode
    out["posix.system-GLOBAL-p0"] = f"cposix\nsystem\n(S'touch {t}'\ntR.".encode()
    out["os.system-INST-p0"] = f"(S'touch {t}'\nios\nsystem\n.".encode()
    # getattr chain: builtins.getattr(builtins.__import__('os'), 'system')
    out["builtins.getattr-p2"] = (b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'touch "
                                  + t.encode() + b"'\ntR.")
    # hidden deep inside legitimate data: an object array holding the payload
    out["nested-in-object-array-p4"] = pickle.dumps(
        {"data": {"x": {"correctness": np.array([1.0, 2.0])}},
         "model": np.array([_Reduce(os.system, (f"touch {t}",))], dtype=object)}, protocol=4)
    # numpy's own loaders are not data constructors either
    out["numpy.load-p4"] = pickle.dumps(_Reduce(np.load, (t,)), protocol=4)
    return out


@pytest.mark.parametrize("variant", list(_payloads(Path("/x")).keys()))
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, variant):
    target = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(_payloads(target)[variant])
    with pytest.raises(UnsafePickleError) as e:
        safe_load(evil)
    assert not target.exists()
    msg = str(e.value)
    assert str(evil) in msg and "refused global" in msg and "admitted:" in msg
    assert "\n" not in msg


def test_refused_global_is_named(tmp_path):
    import os

    evil = dump_pickle(_Reduce(os.system, ("true",)), tmp_path / "e.pkl")
    with pytest.raises(UnsafePickleError, match=r"refused global 'posix\.system'"):
        safe_load(evil)


def test_refusal_via_cli_is_one_line_exit_2(tmp_path, cli):
    import os

    target = tmp_path / "pwned.txt"
    data = tmp_path / "router_dataset"
    data.mkdir()
    (data / "gsm8k_router_dataset.pkl").write_bytes(pickle.dumps(_Reduce(os.system, (f"touch {target}",))))
    spec = tmp_path / "spec.toml"
    spec.write_text('[[benchmark]]\nformat = "router-dataset-pickle"\npath = "router_dataset/gsm8k_router_dataset.pkl"\n')
    r = cli("data", "import", spec, "--out", tmp_path / "corpus")
    assert r.code == 2
    assert "refused global 'posix.system'" in r.err and len(r.err.strip().splitlines()) == 1
    assert not target.exists() and not (tmp_path / "corpus").exists()


def _legit() -> dict:
    return {
        "float": np.linspace(0, 1, 7),
        "float32_2d": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "int": np.arange(-3, 3, dtype=np.int64),
        "uint8": np.arange(5, dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "str": np.array(["org/model-7B", "gpt-4o", "ünïcode"]),
        "object_str": np.array(["a", "bb", "ccc"], dtype=object),
        "bytes_arr": np.array([b"x", b"yz"]),
        "empty": np.zeros((0, 3)),
        "structured": np.zeros(2, dtype=[("a", "f4"), ("b", "U3")]),
        "dtype": np.dtype("float32"),
        "scalar_f": np.float64(0.25),
        "scalar_i": np.int32(7),
        "nested": {"easy": {3: {"all_strong": {"data": {"train_score": np.eye(3)}, "model": np.array(["a", "b", "c"])}}}},
        "list": [1, 2.5, "three", None, True, b"bytes", 1 + 2j],
        "tuple": (1, (2, 3)),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a"}),
        "ordered": OrderedDict(a=1),
        "bytearray": bytearray(b"ab"),
    }


def _assert_same(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert a.tolist() == b.tolist()
        assert a.flags.f_contiguous == b.flags.f_contiguous
    elif isinstance(a, dict):
        assert type(a) is type(b) and list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert type(a) is type(b) and a == b


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_data_pickles_round_trip(tmp_path, protocol):
    obj = _legit()
    path = dump_pickle(obj, tmp_path / "ok.pkl", protocol=protocol)
    _assert_same(obj, safe_load(path))
    # file objects are accepted too
    with open(path, "rb") as f:
        _assert_same(obj, safe_load(f))


def test_numpy1_pickles_load(tmp_path):
    obj = _legit()
    path = dump_pickle(obj, tmp_path / "np1.pkl", numpy1=True)
    raw = path.read_bytes()
    assert b"numpy.core.multiarray" in raw and b"numpy._core" not in raw
    _assert_same(obj, safe_load(path))


def test_not_a_pickle_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"this is not a pickle")
    with pytest.raises(InputError, match="not a valid data pickle"):
        safe_load(bad)
    trunc = tmp_path / "trunc.pkl"
    trunc.write_bytes(pickle.dumps(_legit(), protocol=4)[:200])
    with pytest.raises(InputError, match=str(trunc)):
        safe_load(trunc)
    with pytest.raises(InputError, match="no such file"):
        safe_load(tmp_path / "missing.pkl")


def test_stream_without_name():
    with pytest.raises(UnsafePickleError, match="<pickle stream>"):
        safe_load(io.BytesIO(b"cos\nsystem\n(S'true'\ntR."))
