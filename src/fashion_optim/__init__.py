"""fashion-optim: an executable technical note on optimization in deep learning.

Every figure of the note comes from real training of a LeNet-like CNN on Fashion-MNIST
through this package: :mod:`~fashion_optim.data` loads and splits the data,
:mod:`~fashion_optim.models` holds the CNN, :mod:`~fashion_optim.training` trains it.
"""

from importlib.metadata import PackageNotFoundError, version

# First, before anything imports torch or numpy: the CPU kernels every process that
# trains or evaluates through this package uses (see fashion_optim.pin).
from . import pin

pin.apply()

try:
    __version__ = version("fashion-optim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__", "pin"]
