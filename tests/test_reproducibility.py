"""The same numbers on any x86-64 machine: the CPU kernels pinned in every process that
trains (checked from inside the workers), the pin part of every cache key, the build's
record of its runs and glued values, and ``compare``'s verdict on two records."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import torch

from fashion_optim import experiments as ex
from fashion_optim import pin, record
from fashion_optim.cli import main
from fashion_optim.experiments import Spec, cache

#: A run of a few seconds.
TINY = Spec(
    "tiny",
    lr=0.05,
    optimizer_kwargs={"momentum": 0.9},
    epochs=2,
    batch_size=64,
    train_subset=640,
    val_subset=200,
)

pinnable = pytest.mark.skipif(
    pin.apply()["state"] != pin.ISA, reason="this processor cannot honour the pin"
)


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FASHION_OPTIM_EXECUTOR", raising=False)
    monkeypatch.delenv(record.ENV_RECORD, raising=False)


@pytest.fixture
def unpinned_environ(monkeypatch):
    """This process's environment without the pin's variables: a process started from
    here must pin itself (this one's pin holds from its first key on)."""
    pin.key()
    for name in pin.settings():
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- the pin


@pinnable
def test_the_package_pins_every_library_before_torch_loads():
    state = pin.status()
    assert state["state"] == "AVX2" and state["before_torch"] and state["before_numpy"]
    assert state["torch_capability"] == "AVX2"
    assert state["settings"] == pin.settings()
    assert state["settings"]["ATEN_CPU_CAPABILITY"] == "avx2"
    assert state["settings"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert state["settings"]["MKL_CBWR"] == "AVX2"


@pinnable
def test_local_workers_train_pinned_even_when_started_without_the_variables(
    unpinned_environ, monkeypatch
):
    monkeypatch.setenv("FASHION_OPTIM_WORKERS", "2")
    runs = ex.run_many([(TINY, 0), (TINY, 1)], profile="quick", workers=2)
    for r in runs:
        # said by the worker that trained the run
        said = r.meta["environment"]["pin"]
        assert not r.from_cache and said["state"] == "AVX2" and said["before_torch"]
        assert said["torch_capability"] == "AVX2"
        assert said["settings"] == pin.settings()


@pinnable
def test_a_dask_worker_pins_itself_before_torch_loads(unpinned_environ):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as local,
        distributed.Client(local) as client,
    ):
        names = list(pin.settings())  # (the lambda must not import fashion_optim itself)
        started = client.run(lambda: {k: os.environ.get(k) for k in names})
        said = client.submit(pin.status, pure=False).result()
    assert all(v is None for env in started.values() for v in env.values())  # not inherited
    assert said["state"] == "AVX2" and said["before_torch"]
    assert said["torch_capability"] == "AVX2" and said["settings"] == pin.settings()


_REMOVED = """
import json, os, sys
import fashion_optim, torch
from fashion_optim import pin
first = pin.key()["state"] if sys.argv[1] == "before" else None
for name in pin.settings():
    del os.environ[name]
late = pin.key()["state"]
torch.nn.functional.conv2d(torch.ones(16, 1, 28, 28), torch.ones(6, 1, 5, 5))
torch.randn(64, 400) @ torch.randn(400, 120)
print(json.dumps([first, late, torch.backends.cpu.get_cpu_capability()]))
"""


@pinnable
@pytest.mark.parametrize("when", ["before", "after"])
def test_the_pin_holds_from_the_first_key_whatever_becomes_of_its_variables(when):
    # torch, oneDNN and MKL read the variables at their first use: a process whose
    # variables are gone by then computes unpinned, so it must not be keyed as pinned
    env = {**os.environ, "MKL_VERBOSE": "1", "ONEDNN_VERBOSE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _REMOVED, when], env=env, capture_output=True, text=True, check=True
    )
    first, late, capability = json.loads(out.stdout.splitlines()[-1])
    said = out.stdout + out.stderr
    if when == "before":  # held: every library kept its AVX2 code
        assert (first, late, capability) == ("AVX2", "AVX2", "AVX2")
        assert "CNR:OFF" not in said and "jit:avx512" not in said
        assert "CNR:AVX2" in said or "MKL_VERBOSE" not in said
    else:
        assert late == "not in force" and "not in force in this process" in said


def test_the_command_line_shows_the_pin_and_exports_it(capsys):
    assert main(["pin"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(pin.describe()) and "ATEN_CPU_CAPABILITY=avx2" in out
    assert main(["pin", "--export"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "export ATEN_CPU_CAPABILITY=avx2" in lines and len(lines) == len(pin.settings())
    exported = subprocess.run(
        ["bash", "-c", "\n".join([*lines, "echo $NPY_DISABLE_CPU_FEATURES"])],
        capture_output=True, text=True, check=True, env={},
    )  # fmt: skip
    assert exported.stdout.strip() == pin.settings().get("NPY_DISABLE_CPU_FEATURES", "")


def test_a_run_without_the_pin_has_another_cache_key(monkeypatch):
    on = cache.cache_key("run", {"lr": 0.1, "seed": 0}, "data")
    monkeypatch.setitem(pin._applied, "state", "off")
    off = cache.cache_key("run", {"lr": 0.1, "seed": 0}, "data")
    monkeypatch.setitem(pin._applied, "state", "unavailable")
    elsewhere = cache.cache_key("run", {"lr": 0.1, "seed": 0}, "data")
    assert len({on, off, elsewhere}) == 3


def test_a_process_where_torch_chose_its_kernels_first_is_keyed_apart(monkeypatch):
    on = cache.cache_key("run", {"lr": 0.1, "seed": 0}, "data")
    monkeypatch.setattr(pin, "_applied", {"state": "AVX2", "reason": None,
                                          "before": {"torch": False, "numpy": False}})  # fmt: skip
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    with pytest.warns(RuntimeWarning, match="torch chose its CPU kernels before fashion_optim"):
        late = cache.cache_key("run", {"lr": 0.1, "seed": 0}, "data")
    assert late != on and pin.key() == {"state": "not in force"}
    assert pin.status()["state"] == "not in force" and "not pinned" in pin.describe()


def test_the_pin_turns_off_with_its_variable(unpinned_environ):
    code = (
        "import json, fashion_optim, torch; from fashion_optim import pin; "
        "print(json.dumps(pin.status()))"
    )
    env = {**os.environ, pin.ENV_PIN: "off"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    state = json.loads(out.stdout)
    assert state["state"] == "off" and set(state["settings"].values()) == {None}
    assert pin.key() != {"state": "off"}  # this process is pinned: the keys differ


def test_a_processor_that_cannot_honour_the_pin_is_said_once(monkeypatch):
    monkeypatch.setattr(pin.platform, "machine", lambda: "arm64")
    monkeypatch.delenv(pin._SAID, raising=False)
    for name in pin.settings():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pin, "_applied", {})
    with pytest.warns(
        RuntimeWarning, match="cannot pin the CPU kernels to AVX2: this processor is arm64"
    ):
        assert pin.apply()["state"] == "unavailable"
    assert all(name not in os.environ for name in pin.settings())
    monkeypatch.setattr(pin, "_applied", {})  # a process started from this one: silent
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        assert pin.apply()["state"] == "unavailable"
    assert "arm64" in pin.describe()


# --------------------------------------------------------------------------- the record


def test_a_build_records_each_run_it_used_once(tmp_path, monkeypatch):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(record.ENV_RECORD, str(events))
    first = ex.run(TINY, seed=0, profile="quick")
    again = ex.run(TINY, seed=0, profile="quick")  # from the cache: noted again
    assert again.from_cache
    rows = record.assemble(events, [], {"kind": "environment", "value": {"format": 1}})
    runs = [r for r in rows if r["kind"] == "run"]
    assert len(runs) == 1
    (row,) = runs
    assert (row["name"], row["seed"]) == ("tiny", 0)
    assert row["test_acc"] == first.test_acc and row["test_loss"] == first.test_loss
    assert row["history"]["val_acc"] == first.history.val_acc
    assert row["config"] == first.config.to_dict()
    path = record.write(rows, tmp_path / "record.jsonl")
    assert path.stat().st_mode & 0o444 == 0o444  # served with the site
    assert record.read(tmp_path) == json.loads(json.dumps(rows))
    pandas = pytest.importorskip("pandas")
    table = pandas.read_json(path, lines=True)  # the documented one line
    assert list(table["kind"]) == ["environment", "run"]


def test_glued_values_are_read_from_myst_nb_files(tmp_path):
    note = tmp_path / "note"
    note.mkdir()
    glue = {
        "best": {"data": {"text/plain": "'0.9012 ± 0.0011'"}},
        "fig": {"data": {"image/png": "...", "text/plain": "<Figure>"}},
        "build_time": {"data": {"text/plain": "'12.5'"}},
        "torch_version": {"data": {"text/plain": "'2.14.1'"}},
    }
    (note / "results.glue.json").write_text(json.dumps(glue))
    rows = {r["name"]: r for r in record.glue_rows(tmp_path)}
    assert rows["best"]["value"] == "0.9012 ± 0.0011" and rows["best"]["page"] == "note/results"
    assert rows["fig"]["value"] is None
    assert rows["build_time"]["time"] and not rows["best"]["time"]
    assert rows["torch_version"]["machine"] and not rows["best"]["machine"]
    assert record.glue_rows(tmp_path, ["index"]) == []


# --------------------------------------------------------------------------- compare


def _record(tmp_path, name, changes=None):
    rows = [
        {"kind": "environment", "page": "", "name": "environment", "value": {"processor": "X"}},
        {"kind": "glue", "page": "note/results", "name": "best", "value": "0.9012 ± 0.0011"},
        {"kind": "text", "page": "plot_06", "name": "001", "value": "trained in 52.1 s"},
        {
            "kind": "run",
            "name": "sgd",
            "seed": 0,
            "config_id": "abc",
            "test_acc": 0.8891,
            "test_loss": 0.31,
            "wall_time": 52.0,
            "history": {"val_acc": [0.81, 0.85], "epoch_time": [5.0, 5.1]},
        },
    ]
    for (i, field), value in (changes or {}).items():
        rows[i] = {**rows[i], field: value}
    path = tmp_path / name
    record.write(rows, path)
    return str(path)


def test_compare_exits_zero_on_identical_records(tmp_path, capsys):
    a = _record(tmp_path, "a.jsonl")
    assert main(["compare", a, a]) == 0
    assert "every number bitwise equal" in capsys.readouterr().out


def test_compare_finds_a_single_changed_number_and_exits_non_zero(tmp_path, capsys):
    a = _record(tmp_path, "a.jsonl")
    b = _record(tmp_path, "b.jsonl", {(3, "test_acc"): 0.88910000001})
    assert main(["compare", a, b]) == 1
    out = capsys.readouterr().out
    diffs = [line for line in out.splitlines() if line.startswith("DIFF")]
    assert len(diffs) == 1 and "run sgd seed 0" in diffs[0] and "test_acc" in diffs[0]
    assert "within the printed digits" in diffs[0]
    assert "1 differ (0 beyond the printed digits)" in out


def test_compare_reads_printed_numbers_one_by_one(tmp_path):
    a = record.read(_record(tmp_path, "a.jsonl"))
    b = record.read(_record(tmp_path, "b.jsonl", {(1, "value"): "0.9013 ± 0.0011"}))
    (d,) = record.compare(a, b).differences
    assert (d.where, d.a, d.b, d.visible) == ("glue note/results:best #1", "0.9012", "0.9013", True)
    assert d.delta == pytest.approx(0.0001)
    c = record.read(_record(tmp_path, "c.jsonl", {(1, "value"): "Adam 0.9012 ± 0.0011"}))
    assert len(record.compare(a, c).differences) == 1  # the words differ: the whole value


def test_compare_lists_times_but_never_fails_on_them(tmp_path, capsys):
    a = _record(tmp_path, "a.jsonl")
    b = _record(
        tmp_path,
        "b.jsonl",
        {
            (2, "value"): "trained in 49.8 s",
            (3, "wall_time"): 49.0,
            (3, "history"): {"val_acc": [0.81, 0.85], "epoch_time": [4.0, 5.1]},
        },
    )
    result = record.compare(record.read(a), record.read(b))
    assert len(result.differences) == 3 and result.equal
    assert main(["compare", a, b]) == 0
    assert "ignored: 3 measurements of time" in capsys.readouterr().out


def test_compare_counts_a_value_only_one_record_has(tmp_path):
    a = record.read(_record(tmp_path, "a.jsonl"))
    (d,) = record.compare(a, a[:3]).differences  # the run, once
    assert d.where == "run sgd seed 0 [abc] (only in A)" and not d.ignored
    assert not record.compare(a, a[:3]).equal
    (d,) = record.compare(a[:1] + a[2:], a).differences
    assert d.where == "glue note/results:best (only in B)" and d.b == "0.9012 ± 0.0011"


def test_compare_fails_across_processors_only_when_asked(tmp_path):
    a = _record(tmp_path, "a.jsonl")
    b = _record(tmp_path, "b.jsonl", {(3, "test_acc"): 0.8892})
    other = _record(
        tmp_path, "c.jsonl", {(0, "value"): {"processor": "Y"}, (3, "test_acc"): 0.8892}
    )
    assert main(["compare", "--if-same-processor", a, b]) == 1
    assert main(["compare", "--if-same-processor", a, other]) == 0
    assert main(["compare", a, other]) == 1


def test_compare_names_what_it_cannot_read(tmp_path, capsys):
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "without a record.jsonl" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "glue"}\nnot json\n')
    assert main(["compare", str(bad), str(bad)]) == 2
    assert "line 2, is not JSON" in capsys.readouterr().err


def test_the_record_so_far_reads_the_build_s_events_and_glue(tmp_path, monkeypatch):
    assert record.current() == []  # not in a build
    (tmp_path / "glue").mkdir()
    glued = {"n_seeds": {"data": {"text/plain": "'2'"}}}
    (tmp_path / "glue" / "index.glue.json").write_text(json.dumps(glued))
    monkeypatch.setenv(record.ENV_RECORD, str(tmp_path / "events.jsonl"))
    monkeypatch.setenv(record.ENV_GLUE, str(tmp_path / "glue"))
    monkeypatch.setenv(record.ENV_PAGE, "note/findings")
    record.note_text("SGD reaches 0.9012.")
    rows = record.current()
    assert [r["kind"] for r in rows] == ["environment", "glue", "text"]
    env = rows[0]["value"]
    assert env["pin"] == pin.describe() and env["profile"] in ("full", "quick")
    assert env["torch"] and env["data"] and set(env["code"]) == set(cache.KINDS)
    assert rows[1]["value"] == "2" and rows[2]["value"] == "SGD reaches 0.9012."
    assert rows[2]["page"] == "note/findings"
    monkeypatch.setattr(sys, "argv", ["/somewhere/gallery/plot_02_momentum.py"])
    record.note_text("Momentum ends lower.")
    assert [r["page"] for r in record.current()[2:]] == ["note/findings", "plot_02_momentum"]
