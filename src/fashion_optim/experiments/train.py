"""The cached kind "run": train one :class:`RunConfig` with one seed.

The kind's three parts live here: the configuration its key covers
(:meth:`RunTask.key_config`), the computation a worker runs (:meth:`RunTask.compute`,
which continues a shorter cached run when it can) and how the stored arrays become a
:class:`Result` (:meth:`RunTask.load`); the arrays' names are written and read here only.
This module and what it imports is the code a run's result depends on: its source
(without docstrings) is part of every run's cache key. It knows nothing of caches,
processes or executors, so none of those can change a result.
"""

from __future__ import annotations

import dataclasses
import io
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import pin
from ..batches import Splits, make_splits
from ..device import resolve_device
from ..models import make_model
from ..training import History, Recorder, Trainer, TrainingDivergedError
from .specs import RunConfig, build_optimizer, build_scheduler

__all__ = [
    "DIVERGE_THRESHOLD",
    "TOTAL_DEPENDENT",
    "TRAIN_THREADS",
    "Result",
    "RunTask",
    "environment",
    "get_splits",
    "resumable",
    "schedule_reads_total",
    "threads",
    "train",
]

#: The CPU threads every training run uses (``torch.set_num_threads`` while it trains).
#: Fixed, so that a result does not depend on the machine's number of cores: a sum split
#: over two threads rounds differently.
TRAIN_THREADS = 1

#: A run stops with :class:`~fashion_optim.training.TrainingDivergedError` when a
#: mini-batch loss exceeds this multiple of its first one (about 2.3 for ten classes).
DIVERGE_THRESHOLD = 100.0


@cache
def get_splits() -> Splits:
    """The data splits, loaded and verified once per process."""
    return make_splits()


def environment() -> dict[str, Any]:
    """Versions and hardware of this process, for the record."""
    import torchvision

    device = resolve_device("auto")
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine()
        ),
        "threads": torch.get_num_threads(),
        "pin": pin.status(),  # the kernels this process trained with, checked here
    }


@contextmanager
def threads(n: int = TRAIN_THREADS) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n)``, then restore the caller's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: Schedulers whose shape is laid over the whole run, by the keyword that fixes their
#: length when given (None: always). Their rate at epoch ``e`` depends on the number of
#: epochs, so a longer run is not a continuation of a shorter one.
TOTAL_DEPENDENT: dict[str, str | None] = {"cosine": "T_max", "onecycle": None}


def schedule_reads_total(cfg: RunConfig) -> bool:
    """Whether ``cfg``'s learning-rate schedule depends on its number of epochs (or total
    steps): OneCycleLR, and a cosine over the whole run (no ``T_max`` of its own). A
    constant rate, StepLR, MultiStepLR, ExponentialLR, a LambdaLR of the epoch, cyclic
    rates and ReduceLROnPlateau do not: their first ``k`` epochs are the same in a run of
    any length."""
    if cfg.scheduler is None:
        return False
    name = cfg.scheduler.lower()
    if name not in TOTAL_DEPENDENT:
        return False
    own = TOTAL_DEPENDENT[name]
    return own is None or own not in cfg.scheduler_kwargs


def resumable(cfg: RunConfig) -> bool:
    """Whether a run of ``cfg`` may continue from a cached run of fewer epochs (and
    stores the state to be continued): its schedule does not depend on the total
    (:func:`schedule_reads_total`) and each of its recorders can join its arrays to the
    shorter run's (:attr:`~fashion_optim.training.Recorder.continues`; snapshots, which
    keep where a run starts and ends, cannot)."""
    return not schedule_reads_total(cfg) and all(r.continues for r in cfg.record.recorders())


# --------------------------------------------------------------------------- the result


@dataclass
class Result:
    """One trained configuration at one seed.

    Attributes
    ----------
    config : RunConfig
        The resolved spec.
    seed : int
    history : History
    test_loss, test_acc : float
        On the held-out 10,000 test images, after the last epoch.
    records : dict of str to numpy.ndarray
        What the spec's :class:`~fashion_optim.experiments.Record` asked for; read them
        through :meth:`gradient`, :meth:`gradient_norm`, :meth:`optimizer_state`,
        :meth:`adam_quantiles`, :attr:`snapshots` and :attr:`snapshot_steps`.
    meta : dict
        Wall time, data sizes, environment, cache key; ``"resumed_from"``: the epochs of
        the cached run this one continued (None when it trained from the start).
    test_predictions : numpy.ndarray
        The predicted class of each test image (``uint8 [10000]``, the test set's
        order), for comparisons paired by image (McNemar, a bootstrap over images).
    """

    config: RunConfig
    seed: int
    history: History
    test_loss: float
    test_acc: float
    records: dict[str, np.ndarray]
    meta: dict[str, Any]
    test_predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))

    @property
    def from_cache(self) -> bool:
        """Whether the result was read from the cache (not computed by this call)."""
        return bool(self.meta.get("from_cache"))

    def _record(self, key: str, what: str) -> np.ndarray:
        try:
            return self.records[key]
        except KeyError:
            raise KeyError(
                f"the run recorded no {key!r}; it has {sorted(self.records)}. Ask for it in "
                f"the spec's Record ({what})."
            ) from None

    def gradient(self, layer: str) -> np.ndarray:
        """The recorded gradient elements of ``layer``, ``[steps, k]``."""
        return self._record(f"grad/{layer}", "gradients=")

    def gradient_norm(self, layer: str) -> np.ndarray:
        """The L2 norm of ``layer``'s whole gradient at each step, ``[steps]``."""
        return self._record(f"grad_norm/{layer}", "gradients=")

    def optimizer_state(self, key: str, layer: str) -> np.ndarray:
        """The recorded elements of the optimizer's state ``key`` (e.g. ``"exp_avg"``,
        ``"momentum_buffer"``) for ``layer``, ``[steps, k]``."""
        return self._record(f"state/{key}/{layer}", "state= and state_keys=")

    def adam_quantiles(self, kind: str, layer: str) -> np.ndarray:
        """Adam's per-layer quantiles (``kind``: ``"adapted"`` or ``"rate"``) of
        ``layer``, ``[records, levels]``; see :attr:`adam_quantile_levels` and
        :attr:`adam_quantile_steps`."""
        return self._record(f"adam_q/{kind}/{layer}", "layer_quantiles=")

    @property
    def adam_quantile_levels(self) -> np.ndarray:
        """The quantile levels of :meth:`adam_quantiles`' columns."""
        return self._record("adam_q/levels", "layer_quantiles=")

    @property
    def adam_quantile_steps(self) -> np.ndarray:
        """The optimizer step of each row of :meth:`adam_quantiles`."""
        return self._record("adam_q/steps", "layer_quantiles=")

    @property
    def snapshots(self) -> np.ndarray:
        """Parameter snapshots, ``[snapshots, P]`` (the first is the initial point, the
        last the final weights)."""
        return self._record("params", "snapshot_every=")

    @property
    def snapshot_steps(self) -> np.ndarray:
        """The optimizer step of each of :attr:`snapshots`."""
        return self._record("param_steps", "snapshot_every=")


# --------------------------------------------------------------------------- training


def _train(
    cfg: RunConfig,
    seed: int,
    *,
    progress: bool | None = None,
    extra_recorders: Sequence[Recorder] = (),
    resume: bytes | None = None,
    resume_records: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any], TrainingDivergedError | None]:
    """Train (or continue from ``resume``, a state :meth:`RunTask.compute` stored, whose
    run recorded ``resume_records``) and return the entry's arrays and metadata, and the
    divergence that stopped it, if any."""
    with threads(TRAIN_THREADS):
        splits = get_splits()
        train_loader = splits.loader("train", cfg.batch_size, seed=seed, subset=cfg.train_subset)
        val = splits.loader("val", 1000, subset=cfg.val_subset)
        test = splits.loader("test", 1000)
        torch.manual_seed(seed)  # same seed, same initial weights, whatever the optimizer
        model = make_model("lenet", dropout=cfg.dropout)
        optimizer = build_optimizer(cfg, model.parameters())
        scheduler = build_scheduler(cfg, optimizer, len(train_loader))
        recorders = cfg.record.recorders()
        trainer = Trainer(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            scheduler,
            seed=seed,
            recorders=[*recorders, *extra_recorders],
            progress=progress,
            diverge_threshold=DIVERGE_THRESHOLD,
        )
        resumed_from = None
        if resume is not None:
            # the model, the optimizer's and scheduler's state, the history, the step
            # counters and torch's generator; the data order of epoch e is a function of
            # (seed, e) (ArrayLoader.set_epoch), so it needs no state of its own
            trainer.load_state_dict(torch.load(io.BytesIO(resume), weights_only=True))
            resumed_from = trainer.epoch
        start = time.perf_counter()
        error = None
        try:
            trainer.fit(train_loader, val, epochs=cfg.epochs - trainer.epoch)
        except TrainingDivergedError as exc:
            error = exc
        arrays: dict[str, np.ndarray] = {
            f"history/{k}": np.asarray(v, dtype=np.float64)
            for k, v in trainer.history.to_dict().items()
        }
        meta: dict[str, Any] = {
            "seed": seed,
            "outcome": "finished" if error is None else "diverged",
            "resumed_from": resumed_from,
            "train_size": train_loader.dataset_size,
            "val_size": val.dataset_size,
            "steps_per_epoch": len(train_loader),
            "environment": environment(),
        }
        if error is not None:
            meta["diverged"] = {
                k: getattr(error, k) for k in ("epoch", "step", "loss", "lr", "limit")
            }
            meta["wall_time"] = time.perf_counter() - start
            return arrays, meta, error
        test_loss, test_acc, predictions = trainer.evaluate_predictions(test)
        arrays["predictions/test"] = predictions
        for rec in recorders:
            # a continued run's records: the shorter run's rows, then this fit's
            got = rec.result() if resume is None else rec.continued(resume_records or {})
            arrays.update({f"record/{k}": v for k, v in got.items()})
        if resumable(cfg):
            buffer = io.BytesIO()
            torch.save(trainer.state_dict(), buffer)
            arrays["resume/state"] = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
        meta.update(test_loss=test_loss, test_acc=test_acc)
        meta["wall_time"] = time.perf_counter() - start
        return arrays, meta, None


def train(
    cfg: RunConfig,
    seed: int,
    *,
    progress: bool | None = None,
    extra_recorders: Sequence[Recorder] = (),
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train ``cfg`` with ``seed`` on :data:`TRAIN_THREADS` thread from the start; return
    the arrays and the metadata (test metrics, sizes, wall time) that a cache entry holds.

    ``extra_recorders`` watch the run without changing it (a progress reporter). A run
    that diverges raises :class:`~fashion_optim.training.TrainingDivergedError`.
    """
    arrays, meta, error = _train(cfg, seed, progress=progress, extra_recorders=extra_recorders)
    if error is not None:
        raise error
    return arrays, meta


# --------------------------------------------------------------------------- the kind


def _diverged_error(meta: Mapping[str, Any], history: History) -> TrainingDivergedError:
    d = meta["diverged"]
    error = TrainingDivergedError(d["epoch"], d["step"], d["loss"], d["lr"], d["limit"])
    error.history = history  # what the run did before it stopped
    error.meta = dict(meta)
    return error


@dataclass(frozen=True)
class RunTask:
    """The kind ``"run"``: one resolved configuration at one seed.

    ``resume`` (filled in by :meth:`plan`, never part of the key) is the stored state of
    the longest shorter cached run of the same configuration.
    """

    kind = "run"
    cfg: RunConfig
    seed: int
    name: str = ""
    steps_per_epoch: int = 1
    resume: bytes | None = field(default=None, repr=False, compare=False)
    resume_epochs: int = 0
    #: what the continued run recorded (by recorder name), joined to this run's records
    resume_records: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name!r} (seed {self.seed})"

    def key_config(self) -> dict[str, Any]:
        """What the entry is keyed on: the resolved spec, the seed, the threads."""
        return {**self.cfg.to_dict(), "seed": self.seed, "threads": TRAIN_THREADS}

    @property
    def cost(self) -> int:
        """The optimizer steps left to take."""
        return (self.cfg.epochs - self.resume_epochs) * self.steps_per_epoch

    def plan(
        self, lookup: Callable[[str, Mapping[str, Any]], tuple[dict, dict] | None]
    ) -> list[RunTask] | tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What to compute: this run continued from the longest shorter cached run of the
        same configuration when :func:`resumable` (a shorter run that diverged gives this
        one's entry at once: the longer run follows the same steps up to the same
        failure), else this run from the start."""
        if not resumable(self.cfg):
            return [self]
        for epochs in range(self.cfg.epochs - 1, 0, -1):
            found = lookup(self.kind, {**self.key_config(), "epochs": epochs})
            if found is None:
                continue
            arrays, meta = found
            if meta.get("outcome") == "diverged":
                return arrays, {**meta, "config": self.key_config()}
            if "resume/state" in arrays:
                state = arrays["resume/state"].tobytes()
                records = {
                    k.removeprefix("record/"): np.asarray(v)
                    for k, v in arrays.items()
                    if k.startswith("record/")
                }
                return [
                    dataclasses.replace(
                        self, resume=state, resume_epochs=epochs, resume_records=records
                    )
                ]
        return [self]

    def compute(
        self, *, progress: bool | None = None, extra_recorders: Sequence[Recorder] = ()
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Train (in a worker); a divergence is a result, not an error."""
        arrays, meta, _ = _train(
            self.cfg,
            self.seed,
            progress=progress,
            extra_recorders=extra_recorders,
            resume=self.resume,
            resume_records=self.resume_records,
        )
        return arrays, meta

    def merge(self, parts: Sequence[tuple[dict, dict]]) -> tuple[dict, dict]:
        return parts[0]

    def load(
        self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
    ) -> Result | TrainingDivergedError:
        """The :class:`Result`, or for a run that diverged its
        :class:`~fashion_optim.training.TrainingDivergedError` carrying ``history`` (the
        history up to where it stopped) and ``meta``."""
        history = History.from_dict(
            {
                k.removeprefix("history/"): v.tolist()
                for k, v in arrays.items()
                if k.startswith("history/")
            }
        )
        if meta.get("outcome") == "diverged":
            return _diverged_error(meta, history)
        records = {
            k.removeprefix("record/"): v for k, v in arrays.items() if k.startswith("record/")
        }
        return Result(
            self.cfg,
            self.seed,
            history,
            meta["test_loss"],
            meta["test_acc"],
            records,
            dict(meta),
            np.asarray(arrays["predictions/test"]),
        )
