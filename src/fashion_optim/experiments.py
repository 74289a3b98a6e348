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
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import io
import json
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch
from torch import nn

from . import lr as lr_module
from .data import Splits, make_splits
from .models import make_model
from .training import (
    GradientRecorder,
    History,
    OptimizerStateRecorder,
    ParameterRecorder,
    Trainer,
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
    "environment",
    "full_budget_onecycle",
    "get_splits",
    "run",
    "run_range_test",
    "run_seeds",
    "schedule_specs",
    "source_hash",
]

_ENV_PROFILE = "FASHION_OPTIM_PROFILE"
_ENV_CACHE = "FASHION_OPTIM_CACHE"

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
    if path.exists() and not fresh:
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
                stacklevel=2,
            )
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


def _train(cfg: dict[str, Any], seed: int, spec: Spec, progress: bool | None):
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
        recorders=recorders,
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
    cfg = spec.resolve(profile)
    checksum = get_splits().data_checksum
    computed = []

    def compute():
        computed.append(True)
        return _train(cfg, seed, spec, progress)

    arrays, meta = cached(
        "run", {**cfg, "seed": seed}, compute, data_checksum=checksum, fresh=fresh
    )
    history = History.from_dict(
        {k[len("history/") :]: v.tolist() for k, v in arrays.items() if k.startswith("history/")}
    )
    records = {k[len("record/") :]: v for k, v in arrays.items() if k.startswith("record/")}
    meta = {**meta, "from_cache": not computed}
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
) -> SeedResults:
    """:func:`run` for each seed (default: the profile's seeds)."""
    prof = profile if isinstance(profile, Profile) else current_profile(profile)
    seeds = prof.seeds if seeds is None else seeds
    return SeedResults(
        spec, [run(spec, s, profile=prof, fresh=fresh, progress=progress) for s in seeds]
    )


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
    }

    def compute():
        splits = get_splits()
        train = splits.loader("train", cfg["batch_size"], seed=seed, subset=cfg["train_subset"])
        torch.manual_seed(seed)
        model = make_model("lenet", dropout=cfg["dropout"])
        optimizer = _build_optimizer({**cfg, "lr": start_lr}, model)
        start = time.perf_counter()
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
