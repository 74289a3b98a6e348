"""Find, verify and load Fashion-MNIST.

The four idx files are looked for, in order, in:

1. the folder named by ``root`` or the environment variable ``FASHION_OPTIM_DATA``
   (when given, it is the *only* place used, and downloads go there);
2. this package's own cache folder (``platformdirs.user_cache_dir("fashion-optim")/data``);
3. Debian's ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``);
4. a download through :class:`torchvision.datasets.FashionMNIST`, when allowed.

Each file may be plain (``train-images-idx3-ubyte``) or gzip-compressed (``.gz``), and may
sit in the folder itself or in torchvision's ``FashionMNIST/raw`` layout below it. The
content is verified against the published MD5 checksums of the *uncompressed* idx bytes,
so Debian's re-compressed copy and an upstream copy both pass, while a single flipped byte
does not. Splitting the data and serving its mini-batches is :mod:`fashion_optim.batches`'.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import platformdirs
import torch

__all__ = [
    "CLASSES",
    "DEBIAN_DIR",
    "FILES",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "FashionMNIST",
    "cache_dir",
    "load_fashion_mnist",
]

#: The ten class names, in label order.
CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Published MD5 checksums of the uncompressed idx files (Xiao et al., 2017).
FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

#: Where Debian's ``dataset-fashion-mnist`` package installs the files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

_ENV_DATA = "FASHION_OPTIM_DATA"
_SHAPES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}


class DatasetNotFoundError(FileNotFoundError):
    """No complete copy of Fashion-MNIST was found and none could be downloaded."""


class DatasetCorruptError(ValueError):
    """A Fashion-MNIST file exists but its content is not the published one."""


def cache_dir() -> Path:
    """The package's own data folder (created on demand by downloads only)."""
    return Path(platformdirs.user_cache_dir("fashion-optim")) / "data"


@dataclass(frozen=True)
class FashionMNIST:
    """The verified dataset, as torch tensors.

    Attributes
    ----------
    train_images, test_images : torch.Tensor
        ``uint8`` tensors of shape ``[60000, 28, 28]`` and ``[10000, 28, 28]``.
    train_labels, test_labels : torch.Tensor
        ``int64`` tensors of shape ``[60000]`` and ``[10000]``.
    classes : tuple of str
        The ten class names.
    source : pathlib.Path
        The folder the files were read from.
    checksums : dict
        File name to the MD5 of its uncompressed bytes (all equal to :data:`FILES`).
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...] = CLASSES
    source: Path = field(default_factory=Path)
    checksums: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator:
        # Lets callers unpack the contract's five values directly.
        yield from (
            self.train_images,
            self.train_labels,
            self.test_images,
            self.test_labels,
            self.classes,
        )

    @property
    def checksum(self) -> str:
        """One short digest of the four files, used in cache keys."""
        joined = "".join(self.checksums[name] for name in FILES)
        return hashlib.sha256(joined.encode()).hexdigest()[:16]


def _find_file(folder: Path, name: str) -> Path | None:
    for sub in (folder, folder / "FashionMNIST" / "raw"):
        for candidate in (sub / name, sub / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _complete(folder: Path) -> dict[str, Path] | None:
    found = {name: _find_file(folder, name) for name in FILES}
    if all(found.values()):
        return found  # type: ignore[return-value]
    return None


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetCorruptError(
                f"{path} is not a valid gzip file ({exc}). Delete it and provide the data "
                "again (see `python -m fashion_optim data --help`)."
            ) from exc
    return raw


def _parse_idx(name: str, raw: bytes, path: Path) -> torch.Tensor:
    expected = _SHAPES[name]
    fix = "Delete it and provide the data again (see `python -m fashion_optim data --help`)."
    magic = int.from_bytes(raw[:4], "big")
    want_magic = 0x0800 + len(expected)
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(len(expected)))
    if magic != want_magic or dims != expected:
        raise DatasetCorruptError(
            f"{path}: idx header says magic {magic:#06x} and shape {dims}, expected "
            f"{want_magic:#06x} and {expected}. {fix}"
        )
    offset = 4 + 4 * len(expected)
    if len(raw) != offset + math.prod(expected):
        raise DatasetCorruptError(
            f"{path}: {len(raw):,} bytes, but an idx file of shape {expected} holds "
            f"{offset + math.prod(expected):,}. {fix}"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(expected)
    tensor = torch.from_numpy(array.copy())
    return tensor.long() if len(expected) == 1 else tensor


def _verify_and_read(files: dict[str, Path]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    tensors, checksums = {}, {}
    for name, path in files.items():
        raw = _read_bytes(path)
        digest = hashlib.md5(raw).hexdigest()
        if digest != FILES[name]:
            other = [n for n, md5 in FILES.items() if md5 == digest]
            why = (
                f"The file holds {other[0]}'s content (its checksum matches that file's): the "
                "files are swapped or misnamed. Rename them to match their content, or "
                if other
                else "The file is truncated or altered: "
            )
            raise DatasetCorruptError(
                f"{path}: MD5 of the uncompressed content is {digest}, expected {FILES[name]} "
                f"({len(raw):,} bytes read). {why}delete it and provide the data again "
                "(see `python -m fashion_optim data --help`)."
            )
        tensors[name] = _parse_idx(name, raw, path)
        checksums[name] = digest
    return tensors, checksums


#: Errors that mean "this folder cannot take the files", not "the network failed".
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _write_error(folder: Path, exc: OSError) -> OSError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = (
            "free some space there (the download needs about 90 MB), or set "
            f"{_ENV_DATA} (or pass root=) to a folder on another disk"
        )
    else:
        fix = f"make it writable, or set {_ENV_DATA} (or pass root=) to a writable folder"
    return OSError(exc.errno, f"cannot write the download into {folder} ({exc.strerror}): {fix}")


def _download(folder: Path) -> None:
    """Download through torchvision into ``folder/FashionMNIST/raw``, all or nothing.

    torchvision writes straight into its target, so a download cut short (network, full
    disk, Ctrl-C) would leave partial files there for the next run to trip over. It
    downloads into a hidden staging folder instead; only the four extracted idx files
    (whose ``.gz`` MD5s torchvision has checked) are then moved into place, each with an
    atomic rename, and the staging folder is removed whatever happens. Folders created
    here are removed again when the download fails.
    """
    from torchvision.datasets import FashionMNIST as TVFashionMNIST

    created = [p for p in (folder, *folder.parents) if not p.exists()]
    dest = folder / "FashionMNIST" / "raw"
    new_dest = [p for p in (dest, dest.parent) if not p.exists()]
    staging = None
    ok = False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".download-"))
        TVFashionMNIST(str(staging), train=True, download=True)
        TVFashionMNIST(str(staging), train=False, download=True)
        dest.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            os.replace(staging / "FashionMNIST" / "raw" / name, dest / name)
        ok = True
    except OSError as exc:
        if exc.errno in _WRITE_ERRNOS:
            raise _write_error(folder, exc) from exc
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not ok:
            for empty in (*new_dest, *created):  # deepest first; non-empty ones stay
                try:
                    empty.rmdir()
                except OSError:
                    pass


def _describe(folder: Path) -> str:
    if not folder.exists():
        return f"{folder} (does not exist)"
    missing = [name for name in FILES if _find_file(folder, name) is None]
    if len(missing) == len(FILES):
        return f"{folder} (none of the four files)"
    return f"{folder} (missing {', '.join(missing)})"


def _not_found(looked: list[Path], download_error: Exception | None) -> DatasetNotFoundError:
    places = "\n".join(f"  - {_describe(p)}" for p in looked)
    why = f"\nThe download failed: {download_error}" if download_error else ""
    return DatasetNotFoundError(
        "Fashion-MNIST was not found. Looked for the four idx files (plain or .gz) in:\n"
        f"{places}{why}\n"
        "Provide the data in one of three ways:\n"
        "  1. download it: `python -m fashion_optim data --download` (needs the network);\n"
        "  2. on Debian or Ubuntu: `sudo apt-get install dataset-fashion-mnist`;\n"
        f"  3. put the four files in a folder and set {_ENV_DATA}=/that/folder "
        "(or pass root=...)."
    )


def load_fashion_mnist(root: str | os.PathLike | None = None, download: bool | None = None):
    """Locate, verify and load Fashion-MNIST.

    Parameters
    ----------
    root : path-like, optional
        A folder holding the four idx files (plain or ``.gz``). When given, or when the
        environment variable ``FASHION_OPTIM_DATA`` is set, it is the only place used.
    download : bool, optional
        ``True`` downloads when the files are missing, ``False`` never downloads, ``None``
        (default) downloads only when no local copy is found.

    Returns
    -------
    FashionMNIST
        The verified tensors; it unpacks as ``train_images, train_labels, test_images,
        test_labels, classes``.

    Raises
    ------
    DatasetNotFoundError
        When no complete copy exists and none could be downloaded. The message lists every
        folder looked in and the three ways to provide the data.
    DatasetCorruptError
        When a file's content does not match its published checksum or idx header.

    Examples
    --------
    >>> data = load_fashion_mnist()  # doctest: +SKIP
    >>> data.train_images.shape  # doctest: +SKIP
    torch.Size([60000, 28, 28])
    """
    if root is None and os.environ.get(_ENV_DATA):
        root = os.environ[_ENV_DATA]
    if root is not None:
        root = Path(root).expanduser()
        if root.exists() and not root.is_dir():
            raise DatasetNotFoundError(
                f"{root} is a file, but the data root must be a folder holding the four idx "
                f"files. Point root= or {_ENV_DATA} at that folder."
            )
        candidates = [root]
        target = root
    else:
        candidates = [cache_dir(), DEBIAN_DIR]
        target = cache_dir()

    for folder in candidates:
        files = _complete(folder)
        if files is not None:
            return _build(files, folder)

    download_error: Exception | None = None
    if download is not False:
        try:
            _download(target)
        except Exception as exc:  # network errors come in many types
            download_error = exc
        else:
            files = _complete(target)
            if files is not None:
                return _build(files, target)
    raise _not_found(candidates, download_error)


def _build(files: dict[str, Path], folder: Path) -> FashionMNIST:
    tensors, checksums = _verify_and_read(files)
    return FashionMNIST(
        train_images=tensors["train-images-idx3-ubyte"],
        train_labels=tensors["train-labels-idx1-ubyte"],
        test_images=tensors["t10k-images-idx3-ubyte"],
        test_labels=tensors["t10k-labels-idx1-ubyte"],
        source=folder,
        checksums=checksums,
    )
