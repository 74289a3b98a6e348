"""The LeNet-like CNN used throughout the note."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["LeNet", "count_parameters", "make_model", "model_with_weights"]


class LeNet(nn.Module):
    """A LeNet-5-like CNN for 28x28 grey images.

    Two convolution blocks (5x5 convolution, ReLU, 2x2 max-pool) with 6 and 16 channels,
    then three fully connected layers (400 -> 120 -> 84 -> 10). With the defaults it has
    61,706 trainable parameters.

    Parameters
    ----------
    num_classes : int
        Output logits.
    dropout : float
        Dropout probability before each of the first two fully connected layers'
        outputs (0 disables it).

    Examples
    --------
    >>> model = LeNet()
    >>> count_parameters(model)
    61706
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_classes]`` for images ``[B, 1, 28, 28]``."""
        return self.classifier(self.features(x))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_model(name: str = "lenet", **kwargs) -> nn.Module:
    """Build a model by name (only ``"lenet"`` for now)."""
    if name != "lenet":
        raise ValueError(f"unknown model {name!r}; valid choices: 'lenet'.")
    return LeNet(**kwargs)


def model_with_weights(weights, name: str = "lenet") -> nn.Module:
    """The model ``name`` with its parameters set to a copy of ``weights`` (``[P]``, flat,
    in ``model.parameters()`` order), e.g. a recorded snapshot.

    A copy: the parameters become views of it, and evaluating the model elsewhere in its
    space writes into them, which must never reach the caller's array.
    """
    model = make_model(name)
    vec = torch.tensor(np.asarray(weights), dtype=torch.float32)
    size = sum(p.numel() for p in model.parameters())
    if vec.shape != (size,):
        raise ValueError(
            f"weights must be a vector of the CNN's {size} parameters, got "
            f"shape {tuple(vec.shape)}."
        )
    torch.nn.utils.vector_to_parameters(vec, model.parameters())
    return model
