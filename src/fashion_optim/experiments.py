"""Declarative experiments, profiles, and a result cache on disk.

A :class:`Spec` says what to train; :func:`run` trains it for one seed (or loads the
result from the cache) and :func:`run_seeds` does it for the profile's seeds and reports
mean ± std. The gallery and the note call these, so a configuration trains once per build
whichever page asks first.

Profiles (environment variable ``FASHION_OPTIM_PROFILE``):

``full`` (default)
    The published note: the whole 50,000-image training split, 3 seeds.
``quick``
    For CI and a first look: a stratified subset, fewer epochs, 2 seeds, the same code.

The cache (environment variable ``FASHION_OPTIM_CACHE``, default a per-user cache
folder) keys each entry on the resolved spec, the seed, a hash of the source files that
training depends on, torch's version and the data checksum. Entries are written
atomically; an unreadable one is reported and recomputed, never trusted.

Training always runs on :data:`TRAIN_THREADS` (one) CPU thread, because the number of
threads changes the numbers (a sum split over two threads rounds differently), and a
result must not depend on the machine that built it. The cores are used by training
several runs at once instead: :func:`run_many` (and :func:`run_seeds` and
:func:`run_specs`, which call it) trains the runs the cache lacks in worker processes,
:func:`default_workers` of them (environment variable ``FASHION_OPTIM_WORKERS``). A run
gives the same result, bit for bit, whichever process trained it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import io
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch
from torch import nn
from tqdm.auto import tqdm

from . import lr as lr_module
from .data import Splits, make_splits
from .models import make_model
from .training import (
    GradientRecorder,
    History,
    OptimizerStateRecorder,
    ParameterRecorder,
    Recorder,
    Trainer,
    TrainingDivergedError,
    atomic_write,
    resolve_device,
)

__all__ = [
    "DIVERGE_THRESHOLD",
    "LR_LAMBDAS",
    "NAMED",
    "NOTE_RECORD",
    "OPTIMIZERS",
    "PROBES",
    "PROFILES",
    "SHORT_BUDGET",
    "TRAIN_THREADS",
    "PerProfile",
    "Profile",
    "Record",
    "Result",
    "SeedResults",
    "Spec",
    "cache_dir",
    "cache_key",
    "cached",
    "clear_cache",
    "current_profile",
    "default_workers",
    "environment",
    "full_budget_onecycle",
    "get_splits",
    "run",
    "run_many",
    "run_range_test",
    "run_seeds",
    "run_specs",
    "schedule_specs",
    "source_hash",
]

_ENV_PROFILE = "FASHION_OPTIM_PROFILE"
_ENV_CACHE = "FASHION_OPTIM_CACHE"
_ENV_WORKERS = "FASHION_OPTIM_WORKERS"

#: The CPU threads every training run uses (``torch.set_num_threads`` while it trains).
#: Fixed, so that a result does not depend on the machine's number of cores.
TRAIN_THREADS = 1

# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """How big the runs are: seeds, data sizes and an epoch budget.

    Attributes
    ----------
    name : str
    seeds : tuple of int
        The seeds every configuration is trained with.
    train_subset, val_subset : int or None
        Stratified subsets of the training and validation splits (None: all of it).
    """

    name: str
    seeds: tuple[int, ...]
    train_subset: int | None
    val_subset: int | None
    description: str = ""


#: The profiles by name (see the module documentation).
PROFILES: dict[str, Profile] = {
    "full": Profile(
        "full", (0, 1, 2), None, None, "the published note: 50,000 training images, 3 seeds"
    ),
    "quick": Profile(
        "quick", (0, 1), 10000, 2000, "CI and a first look: 10,000 training images, 2 seeds"
    ),
}


def current_profile(name: str | None = None) -> Profile:
    """The profile named, or by ``FASHION_OPTIM_PROFILE`` (default ``full``)."""
    name = name or os.environ.get(_ENV_PROFILE) or "full"
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r} (from {_ENV_PROFILE} or the argument); valid "
            f"choices: {sorted(PROFILES)}."
        ) from None


@dataclass(frozen=True)
class PerProfile:
    """A value that differs per profile, e.g. ``PerProfile(full=15, quick=2)``."""

    full: Any
    quick: Any

    def __call__(self, profile: Profile) -> Any:
        return getattr(self, profile.name)


def _resolve(value: Any, profile: Profile) -> Any:
    return value(profile) if isinstance(value, PerProfile) else value


# --------------------------------------------------------------------------- specs

#: Torch's optimizers by name (``scratch_sgd`` and ``scratch_adam`` name the package's
#: from-scratch teaching versions).
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


def _scratch_optimizers() -> dict[str, Callable[..., torch.optim.Optimizer]]:
    from . import optimizers

    return {"scratch_sgd": optimizers.SGD, "scratch_adam": optimizers.Adam}


def _linear_decay(epoch: int) -> float:
    return max(0.0, 1.0 - epoch / 20.0)


def _warmup_then_inverse_sqrt(epoch: int) -> float:
    return min(1.0, (epoch + 1) / 2.0) / max(1.0, (epoch + 1) / 2.0) ** 0.5


def _exp_095(epoch: int) -> float:
    return 0.95**epoch


#: Named multiplicative factors for ``LambdaLR`` (a spec must stay serialisable).
LR_LAMBDAS: dict[str, Callable[[int], float]] = {
    "linear_decay_20": _linear_decay,
    "warmup_inverse_sqrt": _warmup_then_inverse_sqrt,
    "exp_0.95": _exp_095,
}


@dataclass(frozen=True)
class Record:
    """What to record while training.

    Attributes
    ----------
    gradients : mapping
        Parameter name to flat indices (or None for the whole tensor): per-step gradients
        (and the layer's gradient norm).
    state : mapping
        Parameter name to flat indices: per-step optimizer state (``state_keys``).
    state_keys : tuple of str, optional
        e.g. ``("exp_avg", "exp_avg_sq")``; default: every tensor entry.
    snapshot_every : int or None
        Snapshot all parameters every this many steps (for trajectories).
    """

    gradients: Mapping[str, Sequence[int] | None] = field(default_factory=dict)
    state: Mapping[str, Sequence[int] | None] = field(default_factory=dict)
    state_keys: tuple[str, ...] | None = None
    snapshot_every: int | None = None

    def recorders(self) -> list:
        out: list = []
        if self.gradients:
            out.append(GradientRecorder(self.gradients))
        if self.state:
            out.append(OptimizerStateRecorder(self.state, self.state_keys))
        if self.snapshot_every:
            out.append(ParameterRecorder(self.snapshot_every))
        return out


@dataclass(frozen=True)
class Spec:
    """One training configuration. Any field may be a :class:`PerProfile`.

    Attributes
    ----------
    name : str
        A label (not part of the cache key: two names for one configuration share it).
    optimizer : str
        A key of :data:`OPTIMIZERS` (or ``scratch_sgd`` / ``scratch_adam``).
    lr : float
    optimizer_kwargs : mapping
        e.g. ``{"momentum": 0.9, "nesterov": True}``.
    scheduler : str or None
        A name understood by :func:`fashion_optim.lr.make_scheduler`.
    scheduler_kwargs : mapping
        For ``"lambda"``, ``lr_lambda`` names an entry of :data:`LR_LAMBDAS`.
    epochs, batch_size : int
    dropout : float
    record : Record
    train_subset, val_subset : int or None, optional
        Override the profile's subsets.
    """

    name: str
    optimizer: str = "sgd"
    lr: Any = 0.01
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    scheduler: str | None = None
    scheduler_kwargs: Mapping[str, Any] = field(default_factory=dict)
    epochs: Any = 10
    batch_size: int = 128
    dropout: float = 0.0
    record: Record = field(default_factory=Record)
    train_subset: Any = "profile"
    val_subset: Any = "profile"

    def replace(self, **changes: Any) -> Spec:
        return dataclasses.replace(self, **changes)

    def resolve(self, profile: Profile | str | None = None) -> dict[str, Any]:
        """The concrete configuration under ``profile``, as plain JSON-able data."""
        if not isinstance(profile, Profile):
            profile = current_profile(profile)
        out = {
            f.name: _resolve(getattr(self, f.name), profile)
            for f in dataclasses.fields(self)
            if f.name not in ("name", "record")
        }
        if out["train_subset"] == "profile":
            out["train_subset"] = profile.train_subset
        if out["val_subset"] == "profile":
            out["val_subset"] = profile.val_subset
        out["optimizer_kwargs"] = dict(out["optimizer_kwargs"])
        out["scheduler_kwargs"] = dict(out["scheduler_kwargs"])
        out["record"] = {
            "gradients": {k: _jsonable(v) for k, v in self.record.gradients.items()},
            "state": {k: _jsonable(v) for k, v in self.record.state.items()},
            "state_keys": list(self.record.state_keys) if self.record.state_keys else None,
            "snapshot_every": self.record.snapshot_every,
        }
        _validate(out)
        return out


def _jsonable(v: Sequence[int] | None) -> list[int] | None:
    return None if v is None else [int(i) for i in v]


def _validate(cfg: dict[str, Any]) -> None:
    known = {**OPTIMIZERS, "scratch_sgd": None, "scratch_adam": None}
    if cfg["optimizer"] not in known:
        raise ValueError(f"unknown optimizer {cfg['optimizer']!r}; valid choices: {sorted(known)}.")
    if not (isinstance(cfg["lr"], int | float) and cfg["lr"] > 0):
        raise ValueError(f"lr must be a number > 0, got {cfg['lr']!r}.")
    if not (isinstance(cfg["epochs"], int) and cfg["epochs"] >= 1):
        raise ValueError(f"epochs must be an integer >= 1, got {cfg['epochs']!r}.")
    if not (isinstance(cfg["batch_size"], int) and cfg["batch_size"] >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {cfg['batch_size']!r}.")
    if not (isinstance(cfg["dropout"], int | float) and 0 <= cfg["dropout"] < 1):
        raise ValueError(f"dropout must be in [0, 1), got {cfg['dropout']!r}.")
    for part in ("train_subset", "val_subset"):
        size = cfg[part]
        if size is not None and not (isinstance(size, int) and size >= 1):
            raise ValueError(f"{part} must be None or an integer >= 1, got {size!r}.")
    if cfg["scheduler"] is not None and cfg["scheduler"].lower() not in lr_module.SCHEDULERS:
        raise ValueError(
            f"unknown scheduler {cfg['scheduler']!r}; valid choices: "
            f"{sorted(lr_module.SCHEDULERS)}."
        )
    lam = cfg["scheduler_kwargs"].get("lr_lambda")
    if lam is not None and lam not in LR_LAMBDAS:
        raise ValueError(f"unknown lr_lambda {lam!r}; valid choices: {sorted(LR_LAMBDAS)}.")
    # Build the optimizer and the scheduler on a stand-in parameter: a bad setting fails
    # here, before any data is loaded, rather than minutes into a build.
    optimizer = _check_optimizer(cfg)
    if cfg["scheduler"] is not None:
        try:
            _build_scheduler(cfg, optimizer, steps_per_epoch=1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid scheduler_kwargs for {cfg['scheduler']!r}: {exc}") from None


def _check_optimizer(cfg: dict[str, Any]) -> torch.optim.Optimizer:
    from .optimizers import _check_at_least, _check_unit_interval

    name, kwargs = cfg["optimizer"], cfg["optimizer_kwargs"]
    factory = {**OPTIMIZERS, **_scratch_optimizers()}[name]
    accepted = [p for p in inspect.signature(factory).parameters if p not in ("params", "lr")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown optimizer_kwargs {unknown} for {name!r}; valid choices: {accepted}."
        )
    try:
        # The same ranges as the from-scratch optimizers, for torch's too (their own
        # messages do not say what is allowed).
        for key in ("momentum", "weight_decay", "eps", "alpha"):
            if key in kwargs:
                _check_at_least(key, kwargs[key])
        if "dampening" in kwargs:
            _check_unit_interval("dampening", kwargs["dampening"], closed=True)
        if "betas" in kwargs:
            betas = kwargs["betas"]
            if not (isinstance(betas, Sequence) and len(betas) == 2):
                raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}.")
            for i, beta in enumerate(betas):
                _check_unit_interval(f"betas[{i}]", beta, closed=False)
        return factory([torch.zeros(1, requires_grad=True)], lr=cfg["lr"], **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid optimizer_kwargs for {name!r}: {exc}") from None


# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """Where results are kept: ``FASHION_OPTIM_CACHE`` or the user cache folder."""
    env = os.environ.get(_ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("fashion-optim")) / "results"


#: The modules whose code decides a training result; a change in any of them
#: invalidates the cache. Plotting and the documentation do not.
_TRAINING_SOURCES = (
    "data.py",
    "models.py",
    "training.py",
    "optimizers.py",
    "lr.py",
    "experiments.py",
)


def _code_only(source: str) -> str:
    """The module's syntax tree without docstrings: comments and docs do not count."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


@cache
def source_hash() -> str:
    """SHA-256 (16 hex digits) of the code that training results depend on.

    The modules' syntax trees are hashed without their docstrings, so editing a comment
    or a docstring does not retrain anything; any change to the code does.
    """
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _TRAINING_SOURCES:
        digest.update(name.encode())
        digest.update(_code_only((here / name).read_text()).encode())
    return digest.hexdigest()[:16]


def cache_key(kind: str, config: Mapping[str, Any], data_checksum: str) -> str:
    """The cache key of a computation: what, with which inputs, code, torch, data and
    device type (a result trained on a GPU is not the CPU's result, bit for bit)."""
    payload = json.dumps(
        {
            "kind": kind,
            "config": config,
            "source": source_hash(),
            "torch": torch.__version__,
            "data": data_checksum,
            "device": resolve_device("auto").type,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _save_entry(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    buffer = io.BytesIO()
    payload = {f"a:{k}": np.asarray(v) for k, v in arrays.items()}
    payload["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buffer, **payload)
    atomic_write(path, lambda fh: fh.write(buffer.getvalue()))


def _load_entry(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(npz["meta"].tobytes().decode())
        arrays = {k[2:]: npz[k] for k in npz.files if k.startswith("a:")}
    return arrays, meta


def _lookup(
    kind: str, key: str, stacklevel: int = 2
) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The cached ``(arrays, meta)`` under ``key`` (from :func:`cache_key`), or ``None``
    when there is none (an unreadable entry is reported with a warning and counts as
    none)."""
    path = cache_dir() / kind / f"{key}.npz"
    if not path.exists():
        return None
    try:
        arrays, meta = _load_entry(path)
        if meta.get("key") != key:
            raise ValueError("the entry's key does not match its file name")
        return arrays, meta
    except Exception as exc:  # any unreadable entry is recomputed
        warnings.warn(
            f"ignoring unreadable cache entry {path} ({type(exc).__name__}: {exc}); "
            "recomputing it.",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        return None


def cached(
    kind: str,
    config: Mapping[str, Any],
    compute: Callable[[], tuple[Mapping[str, np.ndarray], Mapping[str, Any]]],
    *,
    data_checksum: str,
    fresh: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``compute()``'s ``(arrays, meta)``, from the cache when possible.

    An entry that cannot be read (truncated, corrupt, from an incompatible writer) is
    reported with a warning and recomputed. ``fresh=True`` recomputes and overwrites.
    """
    key = cache_key(kind, config, data_checksum)
    path = cache_dir() / kind / f"{key}.npz"
    if not fresh:
        found = _lookup(kind, key, stacklevel=3)
        if found is not None:
            return found
    arrays, meta = compute()
    meta = {**meta, "key": key, "kind": kind, "config": config}
    try:
        _save_entry(path, arrays, meta)
    except OSError as exc:  # a read-only or full cache must not lose the result
        warnings.warn(
            f"could not write the cache entry {path} ({exc}); the result is used but not "
            f"kept. Make {cache_dir()} writable (or free some space there), or set "
            f"{_ENV_CACHE} to a writable folder.",
            RuntimeWarning,
            stacklevel=2,
        )
    return dict(arrays), dict(meta)


def clear_cache() -> int:
    """Delete every cached result; return how many entries were removed."""
    root = cache_dir()
    if not root.exists():
        return 0
    count = sum(1 for _ in root.rglob("*.npz"))
    shutil.rmtree(root)
    return count


# --------------------------------------------------------------------------- running


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
    }


@dataclass
class Result:
    """One trained configuration at one seed.

    Attributes
    ----------
    config : dict
        The resolved spec.
    seed : int
    history : History
    test_loss, test_acc : float
        On the held-out 10,000 test images, after the last epoch.
    records : dict of str to numpy.ndarray
        What the spec's :class:`Record` asked for.
    meta : dict
        Wall time, environment, cache key.
    """

    config: dict[str, Any]
    seed: int
    history: History
    test_loss: float
    test_acc: float
    records: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def from_cache(self) -> bool:
        return bool(self.meta.get("from_cache"))


#: A run stops with :class:`~fashion_optim.training.TrainingDivergedError` when a
#: mini-batch loss exceeds this multiple of its first one (about 2.3 for ten classes).
DIVERGE_THRESHOLD = 100.0


def _build_optimizer(cfg: dict[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    table = {**OPTIMIZERS, **_scratch_optimizers()}
    return table[cfg["optimizer"]](model.parameters(), lr=cfg["lr"], **cfg["optimizer_kwargs"])


def _build_scheduler(cfg: dict[str, Any], optimizer, steps_per_epoch: int):
    if cfg["scheduler"] is None:
        return None
    kwargs = dict(cfg["scheduler_kwargs"])
    if "lr_lambda" in kwargs:
        kwargs["lr_lambda"] = LR_LAMBDAS[kwargs["lr_lambda"]]
    return lr_module.make_scheduler(
        cfg["scheduler"],
        optimizer,
        epochs=cfg["epochs"],
        steps_per_epoch=steps_per_epoch,
        **kwargs,
    )


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n)``, then restore the caller's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(
    cfg: dict[str, Any],
    seed: int,
    spec: Spec,
    progress: bool | None,
    extra_recorders: Sequence[Recorder] = (),
):
    with _threads(TRAIN_THREADS):
        return _train_pinned(cfg, seed, spec, progress, extra_recorders)


def _train_pinned(cfg, seed, spec, progress, extra_recorders):
    splits = get_splits()
    train = splits.loader("train", cfg["batch_size"], seed=seed, subset=cfg["train_subset"])
    val = splits.loader("val", 1000, subset=cfg["val_subset"])
    test = splits.loader("test", 1000)
    torch.manual_seed(seed)  # same seed, same initial weights, whatever the optimizer
    model = make_model("lenet", dropout=cfg["dropout"])
    optimizer = _build_optimizer(cfg, model)
    scheduler = _build_scheduler(cfg, optimizer, len(train))
    recorders = spec.record.recorders()
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
    start = time.perf_counter()
    history = trainer.fit(train, val, epochs=cfg["epochs"])
    test_loss, test_acc = trainer.evaluate(test)
    arrays: dict[str, np.ndarray] = {}
    for rec in recorders:
        arrays.update({f"record/{k}": v for k, v in rec.result().items()})
    for k, v in history.to_dict().items():
        arrays[f"history/{k}"] = np.asarray(v, dtype=np.float64)
    meta = {
        "seed": seed,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "wall_time": time.perf_counter() - start,
        "train_size": train.dataset_size,
        "val_size": val.dataset_size,
        "steps_per_epoch": len(train),
        "environment": environment(),
    }
    return arrays, meta


def run(
    spec: Spec,
    seed: int = 0,
    *,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
) -> Result:
    """Train ``spec`` with ``seed`` under ``profile``, or load the cached result.

    A run whose mini-batch loss becomes NaN or infinite, or exceeds
    :data:`DIVERGE_THRESHOLD` times its first one, raises
    :class:`~fashion_optim.training.TrainingDivergedError` and leaves no cache entry.

    Examples
    --------
    >>> spec = Spec("momentum", lr=0.01, optimizer_kwargs={"momentum": 0.9}, epochs=2)
    >>> result = run(spec, seed=0, profile="quick")  # doctest: +SKIP
    >>> result.test_acc  # doctest: +SKIP
    0.78...
    """
    return _run(spec, seed, profile, fresh, progress)


def _run_config(cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """What a run's cache entry is keyed on: the resolved spec, the seed, the threads."""
    return {**cfg, "seed": seed, "threads": TRAIN_THREADS}


def _run(spec, seed, profile, fresh, progress, extra_recorders=()) -> Result:
    cfg = spec.resolve(profile)
    computed = []

    def compute():
        computed.append(True)
        return _train(cfg, seed, spec, progress, extra_recorders)

    arrays, meta = cached(
        "run",
        _run_config(cfg, seed),
        compute,
        data_checksum=get_splits().data_checksum,
        fresh=fresh,
    )
    return _as_result(cfg, seed, arrays, {**meta, "from_cache": not computed})


def _as_result(cfg, seed, arrays, meta) -> Result:
    history = History.from_dict(
        {k[len("history/") :]: v.tolist() for k, v in arrays.items() if k.startswith("history/")}
    )
    records = {k[len("record/") :]: v for k, v in arrays.items() if k.startswith("record/")}
    return Result(cfg, seed, history, meta["test_loss"], meta["test_acc"], records, meta)


@dataclass
class SeedResults:
    """The results of one spec over several seeds, with mean ± std summaries."""

    spec: Spec
    results: list[Result]

    def __post_init__(self) -> None:
        if not self.results:
            raise ValueError(
                f"SeedResults of {self.spec.name!r} needs at least one result; "
                "run at least one seed."
            )

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.results]

    def stack(self, name: str) -> np.ndarray:
        """A :class:`~fashion_optim.training.History` field for every seed, as an array
        ``[seeds, ...]``."""
        return np.stack([np.asarray(getattr(r.history, name)) for r in self.results])

    def _mean_std(self, values: Sequence[float]) -> tuple[float, float]:
        arr = np.asarray(values, dtype=float)
        return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0

    @property
    def test_acc(self) -> tuple[float, float]:
        """Mean and sample standard deviation of the test accuracy over seeds."""
        return self._mean_std([r.test_acc for r in self.results])

    @property
    def test_loss(self) -> tuple[float, float]:
        return self._mean_std([r.test_loss for r in self.results])

    def summary(self) -> str:
        (am, asd), (lm, lsd) = self.test_acc, self.test_loss
        return (
            f"{self.spec.name:<24} test acc {am:.4f} ± {asd:.4f}   test loss {lm:.4f} ± {lsd:.4f}"
            f"   ({len(self.results)} seeds)"
        )


def run_seeds(
    spec: Spec,
    seeds: Sequence[int] | None = None,
    *,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
    workers: int | None = None,
) -> SeedResults:
    """:func:`run` for each seed (default: the profile's seeds), several at once when
    more than one needs training (see :func:`run_many`)."""
    return run_specs(
        {"spec": spec}, seeds, profile=profile, fresh=fresh, progress=progress, workers=workers
    )["spec"]


def run_specs(
    specs: Mapping[Any, Spec],
    seeds: Sequence[int] | None = None,
    *,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
    workers: int | None = None,
) -> dict[Any, SeedResults]:
    """:func:`run_seeds` for every spec of ``specs``, with all their runs trained together
    by :func:`run_many` (so that the workers stay busy), keyed as ``specs`` is.

    Examples
    --------
    >>> runs = run_specs({k: NAMED[k] for k in ("sgd", "momentum")})  # doctest: +SKIP
    >>> runs["momentum"].test_acc  # doctest: +SKIP
    (0.90..., 0.00...)
    """
    prof = profile if isinstance(profile, Profile) else current_profile(profile)
    seeds = list(prof.seeds if seeds is None else seeds)
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed (or None for the profile's).")
    jobs = [(spec, seed) for spec in specs.values() for seed in seeds]
    results = run_many(jobs, profile=prof, fresh=fresh, progress=progress, workers=workers)
    out, n = {}, len(seeds)
    for i, (key, spec) in enumerate(specs.items()):
        out[key] = SeedResults(spec, results[i * n : (i + 1) * n])
    return out


# --------------------------------------------------------------------------- several runs


def default_workers() -> int:
    """How many runs :func:`run_many` trains at once: ``FASHION_OPTIM_WORKERS``, or the
    CPU cores this process may use, at most 8 (each worker holds the data, about 1.3 GB
    at its peak); 1 on a GPU, where the runs train one after the other."""
    env = os.environ.get(_ENV_WORKERS)
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(
                f"{_ENV_WORKERS} must be an integer >= 1, got {env!r}; set it to 1 to train "
                "one run at a time, or unset it to use every core."
            )
        return value
    if resolve_device("auto").type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 8))


def run_many(
    jobs: Iterable[tuple[Spec, int]],
    *,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
    workers: int | None = None,
    return_exceptions: bool = False,
) -> list[Result | TrainingDivergedError]:
    """:func:`run` for every ``(spec, seed)`` of ``jobs``, in order, training the runs the
    cache lacks several at a time.

    With ``workers`` (default :func:`default_workers`) above 1 and more than one run to
    train, the runs are trained in that many worker processes, the longest first, each
    on :data:`TRAIN_THREADS` thread, with one progress bar for them all; otherwise they
    train here, one after the other. The results are the same either way, bit for bit.
    A job listed twice is trained once.

    A run that diverges raises its :class:`~fashion_optim.training.TrainingDivergedError`
    (after the other runs have finished and been cached), or, with
    ``return_exceptions=True``, takes its place in the list (as in ``asyncio.gather``).

    Examples
    --------
    >>> jobs = [(NAMED["momentum"], 0), (NAMED["adam"], 0)]
    >>> momentum, adam = run_many(jobs)  # doctest: +SKIP
    """
    prof = profile if isinstance(profile, Profile) else current_profile(profile)
    jobs = list(jobs)
    for job in jobs:
        if not (isinstance(job, tuple) and len(job) == 2 and isinstance(job[0], Spec)):
            raise TypeError(f"each job must be a (Spec, seed) pair, got {job!r}.")
        if not isinstance(job[1], int) or isinstance(job[1], bool):
            raise TypeError(f"a seed must be an int, got {job[1]!r} for {job[0].name!r}.")
    n_workers = default_workers() if workers is None else workers
    if not (isinstance(n_workers, int) and n_workers >= 1):
        raise ValueError(f"workers must be an integer >= 1 or None, got {workers!r}.")
    checksum = get_splits().data_checksum
    out: list[Any] = [None] * len(jobs)
    todo: dict[str, list[int]] = {}  # cache key -> positions in jobs
    for i, (spec, seed) in enumerate(jobs):
        cfg = spec.resolve(prof)
        key = cache_key("run", _run_config(cfg, seed), checksum)
        found = None if fresh else _lookup("run", key)
        if found is not None:
            out[i] = _as_result(cfg, seed, found[0], {**found[1], "from_cache": True})
        else:
            todo.setdefault(key, []).append(i)
    # Each pending run was just looked up and is not cached (or is unreadable, which has
    # been said): train it with fresh=True, so that nobody looks it up, or warns, again.
    pending = [jobs[positions[0]] for positions in todo.values()]
    if min(n_workers, len(pending)) <= 1:
        trained = []
        for spec, seed in pending:
            try:
                trained.append(_run(spec, seed, prof, True, progress))
            except TrainingDivergedError as exc:
                trained.append(exc)
    else:
        trained = _train_in_workers(pending, prof, min(n_workers, len(pending)), progress)
    for positions, result in zip(todo.values(), trained, strict=True):
        for i in positions:
            out[i] = result
    if not return_exceptions:
        for result in out:
            if isinstance(result, BaseException):
                raise result
    return out


class _Ticker(Recorder):
    """Reports a worker's progress: the optimizer steps taken so far, now and then."""

    def __init__(self, report: Callable[[int], None], every: int = 20) -> None:
        self.report, self.every = report, every

    def after_step(self, trainer: Trainer) -> None:
        if trainer.step % self.every == 0 or trainer.is_last_step:
            self.report(trainer.step)


def _steps(spec: Spec, seed: int, prof: Profile) -> int:
    cfg = spec.resolve(prof)
    train = get_splits().loader("train", cfg["batch_size"], seed=seed, subset=cfg["train_subset"])
    return cfg["epochs"] * len(train)


_WORKER_CODE = "from fashion_optim.experiments import _worker_main; _worker_main()"


def _train_in_workers(
    pending: list[tuple[Spec, int]],
    prof: Profile,
    n_workers: int,
    progress: bool | None,
) -> list[Result | TrainingDivergedError]:
    """Train ``pending`` (runs not in the cache) in ``n_workers`` worker processes;
    results in the same order.

    A worker reads job numbers on its standard input, one per line, and answers on its
    standard output with ``step JOB N`` lines and one ``done JOB`` line per job, after
    writing the job's outcome to ``JOB.pkl`` in the shared temporary folder.
    """
    totals = [_steps(spec, seed, prof) for spec, seed in pending]
    queue = deque(sorted(range(len(pending)), key=lambda i: -totals[i]))  # longest first
    outcomes: dict[int, Any] = {}
    failures: list[BaseException] = []
    lock = threading.Lock()
    package_root = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(TRAIN_THREADS),
        _ENV_WORKERS: "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    bar = tqdm(
        total=sum(totals),
        desc=f"training {len(pending)} runs in {n_workers} processes",
        unit="batch",
        disable=(None if progress is None else not progress),
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )
    with tempfile.TemporaryDirectory(prefix="fashion-optim-workers-") as tmp:
        folder = Path(tmp)
        with (folder / "jobs.pkl").open("wb") as fh:
            pickle.dump({"profile": prof, "jobs": pending}, fh)
        procs: list[subprocess.Popen] = []
        logs = [folder / f"worker{k}.log" for k in range(n_workers)]

        def serve(proc: subprocess.Popen, log: Path) -> None:
            while True:
                with lock:
                    if failures or not queue:
                        break
                    job = queue.popleft()
                seen, done = 0, False
                try:
                    proc.stdin.write(f"{job}\n")
                    proc.stdin.flush()
                    for line in proc.stdout:
                        kind, _, rest = line.strip().partition(" ")
                        if kind == "step":
                            step = int(rest.split()[1])
                            with lock:
                                bar.update(step - seen)
                            seen = step
                        elif kind == "done":
                            done = True
                            break
                except (BrokenPipeError, OSError, ValueError):
                    pass
                with lock:
                    bar.update(totals[job] - seen)
                    if not done:
                        if not failures:
                            spec, seed = pending[job]
                            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                            failures.append(
                                RuntimeError(
                                    f"the worker process training {spec.name!r} (seed {seed}) "
                                    f"stopped (exit status {proc.poll()}); its last output:\n"
                                    f"{tail}"
                                )
                            )
                        return
                    status, payload, caught = _read_outcome(folder / f"{job}.pkl")
                    if status == "error":
                        spec, seed = pending[job]
                        failures.append(
                            RuntimeError(
                                f"training {spec.name!r} (seed {seed}) failed in a worker "
                                f"process:\n{payload}"
                            )
                        )
                        return
                    outcomes[job] = (payload, caught)

        finished = False
        try:
            for log in logs:
                with log.open("wb") as err:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-c", _WORKER_CODE, str(folder)],
                            stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE,
                            stderr=err,
                            text=True,
                            bufsize=1,
                            env=env,
                        )
                    )
            threads = [
                threading.Thread(target=serve, args=(proc, log), daemon=True)
                for proc, log in zip(procs, logs, strict=True)
            ]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.5)
                if failures:  # stop the others: the call fails anyway
                    for proc in procs:
                        proc.kill()
            finished = True
        finally:
            bar.close()
            if not finished:  # interrupted (Ctrl-C) or failed to start: stop everything
                for proc in procs:
                    proc.kill()
            for proc in procs:
                if proc.poll() is None and proc.stdin:
                    try:
                        proc.stdin.close()
                    except OSError:
                        pass
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                for stream in (proc.stdin, proc.stdout):
                    if stream:
                        try:
                            stream.close()
                        except OSError:
                            pass
    if failures:
        raise failures[0]
    results = []
    for job in range(len(pending)):
        payload, caught = outcomes[job]
        for category, message in caught:  # the workers' warnings, said here
            warnings.warn(message, category, stacklevel=3)
        results.append(payload)
    return results


def _read_outcome(path: Path) -> tuple[str, Any, list]:
    with path.open("rb") as fh:
        return pickle.load(fh)


def _worker_main() -> None:
    """A worker process of :func:`run_many` (``python -c``): see
    :func:`_train_in_workers` for the protocol."""
    folder = Path(sys.argv[1])
    with (folder / "jobs.pkl").open("rb") as fh:
        work = pickle.load(fh)
    channel = sys.stdout
    sys.stdout = sys.stderr  # anything else printed goes to the log, not the channel
    for line in sys.stdin:
        job = int(line)
        spec, seed = work["jobs"][job]

        def report(step: int, job: int = job) -> None:
            channel.write(f"step {job} {step}\n")
            channel.flush()

        with warnings.catch_warnings(record=True) as caught:
            try:
                outcome: tuple[str, Any] = (
                    "ok",
                    _run(spec, seed, work["profile"], True, False, [_Ticker(report)]),
                )
            except TrainingDivergedError as exc:
                outcome = ("diverged", exc)
            except Exception:
                outcome = ("error", traceback.format_exc())
        said = [(w.category, str(w.message)) for w in caught]
        atomic_write(folder / f"{job}.pkl", lambda fh, o=outcome, s=said: pickle.dump((*o, s), fh))
        channel.write(f"done {job}\n")
        channel.flush()


def run_range_test(
    spec: Spec,
    seed: int = 0,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    num_iter: Any = PerProfile(full=300, quick=100),
    smooth: float = 0.05,
    profile: Profile | str | None = None,
    fresh: bool = False,
    progress: bool | None = None,
) -> lr_module.RangeTestResult:
    """The learning-rate range test of ``spec``'s model and optimizer, cached.

    The model is built with ``seed`` exactly as :func:`run` builds it (so the test starts
    from the weights that training would start from); the learning rate of ``spec`` is
    replaced by the ramp from ``start_lr`` to ``end_lr`` over ``num_iter`` mini-batches
    of the profile's training data. See :func:`fashion_optim.lr.range_test`.
    """
    prof = profile if isinstance(profile, Profile) else current_profile(profile)
    cfg = spec.resolve(prof)
    test_cfg = {
        "optimizer": cfg["optimizer"],
        "optimizer_kwargs": cfg["optimizer_kwargs"],
        "batch_size": cfg["batch_size"],
        "dropout": cfg["dropout"],
        "train_subset": cfg["train_subset"],
        "start_lr": start_lr,
        "end_lr": end_lr,
        "num_iter": _resolve(num_iter, prof),
        "smooth": smooth,
        "seed": seed,
        "threads": TRAIN_THREADS,
    }

    def compute():
        splits = get_splits()
        train = splits.loader("train", cfg["batch_size"], seed=seed, subset=cfg["train_subset"])
        torch.manual_seed(seed)
        model = make_model("lenet", dropout=cfg["dropout"])
        optimizer = _build_optimizer({**cfg, "lr": start_lr}, model)
        start = time.perf_counter()
        with _threads(TRAIN_THREADS):
            res = lr_module.range_test(
                model,
                nn.CrossEntropyLoss(),
                optimizer,
                train,
                start_lr=start_lr,
                end_lr=end_lr,
                num_iter=test_cfg["num_iter"],
                smooth=smooth,
                progress=progress,
            )
        arrays = {"lrs": res.lrs, "losses": res.losses, "smoothed": res.smoothed}
        meta = {
            "suggested_lr": res.suggested_lr,
            "lr_min": res.lr_min,
            "lr_max": res.lr_max,
            "diverged": res.diverged,
            "stopped_at": res.stopped_at,
            "step_mode": res.step_mode,
            "wall_time": time.perf_counter() - start,
        }
        return arrays, meta

    arrays, meta = cached(
        "range_test", test_cfg, compute, data_checksum=get_splits().data_checksum, fresh=fresh
    )
    return lr_module.RangeTestResult(
        lrs=arrays["lrs"],
        losses=arrays["losses"],
        smoothed=arrays["smoothed"],
        suggested_lr=meta["suggested_lr"],
        lr_min=meta["lr_min"],
        lr_max=meta["lr_max"],
        diverged=meta["diverged"],
        stopped_at=meta["stopped_at"],
        step_mode=meta["step_mode"],
    )


# --------------------------------------------------------------------------- named runs

#: The weights every note run records at each mini-batch (flat indices by parameter):
#: the centre tap of the first 5x5 filter of the first convolution, and one weight of
#: the first fully connected layer. Their gradients, their layer's gradient norm, and
#: the optimizer's state for them (momentum buffer, Adam's moments) are kept.
PROBES: dict[str, list[int]] = {"features.0.weight": [12], "classifier.1.weight": [0]}
#: What the note's shared runs record (gradients and optimizer state of :data:`PROBES`).
NOTE_RECORD = Record(gradients=PROBES, state=PROBES)
#: The epochs of the note's shared runs, per profile.
NOTE_EPOCHS = PerProfile(full=10, quick=3)

#: The note's shared configurations, also for ``python -m fashion_optim run NAME``.
NAMED: dict[str, Spec] = {
    "sgd": Spec("SGD", lr=0.01, epochs=NOTE_EPOCHS, record=NOTE_RECORD),
    "momentum": Spec(
        "SGD + momentum",
        lr=0.01,
        optimizer_kwargs={"momentum": 0.9},
        epochs=NOTE_EPOCHS,
        record=NOTE_RECORD,
    ),
    "nesterov": Spec(
        "SGD + Nesterov",
        lr=0.01,
        optimizer_kwargs={"momentum": 0.9, "nesterov": True},
        epochs=NOTE_EPOCHS,
        record=NOTE_RECORD,
    ),
    "sgd_effective": Spec(
        "SGD at lr / (1 - momentum)", lr=0.1, epochs=NOTE_EPOCHS, record=NOTE_RECORD
    ),
    "adam": Spec("Adam", optimizer="adam", lr=1e-3, epochs=NOTE_EPOCHS, record=NOTE_RECORD),
}

#: The budget of the learning-rate schedule comparison (SGD with momentum as in
#: ``NAMED["momentum"]``, on a stratified subset and a few epochs, without probes).
SHORT_BUDGET = Spec(
    "momentum, short budget",
    lr=0.01,
    optimizer_kwargs={"momentum": 0.9},
    epochs=PerProfile(full=6, quick=3),
    train_subset=PerProfile(full=20000, quick=5000),
)


def full_budget_onecycle(max_lr: float) -> Spec:
    """``NAMED["momentum"]`` with ``OneCycleLR(max_lr)``, stepped per mini-batch.

    Same data, epochs, optimizer, base rate and initial weights as the note's
    constant-rate run of SGD with momentum, so the two differ only in the schedule; no
    probes are recorded. ``max_lr`` is the range test's suggestion.
    """
    if not (isinstance(max_lr, int | float) and max_lr > 0):
        raise ValueError(f"max_lr must be a positive number, got {max_lr!r}.")
    return NAMED["momentum"].replace(
        name="SGD + momentum, OneCycleLR",
        scheduler="onecycle",
        scheduler_kwargs={"max_lr": float(max_lr)},
        record=Record(),
    )


def schedule_specs(max_lr: float, profile: Profile | str | None = None) -> dict[str, Spec]:
    """The schedules the note compares on :data:`SHORT_BUDGET`, by scheduler name.

    Step sizes and milestones follow the number of epochs, so every schedule acts within
    the budget; ``max_lr`` is OneCycleLR's peak (the range test's suggestion). Each spec's
    name is the torch class it uses.
    """
    prof = profile if isinstance(profile, Profile) else current_profile(profile)
    epochs = _resolve(SHORT_BUDGET.epochs, prof)
    step_size = max(1, epochs // 3)
    milestones = sorted({max(1, (epochs + 1) // 2), max(1, epochs - 1)})
    table = {
        "constant": ("constant", {}),
        "step": ("StepLR", {"step_size": step_size, "gamma": 0.5}),
        "lambda": ("LambdaLR", {"lr_lambda": "warmup_inverse_sqrt"}),
        "multistep": ("MultiStepLR", {"milestones": milestones, "gamma": 0.1}),
        "cosine": ("CosineAnnealingLR", {}),
        "onecycle": ("OneCycleLR", {"max_lr": float(max_lr)}),
        "plateau": ("ReduceLROnPlateau", {"patience": 1, "factor": 0.1}),
    }
    return {
        name: SHORT_BUDGET.replace(name=label, scheduler=name, scheduler_kwargs=kwargs)
        for name, (label, kwargs) in table.items()
    }


def _cmd_run(args) -> int:
    if args.name not in NAMED:
        print(f"error: unknown experiment {args.name!r}; valid choices: {sorted(NAMED)}.")
        return 2
    spec = NAMED[args.name]
    prof = current_profile(args.profile)
    seeds = args.seed if args.seed else prof.seeds
    print(f"{spec.name}: profile {prof.name} ({prof.description}), seeds {list(seeds)}")
    for seed in seeds:
        start = time.perf_counter()
        r = run(spec, seed, profile=prof, fresh=args.fresh, progress=not args.no_progress)
        where = "cache" if r.from_cache else "trained"
        print(
            f"  seed {seed}: test acc {r.test_acc:.4f}  test loss {r.test_loss:.4f}  "
            f"({where}, {time.perf_counter() - start:.2f} s)"
        )
    if len(seeds) > 1:
        print(run_seeds(spec, seeds, profile=prof).summary())
    return 0


def _cmd_cache(args) -> int:
    root = cache_dir()
    if args.clear:
        print(f"removed {clear_cache()} entries from {root}")
        return 0
    entries = list(root.rglob("*.npz")) if root.exists() else []
    size = sum(p.stat().st_size for p in entries)
    print(f"cache: {root}\n  {len(entries)} entries, {size / 2**20:.1f} MiB")
    print(f"  source hash {source_hash()}, torch {torch.__version__}")
    return 0


def add_cli_commands(sub) -> None:
    """Add ``run`` and ``cache`` to the command line's subparsers."""
    p = sub.add_parser("run", help="train a named experiment (or load it from the cache)")
    p.add_argument("name", help=f"one of {sorted(NAMED)}")
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help=f"default: {_ENV_PROFILE} or 'full'",
    )
    p.add_argument(
        "--seed", type=int, action="append", help="repeatable; default: the profile's seeds"
    )
    p.add_argument("--fresh", action="store_true", help="ignore and overwrite cached results")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)
    c = sub.add_parser("cache", help="show or clear the result cache")
    c.add_argument("--clear", action="store_true", help="delete every cached result")
    c.set_defaults(func=_cmd_cache)
