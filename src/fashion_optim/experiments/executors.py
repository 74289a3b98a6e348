"""Where the cached computations run: here, in local worker processes, or on a Dask cluster.

:func:`train_all` computes a batch of parts (training runs, range tests, rows of a loss
surface: see :mod:`~fashion_optim.experiments.kinds`), the longest first, on any
:class:`concurrent.futures.Executor`:

- by default, a local :class:`~concurrent.futures.ProcessPoolExecutor` (spawn context)
  of :func:`default_workers` processes, with one progress bar over the mini-batches of
  every run; the processes are kept from one batch to the next (a site build asks for
  about ten batches, and each new process spends seconds importing torch and loading
  the data), and stopped after a failure, on Ctrl-C and when this process exits;
- a Dask cluster when ``FASHION_OPTIM_EXECUTOR`` names its scheduler (through
  ``distributed.Client(address).get_executor()``), with a progress bar over runs;
- any executor the caller passes.

Workers compute and return; they never touch the cache (the caller writes it), so they
need no shared disk. Each run trains on one thread, so it gives the same bits whichever
process or machine of the same kind trained it.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import itertools
import multiprocessing
import os
import re
import signal
import socket
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from functools import cache
from typing import Any

from tqdm.auto import tqdm

from ..device import resolve_device
from ..training import Recorder, Trainer
from .train import TRAIN_THREADS

__all__ = [
    "ExecutorError",
    "dask_executor",
    "default_workers",
    "executor_from_env",
    "train_all",
    "worker_cpu_time",
]

ENV_WORKERS = "FASHION_OPTIM_WORKERS"
ENV_EXECUTOR = "FASHION_OPTIM_EXECUTOR"

#: One part to compute (:class:`~fashion_optim.experiments.kinds.Part`): it has
#: ``compute(**kwargs)``, ``cost`` and ``label``.
Job = Any
#: What computing a part gives: ``("ok", (arrays, meta))``, the warnings the worker saw,
#: as ``(category, message)`` pairs, and the CPU seconds it took in its worker.
Outcome = tuple[str, Any, list[tuple[type[Warning], str]], float]

# CPU seconds of the parts that finished in other processes (local workers, Dask).
_worker_cpu = 0.0


def worker_cpu_time() -> float:
    """CPU seconds that the parts computed for this process in other processes (local
    worker processes, a Dask cluster) took there, since this process started; with this
    process's own CPU time, what a build's page cost."""
    return _worker_cpu


def _count(outcome: Outcome) -> Outcome:
    global _worker_cpu
    _worker_cpu += outcome[3]
    return outcome


class ExecutorError(RuntimeError):
    """The executor cannot be used (a bad or unreachable scheduler address), or a worker
    failed or died; the message names the run."""


#: What one local worker (or one loss-surface thread's share of a build) may hold at its
#: peak, in bytes: the data, the model, a batch's activations (measured: about 0.8 GiB
#: for a worker, 1.3 GB with the test set's evaluation).
WORKER_MEMORY = int(1.3e9)
_said_capped: set[tuple[int, int]] = set()


def _available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux's ``MemAvailable``), or None
    when it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _memory_cap() -> int:
    """How many workers the memory available now can hold (:data:`WORKER_MEMORY` each),
    at least 1; a large number when the memory cannot be read."""
    available = _available_memory()
    return 1 << 16 if available is None else max(1, available // WORKER_MEMORY)


def default_workers() -> int:
    """How many runs train at once locally (and how many threads share a loss surface):
    ``FASHION_OPTIM_WORKERS``, or the CPU cores this process may use, at most 8; 1 on a
    GPU, where the runs train one after the other.

    Either is capped at what the memory available now holds (``_memory_cap``): each
    worker holds the data, about 1.3 GB at its peak. A cap below ``FASHION_OPTIM_WORKERS``
    is said in a warning (once per value).
    """
    env = os.environ.get(ENV_WORKERS)
    if env is not None:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(
                f"{ENV_WORKERS} must be an integer >= 1, got {env!r}; set it to 1 to train "
                "one run at a time, or unset it to use every core."
            )
        cap = _memory_cap()
        if value > cap:
            if (value, cap) not in _said_capped:
                _said_capped.add((value, cap))
                warnings.warn(
                    f"{ENV_WORKERS}={value} asks for more workers than memory holds: "
                    f"{(_available_memory() or 0) / 2**30:.1f} GiB is available and each "
                    f"worker needs about {WORKER_MEMORY / 2**30:.1f} GiB, so {cap} are "
                    f"used. Set {ENV_WORKERS} to {cap} or less to silence this.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return cap
        return value
    if resolve_device("auto").type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 8, _memory_cap()))


# --------------------------------------------------------------------------- Dask

#: How long :func:`executor_from_env` waits for a scheduler to answer and for its first
#: worker, in seconds: a bad address ends the build within about this time.
CONNECT_TIMEOUT = 30.0

_ADDRESS = re.compile(
    r"(?:(?P<scheme>[A-Za-z][\w+.\-]*)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[\w.\-]+):(?P<port>\d+)/?"
)
#: The schemes a Dask scheduler listens on (``inproc`` has no host and port).
_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def _parse_address(address: str, fix: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a scheduler address, or :class:`ExecutorError`."""
    match = _ADDRESS.fullmatch(address)
    if match is None:
        raise ExecutorError(
            f"{ENV_EXECUTOR}={address!r} is not a Dask scheduler address such as "
            f"'tcp://HOST:8786'; {fix}."
        )
    scheme = (match["scheme"] or "tcp").lower()
    host, port = match["host"].strip("[]"), int(match["port"])
    if scheme not in _SCHEMES:
        hint = " (a Dask dashboard is served over http, its scheduler over tcp)"
        raise ExecutorError(
            f"{ENV_EXECUTOR}={address!r}: {scheme}:// is not a scheme Dask's scheduler "
            f"listens on ({', '.join(s + '://' for s in _SCHEMES)})"
            f"{hint if scheme.startswith('http') else ''}; {fix}."
        )
    if not 1 <= port <= 65535:
        raise ExecutorError(
            f"{ENV_EXECUTOR}={address!r}: port {port} is out of range (1 to 65535); {fix}."
        )
    return scheme, host, port


def _probe(host: str, port: int, timeout: float, speaks_first: bool) -> str | None:
    """What answers at ``host:port`` when it is not a Dask scheduler (None when it may
    be one), within about ``timeout`` seconds.

    A Dask scheduler on plain tcp greets each connection at once (its handshake names
    ``compression`` and ``pickle-protocol``); ``distributed`` itself would wait for that
    greeting for ever from a service that never sends it.
    """
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        return f"the host name {host!r} cannot be resolved ({exc.strerror})"
    except ConnectionRefusedError:
        return "nothing listens there (connection refused)"
    except TimeoutError:
        return f"no answer within {timeout:g} s (the host is down, or a firewall drops it)"
    except OSError as exc:
        return f"it cannot be reached ({exc.strerror or exc})"
    with sock:
        if not speaks_first:
            return None
        # (the greeting may come in several pieces: read until it is recognised)
        wait_until = time.monotonic() + max(0.1, (deadline - time.monotonic()) / 2)
        greeting, closed = b"", False
        while b"compression" not in greeting and len(greeting) < 4096:
            sock.settimeout(max(0.01, wait_until - time.monotonic()))
            try:
                piece = sock.recv(4096)
            except TimeoutError:
                break
            except OSError as exc:
                return f"the connection was dropped ({exc.strerror or exc})"
            if not piece:
                closed = True
                break
            greeting += piece
        if b"compression" in greeting:
            return None
        if greeting:
            return f"a service that is not a Dask scheduler (it sent {greeting[:24]!r})"
        if closed:
            return "a service that closed the connection without a word"
        try:  # silent so far: is it a web server (a dashboard's port, say)?
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.sendall(b"GET / HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
            reply = sock.recv(64)
        except OSError:
            reply = b""
    if reply.startswith(b"HTTP/"):
        status = reply.split(b"\r\n", 1)[0].decode("ascii", "replace")
        return f"an HTTP server, not a Dask scheduler (it answered {status!r})"
    return "a service that accepts connections but never answers as a Dask scheduler does"


@cache
def dask_executor(address: str, timeout: float = CONNECT_TIMEOUT) -> cf.Executor:
    """A :class:`concurrent.futures.Executor` on the Dask scheduler at ``address`` (e.g.
    ``tcp://10.0.0.5:8786``), connected once per process.

    Raises :class:`ExecutorError`, within about ``timeout`` seconds (twice that at most),
    naming the address, what was found there and the fix: when the address is
    malformed (a scheme Dask does not speak, a port out of range), when nothing or
    something other than a Dask scheduler answers there, when the scheduler has no
    worker within ``timeout`` seconds, and when ``distributed`` is not installed.
    """
    address = address.strip()
    fix = f"correct it, or unset {ENV_EXECUTOR} to train in local processes"
    scheme, host, port = _parse_address(address, fix)
    try:
        import distributed
    except ImportError:
        raise ExecutorError(
            f"{ENV_EXECUTOR} names a Dask scheduler ({address}), but the package "
            "'distributed' is not installed: pip install 'fashion-optim[dask]', or unset "
            f"{ENV_EXECUTOR}."
        ) from None
    start = time.monotonic()
    found = _probe(host, port, timeout, speaks_first=scheme == "tcp")
    if found is not None:
        raise ExecutorError(
            f"no Dask scheduler at {address!r} ({ENV_EXECUTOR}): {found}. Start the "
            f"scheduler there (`dask scheduler --port {port}`), {fix}."
        )
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # distributed's errors come in many types
        raise ExecutorError(
            f"cannot reach the Dask scheduler at {address!r} ({ENV_EXECUTOR}): "
            f"{type(exc).__name__}: {exc}. Start the scheduler there (`dask scheduler`), "
            f"{fix}."
        ) from None
    left = max(1.0, timeout - (time.monotonic() - start))
    try:
        client.wait_for_workers(1, timeout=left)
    except Exception:  # distributed's WorkerStartTimeoutError, a TimeoutError
        client.close()
        raise ExecutorError(
            f"the Dask scheduler at {address!r} ({ENV_EXECUTOR}) has no workers (none "
            f"joined within {left:.0f} s), so nothing could train. Start workers "
            f"(`dask worker {address}`), or unset {ENV_EXECUTOR} to train in local "
            "processes."
        ) from None
    return client.get_executor()


def executor_from_env() -> cf.Executor | None:
    """The Dask executor that ``FASHION_OPTIM_EXECUTOR`` names, or None when it is unset
    or empty; raises :class:`ExecutorError` within about :data:`CONNECT_TIMEOUT`
    seconds when it cannot be used."""
    address = os.environ.get(ENV_EXECUTOR, "").strip()
    return dask_executor(address, CONNECT_TIMEOUT) if address else None


# --------------------------------------------------------------------------- workers

# Set in each local worker process by _init_worker: where to send progress.
_progress_queue: Any = None


def _init_worker(queue: Any) -> None:
    global _progress_queue
    _progress_queue = queue
    import torch

    torch.set_num_threads(TRAIN_THREADS)
    # tqdm's first bar would make a multiprocessing lock, a named semaphore that a worker
    # killed later (by the caller on Ctrl-C, or by the system) could never release: the
    # resource tracker would then warn of a "leaked semaphore". A worker draws no bar
    # across processes, so a thread lock does.
    tqdm.set_lock(threading.RLock())
    # Ctrl-C is the caller's to handle: it stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A kept worker outlives its batch: it must not outlive its parent.
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class _Ticker(Recorder):
    """Sends a worker's progress (the optimizer steps taken in this fit, which continues
    a resumed run) now and then."""

    def __init__(self, send: Callable[[int], None], every: int = 20) -> None:
        self.send, self.every, self.start = send, every, 0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.start = trainer.step

    def after_step(self, trainer: Trainer) -> None:
        if trainer.step % self.every == 0 or trainer.is_last_step:
            self.send(trainer.step - self.start)


def run_job(part: Job, job: Any = -1) -> Outcome:
    """Compute one part in a worker (local or remote) and return its :data:`Outcome`;
    ``job`` labels its progress messages."""
    queue = _progress_queue
    extra: list[Recorder] = []
    if queue is not None:
        queue.put(("start", job, os.getpid()))
        extra.append(_Ticker(lambda step: queue.put(("step", job, step))))
    cpu = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        entry = part.compute(progress=False, extra_recorders=extra)
    said = [(w.category, str(w.message)) for w in caught]
    return "ok", entry, said, time.process_time() - cpu


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start worker processes without re-running the caller's script in them.

    A spawned process re-imports the parent's ``__main__`` from its file; a gallery
    script (or a reader's) has no ``if __name__ == "__main__"`` guard, so each worker
    would run the whole chapter again. A stand-in ``__main__`` without a file, as an
    interactive session has, is seen while the workers start.
    """
    real = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = real


def _bar(total: int, desc: str, unit: str, progress: bool | None) -> tqdm:
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=(None if progress is None else not progress),
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )


def train_all(
    jobs: Sequence[Job],
    *,
    executor: cf.Executor | None = None,
    workers: int = 1,
    progress: bool | None = None,
    on_done: Callable[[int, Outcome], None],
) -> None:
    """Compute ``jobs`` (parts: see :data:`Job`) and call ``on_done(i, outcome)`` in this
    process as each one finishes (the caller saves it there and then).

    The parts start longest first (by their ``cost``: optimizer steps, grid points), so
    that a batch does not end on one long part with the other workers idle. With
    ``executor`` None: in local worker processes (``workers`` of them), or here when
    ``workers`` is 1. A worker that raises or dies raises :class:`ExecutorError` naming
    the part; Ctrl-C cancels what has not started and stops every local worker. Nothing
    is half-done: ``on_done`` is called for whole parts only.
    """
    steps = [int(job.cost) for job in jobs]
    order = sorted(range(len(jobs)), key=lambda i: -steps[i])  # longest first
    if executor is None and min(workers, len(jobs)) <= 1:
        for i in order:
            entry = jobs[i].compute(progress=progress)
            on_done(i, ("ok", entry, [], 0.0))  # this process's CPU, counted as its own
        return
    if executor is not None:
        _on_executor(executor, jobs, order, progress, on_done)
    else:
        _on_local_pool(jobs, order, steps, min(workers, len(jobs)), progress, on_done)


def _failure(job: Job, exc: BaseException, where: str) -> ExecutorError:
    return ExecutorError(f"computing {job.label} failed {where}: {type(exc).__name__}: {exc}")


def _on_executor(executor, jobs, order, progress, on_done) -> None:
    """Any executor (Dask's among them): one progress step per finished run."""
    futures = {executor.submit(run_job, jobs[i], i): i for i in order}
    bar = _bar(len(jobs), f"computing {len(jobs)} parts", "part", progress)
    try:
        for future in cf.as_completed(futures):
            i = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # a worker's error, or a worker lost for good
                raise _failure(jobs[i], exc, "on the executor") from exc
            on_done(i, _count(outcome))
            bar.update()
    finally:
        for future in futures:
            future.cancel()
        bar.close()


class _LocalPool:
    """Worker processes kept from one batch to the next (each has imported torch and
    loaded the data once), their progress queue, and a thread that hands each message to
    the batch running now."""

    def __init__(self, n_workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.n_workers = n_workers
        self.environ = dict(os.environ)  # what the workers inherit (the data's folder...)
        self.queue = context.Queue()
        self.pool = cf.ProcessPoolExecutor(
            n_workers, mp_context=context, initializer=_init_worker, initargs=(self.queue,)
        )
        self.lock = threading.Lock()
        self.handler: Callable[[tuple[str, Any, int]], None] | None = None
        self.listener = threading.Thread(target=self._listen, daemon=True)
        self.listener.start()

    def _listen(self) -> None:
        while (message := self.queue.get()) is not None:
            with self.lock:
                if self.handler is not None:
                    self.handler(message)

    def processes(self) -> dict[int, Any]:
        return dict(getattr(self.pool, "_processes", None) or {})

    def broken(self) -> bool:
        """Whether a worker has died (the pool would fail the next batch at once)."""
        if getattr(self.pool, "_broken", False):
            return True
        return any(proc.exitcode is not None for proc in self.processes().values())

    def close(self, kill: bool = False) -> None:
        """Stop the workers (at once with ``kill``) and the listener."""
        if kill:
            for proc in self.processes().values():
                if proc.is_alive():
                    proc.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.queue.put(None)
        self.listener.join(timeout=5)
        self.queue.close()


_pool: _LocalPool | None = None
_batches = itertools.count()


def _local_pool(n_workers: int) -> _LocalPool:
    """The kept pool of ``n_workers`` processes, started on first use, and again after a
    failure, a change of size, a change of the environment the workers inherited, or the
    death of a worker while it was idle (killed, or out of memory between two batches);
    closed when this process exits."""
    global _pool
    if _pool is not None and _pool.broken():
        _discard_pool(kill=True)
    if _pool is not None and (_pool.n_workers, _pool.environ) != (n_workers, dict(os.environ)):
        _discard_pool()
    if _pool is None:
        _pool = _LocalPool(n_workers)
    return _pool


@atexit.register
def _discard_pool(kill: bool = False) -> None:
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.close(kill=kill)


def _on_local_pool(jobs, order, steps, n_workers, progress, on_done) -> None:
    """Local worker processes, with one bar over every run's mini-batches."""
    local = _local_pool(n_workers)
    batch = next(_batches)
    started: dict[int, int] = {}  # job -> pid of the worker training it, until it is done
    bar = _bar(
        sum(steps), f"computing {len(jobs)} parts in {n_workers} processes", "step", progress
    )
    seen = [0] * len(jobs)

    def handle(message: tuple[str, Any, int]) -> None:  # under local.lock
        kind, (of_batch, job), value = message
        if of_batch != batch:  # a late tick of an earlier batch
            return
        if kind == "start":
            started[job] = value
        elif job in started:  # not a late tick of a run already done
            bar.update(value - seen[job])
            seen[job] = value

    with local.lock:
        local.handler = handle
    pool = local.pool
    processes: dict[int, Any] = {}
    futures: dict[cf.Future, int] = {}
    finished: set[int] = set()
    clean = False
    try:
        with _main_module_hidden():
            for i in order:
                futures[pool.submit(run_job, jobs[i], (batch, i))] = i
                processes.update(local.processes())
        for future in cf.as_completed(futures):
            i = futures[future]
            try:
                outcome = future.result()
            except BrokenProcessPool as exc:
                # the pool's own thread reaps its workers: let it finish before their
                # exit statuses are read (reading them beside it races it)
                pool.shutdown(wait=True, cancel_futures=True)
                unfinished = set(futures.values()) - finished
                with local.lock:
                    running = dict(started)
                raise _died(jobs, running, unfinished, processes) from exc
            except Exception as exc:
                raise _failure(jobs[i], exc, "in a worker process") from exc
            with local.lock:
                bar.update(steps[i] - seen[i])
                seen[i] = steps[i]
                started.pop(i, None)
            on_done(i, _count(outcome))
            finished.add(i)
        clean = True
    finally:
        with local.lock:
            local.handler = None
        if not clean:  # interrupted or failed: stop every worker now, start afresh next time
            for future in futures:
                future.cancel()
            _discard_pool(kill=True)
        bar.close()


def _died(
    jobs: Sequence[Job], started: dict[int, int], unfinished: set[int], processes: dict[int, Any]
) -> ExecutorError:
    """Name the run whose worker died (a kill, a crash, running out of memory)."""
    for proc in processes.values():  # reaped by the pool's shutdown; this only waits
        proc.join(timeout=5)
    codes = {pid: proc.exitcode for pid, proc in processes.items()}
    dead = [pid for pid, code in codes.items() if code not in (None, 0, -signal.SIGTERM)]
    advice = f"the other runs of the batch were stopped. Set {ENV_WORKERS}=1 if memory is short."
    for pid in dead:
        running = [job for job, p in started.items() if p == pid]
        if running:
            return ExecutorError(
                f"the worker process computing {jobs[running[-1]].label} died (pid {pid}, "
                f"exit status {codes[pid]}); {advice}"
            )
    which = f" (pid {dead[0]}, exit status {codes[dead[0]]})" if dead else ""
    # it died before its first message reached this process
    names = ", ".join(jobs[j].label for j in sorted(unfinished))
    return ExecutorError(
        f"a worker process died{which} before it said which part it was computing; the "
        f"parts not finished: {names}; {advice}"
    )
