"""Where runs train: a Dask cluster on localhost gives the local results bit for bit; a
killed worker, Ctrl-C and a bad scheduler address end cleanly, naming the run, and leave
no partial cache entry."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fashion_optim import experiments as ex
from fashion_optim.experiments import Record, Spec, cache

distributed = pytest.importorskip("distributed")

#: Quick runs, each a few seconds.
TINY = Spec(
    "tiny",
    lr=0.05,
    optimizer_kwargs={"momentum": 0.9},
    epochs=1,
    batch_size=32,
    train_subset=1000,
    val_subset=300,
    record=Record(state={"features.0.weight": [0]}),
)
JOBS = [
    (TINY, 0),
    (TINY.replace(name="tiny adam", optimizer="adam", lr=1e-3, optimizer_kwargs={}), 1),
]
#: Long enough to be stopped in the middle (about 20 s on one core).
SLOW = TINY.replace(name="slow", epochs=4, train_subset=10000, record=Record())


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(root))
    monkeypatch.delenv("FASHION_OPTIM_EXECUTOR", raising=False)
    return root


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _assert_whole_entries_only(root: Path) -> None:
    """Every file under the cache is its tag or a complete, readable entry."""
    for path in root.rglob("*") if root.exists() else []:
        if path.is_file() and path.name != "CACHEDIR.TAG":
            assert path.suffix == ".npz", f"a partial file was left: {path}"
            _, meta = cache.read_entry(path)
            assert meta["key"] == path.stem


@pytest.fixture(scope="module")
def cluster():
    """A Dask cluster on localhost: 2 worker processes of 1 thread, started and closed
    here."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield local, client


def test_a_dask_cluster_gives_the_local_results_bit_for_bit(cluster, tmp_path, monkeypatch):
    local, client = cluster
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "here"))
    here = ex.run_many(JOBS, profile="quick", workers=1)
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "dask"))
    remote = ex.run_many(JOBS, profile="quick", executor=client.get_executor())
    for a, b in zip(here, remote, strict=True):
        assert not b.from_cache and a.meta["key"] == b.meta["key"]
        assert a.history.same_as(b.history) and (a.test_acc, a.test_loss) == (
            b.test_acc,
            b.test_loss,
        )
        for key, value in a.records.items():
            np.testing.assert_array_equal(b.records[key], value)
    # the caller wrote the entries (the workers have no disk in common with it)
    assert _files(tmp_path / "here") == _files(tmp_path / "dask")
    # FASHION_OPTIM_EXECUTOR names the same scheduler: the cache serves, nothing trains
    monkeypatch.setenv("FASHION_OPTIM_EXECUTOR", local.scheduler_address)
    assert all(r.from_cache for r in ex.run_many(JOBS, profile="quick"))
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "env"))
    by_env = ex.run_many(JOBS[:1], profile="quick")
    assert not by_env[0].from_cache and by_env[0].history.same_as(here[0].history)


def test_a_lost_dask_worker_is_retried(cluster, tmp_path):
    _, client = cluster
    pids = client.run(os.getpid)  # worker address -> pid
    killed = []

    def kill_the_busy_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for address, tasks in client.processing().items():
                if tasks and address in pids:
                    time.sleep(3)  # mid-run
                    os.kill(pids[address], signal.SIGKILL)
                    killed.append(address)
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_busy_worker, daemon=True)
    killer.start()
    (remote,) = ex.run_many([(SLOW, 0)], profile="quick", executor=client.get_executor())
    killer.join()
    assert killed, "no worker was busy"
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next test
    here = ex.run(SLOW, 0, profile="quick", fresh=True)
    assert remote.history.same_as(here.history)
    _assert_whole_entries_only(Path(os.environ["FASHION_OPTIM_CACHE"]))


@pytest.fixture
def http_server():
    """An HTTP server on localhost (a Dask dashboard's port, say): ``tcp://`` address."""
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_socket():
    """A socket on localhost that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.fixture
def no_workers():
    """A Dask scheduler with no workers, started and closed here."""
    with distributed.LocalCluster(
        n_workers=0, host="127.0.0.1", dashboard_address=":0", silence_logs=logging.ERROR
    ) as local:
        yield local.scheduler_address


#: The connection time-out the tests use (the default is 30 s), and how much longer a
#: bad address may take to be said (a probe, then the client's own wait).
TIMEOUT = 3.0


@pytest.mark.parametrize(
    ("where", "found"),
    [
        ("tcp://127.0.0.1:1", r"nothing listens there \(connection refused\)"),
        ("not an address", r"is not a Dask scheduler address such as 'tcp://HOST:8786'"),
        ("http://127.0.0.1:8787", r"http:// is not a scheme Dask's scheduler listens on"),
        ("tcp://127.0.0.1:99999", r"port 99999 is out of range \(1 to 65535\)"),
        ("http_server", r"an HTTP server, not a Dask scheduler \(it answered 'HTTP/"),
        ("silent_socket", r"accepts connections but never answers as a Dask scheduler"),
        ("no_workers", r"has no workers \(none joined within \d+ s\)"),
    ],
)
def test_a_bad_scheduler_address_fails_before_anything_trains(
    where, found, tmp_cache, monkeypatch, request, capfd
):
    address = request.getfixturevalue(where) if "_" in where else where
    monkeypatch.setenv("FASHION_OPTIM_EXECUTOR", address)
    monkeypatch.setattr(ex.executors, "CONNECT_TIMEOUT", TIMEOUT, raising=False)
    monkeypatch.setattr(
        ex.train.RunTask, "compute", lambda *a, **k: pytest.fail("nothing may train")
    )
    start = time.monotonic()
    with pytest.raises(ex.ExecutorError, match=found) as info:
        ex.run_many(JOBS, profile="quick")
    took = time.monotonic() - start
    message = str(info.value)
    # one message: the address, what is there, and the way out
    assert repr(address) in message and "unset FASHION_OPTIM_EXECUTOR" in message
    assert "\n" not in message and "Traceback" not in capfd.readouterr().err
    assert took < 2 * TIMEOUT + 2, f"took {took:.1f} s"
    assert _files(tmp_cache) == []


def test_the_default_wait_is_stated_and_bounded():
    import inspect

    assert ex.executors.CONNECT_TIMEOUT == 30.0
    default = inspect.signature(ex.dask_executor).parameters["timeout"].default
    assert default == ex.executors.CONNECT_TIMEOUT


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pool_worker(process) -> bool:
    return process.name.startswith("SpawnProcess")  # not the Dask cluster's processes


def test_a_killed_local_worker_is_named_and_stops_the_batch(tmp_cache):
    import multiprocessing

    # the quick run ends within a second of CPU time after its worker's start-up (about
    # 3 s): only the worker training "slow" (about 10 s) can be the one killed well into
    # its training
    jobs = [(SLOW.replace(epochs=12), 0), (TINY.replace(name="quick one"), 1)]
    killed = []

    def kill_a_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            workers = [p for p in multiprocessing.active_children() if _pool_worker(p)]
            busy = [p for p in workers if _cpu_seconds(p.pid) > 6]  # well into training
            if busy:
                victim = max(busy, key=lambda p: _cpu_seconds(p.pid))
                os.kill(victim.pid, signal.SIGKILL)
                killed.append(victim.pid)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    with pytest.raises(ex.ExecutorError) as info:
        ex.run_many(jobs, profile="quick", workers=2)
    killer.join()
    assert killed
    message = str(info.value)
    # the run it was training, by name and seed, and no other
    assert re.match(
        rf"the worker process (training|computing) 'slow' \(seed 0\) died \(pid {killed[0]}, "
        r"exit status -9\)",
        message,
    ), message
    assert "quick one" not in message
    assert "Set FASHION_OPTIM_WORKERS=1" in message
    _assert_whole_entries_only(tmp_cache)
    assert not [p for p in multiprocessing.active_children() if _pool_worker(p)]


def test_an_idle_kept_worker_that_died_is_replaced(tmp_cache):
    """A kept worker killed between two batches (out of memory between two chapters)
    costs the next batch nothing: a fresh pool trains it."""
    from fashion_optim.experiments import executors

    ex.run_many([(TINY, 20), (TINY, 21)], profile="quick", workers=2)
    victim = next(iter(executors._pool.processes()))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(victim) and time.monotonic() < deadline:
        time.sleep(0.05)
    again = ex.run_many([(TINY, 22), (TINY, 23)], profile="quick", workers=2)
    assert [r.seed for r in again] == [22, 23] and not any(r.from_cache for r in again)
    assert victim not in executors._pool.processes()
    assert again[0].history.same_as(ex.run(TINY, seed=22, profile="quick", fresh=True).history)


def test_local_workers_are_kept_from_one_batch_to_the_next(tmp_cache):
    from fashion_optim.experiments import executors

    first = ex.run_many([(TINY, 10), (TINY, 11)], profile="quick", workers=2)
    pids = set(executors._pool.processes())
    second = ex.run_many([(TINY, 12), (TINY, 13)], profile="quick", workers=2)
    assert not any(r.from_cache for r in first + second)
    assert len(pids) == 2 and set(executors._pool.processes()) == pids
    assert all(p.is_alive() for p in executors._pool.processes().values())
    # the same numbers as a run trained here
    here = ex.run(TINY, seed=12, profile="quick", fresh=True)
    assert here.history.same_as(second[0].history)


_INTERRUPTED = textwrap.dedent(
    """
    from fashion_optim import experiments as ex
    from fashion_optim.experiments import Record, Spec
    # long enough that no machine finishes it before the test interrupts it
    slow = Spec("slow", lr=0.05, optimizer_kwargs={"momentum": 0.9}, epochs=200, batch_size=32,
                train_subset=10000, val_subset=300)
    ex.run_many([(slow, 0), (slow.replace(lr=0.02), 1), (slow.replace(lr=0.03), 2)],
                profile="quick", workers=2, progress=False)
    """
)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc")
def test_ctrl_c_stops_every_worker_and_leaves_no_partial_entry(tmp_cache):
    env = {**os.environ, "FASHION_OPTIM_WORKERS": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2:  # the two workers (and a resource tracker)
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        workers = _children(proc.pid)
        while not any(_cpu_seconds(pid) > 3 for pid in workers):  # a worker is mid-run
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no worker started training"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    # every lock the workers made was released, though they were killed
    assert "leaked semaphore" not in err, err[-2000:]
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "a worker outlived Ctrl-C"
    _assert_whole_entries_only(tmp_cache)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc")
def test_workers_end_when_their_parent_is_killed(tmp_cache):
    """SIGKILL of the building process (no finally, no atexit): each kept worker sees its
    parent gone and ends within seconds, writing nothing."""
    env = {**os.environ, "FASHION_OPTIM_WORKERS": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        workers = _children(proc.pid)
        while not any(_cpu_seconds(pid) > 3 for pid in workers):  # a worker is mid-run
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no worker started training"
            time.sleep(0.1)
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "a worker outlived its parent"
    _assert_whole_entries_only(tmp_cache)
