"""The Trainer: fit and evaluate a model, record what the optimizer sees, checkpoint it.

One :class:`Trainer` owns a model, a loss, an optimizer and an optional learning-rate
scheduler. :meth:`Trainer.fit` returns a :class:`History` with per-epoch and per-mini-batch
numbers; :class:`Recorder` objects, called at each step, capture what the optimizer sees
(the recorders themselves are :mod:`fashion_optim.recorders`').
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler
from tqdm.auto import tqdm

from .device import resolve_device
from .files import atomic_write

__all__ = [
    "PER_BATCH_SCHEDULERS",
    "History",
    "Recorder",
    "Trainer",
    "TrainingDivergedError",
    "resolve_device",
    "scheduler_interval",
    "step_scheduler_batch",
    "step_scheduler_epoch",
]

#: Schedulers whose natural unit is the mini-batch; every other one steps once an epoch.
PER_BATCH_SCHEDULERS: tuple[type, ...] = (
    lr_scheduler.OneCycleLR,
    lr_scheduler.CyclicLR,
    lr_scheduler.CosineAnnealingWarmRestarts,
)

Interval = Literal["batch", "epoch"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite, or exceeded the trainer's divergence limit.

    Carries ``epoch`` (1-based), ``step`` (1-based mini-batch of that epoch), ``loss``,
    ``lr`` and ``limit`` (the loss it exceeded, or ``None`` for a NaN or infinite loss).
    """

    def __init__(
        self, epoch: int, step: int, loss: float, lr: float, limit: float | None = None
    ) -> None:
        self.epoch, self.step, self.loss, self.lr, self.limit = epoch, step, loss, lr, limit
        above = "" if limit is None else f" (above the limit {limit:.4g})"
        super().__init__(
            f"training diverged: loss is {loss:.4g}{above} at epoch {epoch}, mini-batch {step} "
            f"(learning rate {lr:.3g}). Lower the learning rate or add a warm-up."
        )

    def __reduce__(self):  # pickled whole: a worker process sends it back to the caller
        return (type(self), (self.epoch, self.step, self.loss, self.lr, self.limit))


def scheduler_interval(scheduler: Any) -> Interval:
    """Whether ``scheduler`` steps once per mini-batch or once per epoch.

    :class:`~torch.optim.lr_scheduler.OneCycleLR`, :class:`~torch.optim.lr_scheduler.CyclicLR`
    and :class:`~torch.optim.lr_scheduler.CosineAnnealingWarmRestarts` step per batch; all
    others (including :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau`) per epoch.
    """
    return "batch" if isinstance(scheduler, PER_BATCH_SCHEDULERS) else "epoch"


def step_scheduler_batch(scheduler: Any, epoch: int, batch: int, num_batches: int) -> None:
    """Step a per-batch scheduler after mini-batch ``batch`` (0-based) of ``epoch`` (0-based).

    :class:`~torch.optim.lr_scheduler.CosineAnnealingWarmRestarts` receives the fractional
    epoch, so its ``T_0`` counts epochs as in torch's documentation.
    """
    if isinstance(scheduler, lr_scheduler.CosineAnnealingWarmRestarts):
        scheduler.step(epoch + (batch + 1) / num_batches)
    else:
        scheduler.step()


def step_scheduler_epoch(scheduler: Any, metric: float | None = None) -> None:
    """Step a per-epoch scheduler; :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau`
    receives ``metric`` (the validation loss)."""
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        if metric is None:
            raise ValueError("ReduceLROnPlateau needs a metric (the validation loss).")
        scheduler.step(metric)
    else:
        scheduler.step()


# --------------------------------------------------------------------------- history


@dataclass
class History:
    """What one training run did.

    Per epoch: ``train_loss``, ``train_acc`` (running over the epoch), ``val_loss``,
    ``val_acc`` (after the epoch), ``lr`` (the learning rate of the epoch's first step) and
    ``epoch_time`` (seconds). Per mini-batch: ``batch_loss`` and ``batch_lr``.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    batch_lr: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, list[float]]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> History:
        return cls(**{f.name: [float(v) for v in data.get(f.name, [])] for f in fields(cls)})

    def same_as(self, other: History) -> bool:
        """Bitwise equality of everything but the wall times."""
        mine, theirs = self.to_dict(), other.to_dict()
        mine.pop("epoch_time")
        theirs.pop("epoch_time")
        return mine == theirs


# --------------------------------------------------------------------------- recorders


class Recorder:
    """Base class: hooks called by :meth:`Trainer.fit`. Override what you need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def after_backward(self, trainer: Trainer) -> None:
        """Gradients of this step are in ``.grad``; the parameters are not yet updated."""

    def after_step(self, trainer: Trainer) -> None:
        """The optimizer has updated the parameters and its state."""

    def result(self) -> dict[str, np.ndarray]:
        """The recorded arrays, by name."""
        return {}

    #: Whether :meth:`continued` can join this recorder's arrays to those of the run
    #: it continues (a recorder whose arrays depend on where a run ends cannot).
    continues: bool = True

    def continued(self, before: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The :meth:`result` of the whole run, when this fit continued a shorter run of
        the same configuration whose recorded arrays are ``before`` (by name, the names
        of other recorders included): each of this recorder's arrays, the shorter run's
        rows first. A recorder whose rows do not follow one per step overrides it."""
        after = self.result()
        missing = [k for k in after if k not in before]
        if missing:
            raise ValueError(
                f"the run continued recorded no {missing}; continue only a run of the same "
                "configuration (the same records)."
            )
        return {k: np.concatenate([before[k], v]) for k, v in after.items()}


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Fit and evaluate a model with one optimizer and an optional scheduler.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable
        ``loss_fn(logits, targets)`` returning the mean loss of the batch.
    optimizer : torch.optim.Optimizer
    scheduler : torch.optim.lr_scheduler.LRScheduler, optional
        Stepped per mini-batch or per epoch according to its kind (see
        :func:`scheduler_interval`);
        :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` receives the validation loss.
    device : str or torch.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``...
    seed : int
        Seeds torch's global generator when training starts (dropout and anything
        else random in the model). On the CPU the same seed gives a bitwise-identical
        :class:`History`.
    recorders : sequence of Recorder
    progress : bool, optional
        Show a progress bar on standard error. ``None`` (default): only on a terminal.
    diverge_threshold : float, optional
        Also stop, with :class:`TrainingDivergedError`, when a mini-batch loss exceeds this
        multiple of the run's first mini-batch loss (a loss can explode to 1e28 and stay
        finite). ``None`` (default): stop only on a NaN or infinite loss.

    Examples
    --------
    >>> from fashion_optim.models import LeNet
    >>> model = LeNet()
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> trainer = Trainer(model, nn.CrossEntropyLoss(), opt, seed=0)
    >>> history = trainer.fit(train_loader, val_loader, epochs=3)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Any,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        device: str | torch.device = "auto",
        seed: int = 0,
        recorders: Sequence[Recorder] = (),
        progress: bool | None = None,
        diverge_threshold: float | None = None,
    ) -> None:
        if diverge_threshold is not None and not diverge_threshold > 1:
            raise ValueError(f"diverge_threshold must be > 1 or None, got {diverge_threshold!r}.")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer)}.")
        model_params = {id(p) for p in model.parameters()}
        opt_params = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if not opt_params <= model_params:
            raise ValueError(
                "the optimizer holds parameters that are not the model's; build it from "
                "model.parameters()."
            )
        if scheduler is not None and getattr(scheduler, "optimizer", None) is not optimizer:
            raise ValueError(
                f"the scheduler {type(scheduler).__name__} is bound to another optimizer; "
                "create it from this trainer's optimizer."
            )
        self.device = resolve_device(device)
        # channels_last: the convolution and max-pool kernels run 1.2-1.3x faster on
        # this model than in NCHW (benchmarks/README.md); non-4-d parameters are left as
        # they are, and flattening a parameter still walks it in logical order.
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.seed = seed
        self.recorders = list(recorders)
        self.progress = progress
        self.diverge_threshold = diverge_threshold
        self.history = History()
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.is_last_step = False
        self._seeded = False

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # ---------------------------------------------------------------- evaluation

    def evaluate(self, loader: Iterable) -> tuple[float, float]:
        """Mean loss and accuracy over ``loader``, in eval mode, without gradients."""
        loss, acc, _ = self.evaluate_predictions(loader)
        return loss, acc

    def evaluate_predictions(self, loader: Iterable) -> tuple[float, float, np.ndarray]:
        """Like :meth:`evaluate`, and the predicted class of every example, in the
        loader's order (``uint8``: ten classes), for per-example paired comparisons."""
        was_training = self.model.training
        self.model.eval()
        total_loss, correct, count = 0.0, 0, 0
        predictions = []
        with torch.inference_mode():
            for x, y in loader:
                x, y = self._to_device(x), y.to(self.device)
                logits = self.model(x)
                total_loss += float(self.loss_fn(logits, y)) * len(y)
                predicted = logits.argmax(1)
                correct += int((predicted == y).sum())
                count += len(y)
                predictions.append(predicted.to(torch.uint8).cpu().numpy())
        self.model.train(was_training)
        if count == 0:
            raise ValueError("the evaluation loader yielded no data.")
        return total_loss / count, correct / count, np.concatenate(predictions)

    # ---------------------------------------------------------------- training

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            return x.to(self.device, memory_format=torch.channels_last)
        return x.to(self.device)

    @staticmethod
    def _check_batch(x: Any, y: Any) -> None:
        if not (torch.is_tensor(x) and torch.is_tensor(y)):
            raise TypeError(f"the loader must yield (inputs, targets) tensors, got {type(x)}.")
        if not x.is_floating_point() or x.ndim != 4:
            raise TypeError(
                f"inputs must be float [B, C, H, W], got {x.dtype} of shape {tuple(x.shape)}; "
                "use fashion_optim.batches.ArrayLoader, which normalises uint8 images."
            )
        if y.dtype != torch.int64 or y.ndim != 1 or len(y) != len(x):
            raise TypeError(f"targets must be int64 [B], got {y.dtype} of shape {tuple(y.shape)}.")

    def fit(self, train_loader: Iterable, val_loader: Iterable | None = None, epochs: int = 1):
        """Train for ``epochs`` more epochs and return the :class:`History` so far.

        After each epoch the model is evaluated on ``val_loader`` (when given). Calling
        ``fit`` again, or after :meth:`load_checkpoint`, continues where it stopped.

        Raises
        ------
        TrainingDivergedError
            When the loss becomes NaN or infinite, or exceeds ``diverge_threshold`` times
            the first mini-batch loss.
        """
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}.")
        if self.step == 0 and not self._seeded:
            torch.manual_seed(self.seed)
            self._seeded = True
        num_batches = len(train_loader)  # type: ignore[arg-type]
        if num_batches == 0:
            raise ValueError("the training loader yields no batches.")
        interval = scheduler_interval(self.scheduler) if self.scheduler is not None else None
        for rec in self.recorders:
            rec.on_fit_start(self)
        last_epoch = self.epoch + epochs
        bar = tqdm(
            total=epochs * num_batches,
            disable=(None if self.progress is None else not self.progress),
            file=sys.stderr,
            unit="batch",
            leave=False,
            dynamic_ncols=True,
        )
        try:
            while self.epoch < last_epoch:
                self._train_epoch(train_loader, val_loader, interval, num_batches, bar, last_epoch)
        finally:
            bar.close()
        return self.history

    def _loss_limit(self, value: float) -> float:
        # Relative to the first loss of the whole run (kept in the history, so a resumed
        # run has the same limit); never the best loss, which a healthy run drives to 0.
        first = self.history.batch_loss[0] if self.history.batch_loss else value
        if self.diverge_threshold is None or not first > 0:
            return math.inf
        return self.diverge_threshold * first

    def _train_epoch(self, train_loader, val_loader, interval, num_batches, bar, last_epoch):
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(self.epoch)
        self.model.train()
        start = time.perf_counter()
        epoch_lr = self.lr
        total_loss, correct, count = 0.0, 0, 0
        for i, (x, y) in enumerate(train_loader):
            if i == 0:
                self._check_batch(x, y)
            x, y = self._to_device(x), y.to(self.device)
            lr = self.lr
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(x)
            loss = self.loss_fn(logits, y)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDivergedError(self.epoch + 1, i + 1, value, lr)
            limit = self._loss_limit(value)
            if value > limit:
                raise TrainingDivergedError(self.epoch + 1, i + 1, value, lr, limit)
            loss.backward()
            for rec in self.recorders:
                rec.after_backward(self)
            self.optimizer.step()
            self.step += 1
            self.is_last_step = self.epoch + 1 == last_epoch and i + 1 == num_batches
            for rec in self.recorders:
                rec.after_step(self)
            if interval == "batch":
                step_scheduler_batch(self.scheduler, self.epoch, i, num_batches)
            self.history.batch_loss.append(value)
            self.history.batch_lr.append(lr)
            total_loss += value * len(y)
            correct += int((logits.detach().argmax(1) == y).sum())
            count += len(y)
            bar.update(1)
            if i % 20 == 0:
                bar.set_postfix(epoch=self.epoch + 1, loss=f"{value:.3f}", refresh=False)
        train_loss, train_acc = total_loss / count, correct / count
        if val_loader is not None:
            val_loss, val_acc = self.evaluate(val_loader)
        else:
            val_loss, val_acc = math.nan, math.nan
        if interval == "epoch":
            metric = val_loss if val_loader is not None else train_loss
            step_scheduler_epoch(self.scheduler, metric)
        h = self.history
        h.train_loss.append(train_loss)
        h.train_acc.append(train_acc)
        h.val_loss.append(val_loss)
        h.val_acc.append(val_acc)
        h.lr.append(epoch_lr)
        h.epoch_time.append(time.perf_counter() - start)
        self.epoch += 1

    # ---------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to continue this run exactly."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "history": self.history.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "seed": self.seed,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Save model, optimizer, scheduler, history and RNG state, atomically."""
        state = self.state_dict()
        atomic_write(path, lambda fh: torch.save(state, fh))

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore what :meth:`save_checkpoint` saved; the next :meth:`fit` resumes exactly."""
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` captured (model, optimizer, scheduler, history,
        counters and random generators); the next :meth:`fit` continues bit for bit as
        the run would have gone on. Build the trainer as it was built for that run."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if (state["scheduler"] is None) != (self.scheduler is None):
            raise ValueError(
                "the checkpoint and this trainer disagree on having a scheduler; build the "
                "trainer as it was when the checkpoint was saved."
            )
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.history = History.from_dict(state["history"])
        self.epoch, self.step, self.seed = state["epoch"], state["step"], state["seed"]
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self._seeded = True
