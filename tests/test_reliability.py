"""Reliability: every bad input and fault gives a clear error and loses nothing.

Data (offline, bad files, unwritable folders), the result cache (truncated, foreign,
concurrent, vanished, read-only or full), training (divergence, interruption),
configuration, and determinism of every chapter's runs.

Nothing here reaches the network: an autouse fixture makes every connection fail as it
does offline, and the tests where "the network is back" serve the four files from memory
through a stand-in for :func:`urllib.request.urlopen`. Read-only and full folders are
emulated at the system-call level (``os.mkdir``, ``os.open``, ``open``), because the
tests may run as root, for whom permission bits stop nothing.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import gzip
import hashlib
import io
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
import test_experiments  # its tiny spec (pytest puts tests/ on sys.path)
import torch
from torch import nn
from torchvision.datasets import FashionMNIST as TVFashionMNIST

from fashion_optim import data as fd
from fashion_optim import experiments as ex
from fashion_optim import files, training
from fashion_optim.__main__ import main
from fashion_optim.data import (
    FILES,
    DatasetCorruptError,
    DatasetNotFoundError,
    load_fashion_mnist,
)
from fashion_optim.experiments import Record, Spec, cache
from fashion_optim.experiments import train as train_module
from fashion_optim.models import LeNet
from fashion_optim.training import Trainer, TrainingDivergedError

# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every connection fails as it does with the network unreachable; returns the tries."""
    tries = []

    def unreachable(address, *args, **kwargs):
        tries.append(address)
        raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(socket, "getaddrinfo", unreachable)
    return tries


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


#: The runs here evaluate on this many of the 10,000 test images: the code path is the
#: same, and on two cores the test set's forward passes would dominate these tiny runs.
TEST_IMAGES = 2000


@pytest.fixture
def small_test_set(monkeypatch):
    full = ex.get_splits()
    small = dataclasses.replace(
        full, test_images=full.test_images[:TEST_IMAGES], test_labels=full.test_labels[:TEST_IMAGES]
    )
    monkeypatch.setattr(train_module, "get_splits", lambda: small)


def listing(folder: Path) -> list[str]:
    """Everything below ``folder`` (hidden files too), as sorted relative paths."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _under(path, folder: Path) -> bool:
    if isinstance(path, int):  # a file descriptor (os.fdopen): where does it point?
        try:
            path = os.readlink(f"/proc/self/fd/{path}")
        except OSError:
            return False
    try:
        return Path(os.path.abspath(os.fsdecode(path))).is_relative_to(folder)
    except TypeError:
        return False


class _FullFile:
    """A file on a disk that fills up: writes past the budget fail with ENOSPC."""

    def __init__(self, fh, written: list[int], budget: int) -> None:
        self._fh, self._written, self._budget = fh, written, budget

    def write(self, data) -> int:
        room = max(self._budget - self._written[0], 0)
        if len(data) > room:
            self._fh.write(data[:room])  # what fits is written: a partial file
            self._written[0] += room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self._fh.name))
        self._written[0] += len(data)
        return self._fh.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()

    def __getattr__(self, name):
        return getattr(self._fh, name)


def break_folder(monkeypatch, folder: Path, how: str, budget: int = 0) -> None:
    """Make ``folder`` read-only (``how="read-only"``) or full after ``budget`` bytes
    (``how="full"``), as the kernel would, whoever runs the tests."""
    folder = Path(folder).resolve()
    real_open, real_mkdir, real_os_open = io.open, os.mkdir, os.open
    written = [0]

    def refuse(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    def mkdir(path, mode=0o777, *, dir_fd=None):
        if how == "read-only" and _under(path, folder):
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
            refuse(path)
        return real_mkdir(path, mode, dir_fd=dir_fd)

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        wants_write = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if how == "read-only" and wants_write and _under(path, folder):
            refuse(path)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and _under(file, folder):
            if how == "read-only":
                refuse(file)
            return _FullFile(real_open(file, mode, *args, **kwargs), written, budget)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)


# --------------------------------------------------------------------------- data files


@pytest.fixture(scope="module")
def good_files(fashion, tmp_path_factory):
    """The four verified idx files, uncompressed, in a folder of their own."""
    folder = tmp_path_factory.mktemp("good")
    for name in FILES:
        (folder / name).write_bytes(fd._read_bytes(fd._find_file(fashion.source, name)))
    return folder


def linked_copy(good_files: Path, folder: Path) -> Path:
    """A data folder whose four files link to the good ones (cheap to break one of)."""
    folder.mkdir(parents=True)
    for name in FILES:
        (folder / name).symlink_to(good_files / name)
    return folder


def _flip(content: bytes, at: int) -> bytes:
    out = bytearray(content)
    out[at] ^= 0x01
    return bytes(out)


def _header_size(name: str) -> int:
    return 4 + 4 * len(fd._SHAPES[name])


def _bad_magic(name: str, good: bytes) -> bytes:
    return good[:2] + b"\x0d" + good[3:]  # type 0x0d: float32 instead of uint8


def _bad_shape(name: str, good: bytes) -> bytes:
    # A consistent idx file with one item fewer: a valid file, not Fashion-MNIST's.
    count = int.from_bytes(good[4:8], "big")
    item = (len(good) - _header_size(name)) // count
    return good[:4] + (count - 1).to_bytes(4, "big") + good[8 : len(good) - item]


def _gzip_corrupt(name: str, good: bytes) -> bytes:
    packed = gzip.compress(good, compresslevel=1, mtime=0)
    return _flip(packed, len(packed) // 2)


# fault -> (what to write as the file (name, content) or None, whether FILES must accept
# the crafted content (a file with a matching MD5 cannot be crafted, so the header check
# is reached by patching the checksum), the error, what the message must say)
FAULTS = {
    "missing": (None, False, DatasetNotFoundError, r"\(missing {name}\)"),
    "truncated": (
        lambda name, good: (name, good[: len(good) // 2]),
        False,
        DatasetCorruptError,
        r"{path}: MD5 .* truncated or altered: delete it and provide the data again",
    ),
    "gzip-corrupt": (
        lambda name, good: (f"{name}.gz", _gzip_corrupt(name, good)),
        False,
        DatasetCorruptError,
        r"{path}\.gz is not a valid gzip file .*Delete it and provide the data again",
    ),
    "flipped-byte": (
        lambda name, good: (name, _flip(good, _header_size(name) + len(good) // 3)),
        False,
        DatasetCorruptError,
        r"{path}: MD5 of the uncompressed content is [0-9a-f]{{32}}, expected {md5} .*"
        r"delete it and provide the data again",
    ),
    "wrong-magic": (
        lambda name, good: (name, _bad_magic(name, good)),
        True,
        DatasetCorruptError,
        r"{path}: idx header says magic 0x0d0[13] .* Delete it and provide the data again",
    ),
    "wrong-shape": (
        lambda name, good: (name, _bad_shape(name, good)),
        True,
        DatasetCorruptError,
        r"{path}: idx header says .*shape \((59999|9999),.* Delete it and provide the data",
    ),
    "short-payload": (
        lambda name, good: (name, good[:-1]),
        True,
        DatasetCorruptError,
        r"{path}: [\d,]+ bytes, but an idx file of shape .* Delete it and provide the data",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_each_bad_file_is_named_nothing_is_written_and_good_data_then_loads(
    fault, good_files, tmp_path, monkeypatch
):
    make, crafted, error, message = FAULTS[fault]
    folder = linked_copy(good_files, tmp_path / "data")
    for name in FILES:
        good = (good_files / name).read_bytes()
        (folder / name).unlink()
        written = None
        if make is not None:
            written, content = make(name, good)
            (folder / written).write_bytes(content)
        before = listing(folder)
        with monkeypatch.context() as mp:
            if crafted:
                mp.setitem(FILES, name, hashlib.md5(content).hexdigest())
            # the default download=None: a missing file means a download (offline here)
            with pytest.raises(error) as info:
                load_fashion_mnist(root=folder)
        msg = str(info.value)
        pattern = message.format(name=name, path=re.escape(str(folder / name)), md5=FILES[name])
        assert re.search(pattern, msg, re.DOTALL), msg
        if error is DatasetNotFoundError:
            assert "dataset-fashion-mnist" in msg and "FASHION_OPTIM_DATA=" in msg
        assert listing(folder) == before  # nothing half-written, no download debris
        if written is not None:
            (folder / written).unlink()
        (folder / name).symlink_to(good_files / name)
    data = load_fashion_mnist(root=folder, download=False)
    assert data.checksums == FILES and data.source == folder


def test_idx_parser_checks_header_and_length_on_its_own():
    name = "t10k-labels-idx1-ubyte"
    header = (0x0801).to_bytes(4, "big") + (10000).to_bytes(4, "big")
    labels = fd._parse_idx(name, header + bytes(10000), Path(name))
    assert labels.dtype == torch.int64 and labels.shape == (10000,)
    for raw, says in [
        (header[:3] + b"\x03" + header[4:] + bytes(10000), "magic 0x0803"),
        (header[:4] + (10001).to_bytes(4, "big") + bytes(10001), r"shape \(10001,\)"),
        (header + bytes(9999), "10,007 bytes, but an idx file of shape"),
        (header + bytes(10001), "10,009 bytes"),
        (b"", r"magic 0x0000 and shape \(0,\)"),
    ]:
        with pytest.raises(DatasetCorruptError, match=f"{name}: .*{says}"):
            fd._parse_idx(name, raw, Path(name))


# --------------------------------------------------------------------------- downloads


class FakeWeb:
    """Stands in for :func:`urllib.request.urlopen`: serves the ``.gz`` files from memory.

    ``cut`` maps a file name to the byte after which the connection drops.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.cut: dict[str, int] = {}
        self.requests: list[str] = []

    def urlopen(self, request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        self.requests.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return _Response(url, self.files[name], self.cut.get(name))


class _Response(io.BytesIO):
    def __init__(self, url: str, body: bytes, cut: int | None) -> None:
        super().__init__(body)
        self.url, self.length, self.cut = url, len(body), cut

    def read(self, size=-1):
        if self.cut is not None and self.tell() >= self.cut:
            raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
        return super().read(size)


@pytest.fixture(scope="module")
def gz_files(good_files):
    return {
        f"{name}.gz": gzip.compress((good_files / name).read_bytes(), compresslevel=1, mtime=0)
        for name in FILES
    }


@pytest.fixture
def web(monkeypatch, gz_files):
    """The network is back: torchvision downloads our .gz files (with their MD5s)."""
    resources = [(n, hashlib.md5(b).hexdigest()) for n, b in gz_files.items()]
    monkeypatch.setattr(TVFashionMNIST, "resources", resources)
    fake = FakeWeb(gz_files)
    monkeypatch.setattr(urllib.request, "urlopen", fake.urlopen)
    return fake


def test_offline_with_no_copy_anywhere_lists_places_and_fixes(tmp_path, monkeypatch, offline):
    monkeypatch.delenv("FASHION_OPTIM_DATA", raising=False)
    cache = tmp_path / "user-cache" / "data"
    debian = tmp_path / "no-debian"
    monkeypatch.setattr(fd, "cache_dir", lambda: cache)
    monkeypatch.setattr(fd, "DEBIAN_DIR", debian)
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist()
    msg = str(info.value)
    assert offline, "the real download should have tried the network"
    assert f"{cache} (does not exist)" in msg and f"{debian} (does not exist)" in msg
    assert "The download failed" in msg and os.strerror(errno.ENETUNREACH) in msg
    for fix in ("fashion_optim data --download", "apt-get install dataset-fashion-mnist"):
        assert fix in msg
    assert "FASHION_OPTIM_DATA=" in msg
    assert not (tmp_path / "user-cache").exists()  # not even an empty folder is left


@pytest.mark.parametrize("fault", ["network drops", "disk full", "read-only"])
def test_failed_download_says_why_and_leaves_nothing(fault, tmp_path, monkeypatch, web, gz_files):
    target = tmp_path / "data"
    if fault == "network drops":  # mid-way through the third file
        web.cut["t10k-images-idx3-ubyte.gz"] = 1 << 20
        says = [os.strerror(errno.ECONNRESET)]
    elif fault == "disk full":  # while extracting the first file
        target.mkdir()
        break_folder(
            monkeypatch, target, "full", budget=len(gz_files["train-images-idx3-ubyte.gz"])
        )
        says = [os.strerror(errno.ENOSPC), f"into {target}", "free some space"]
    else:
        target.mkdir()
        break_folder(monkeypatch, target, "read-only")
        says = [os.strerror(errno.EACCES), f"into {target}", "make it writable"]
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(root=target)
    msg = str(info.value)
    for words in [*says, "The download failed", "FASHION_OPTIM_DATA"]:
        assert words in msg, msg
    assert listing(target) == []  # no partial .gz, no partial idx file, no staging folder
    if fault == "network drops":
        assert not target.exists()  # the folder the download created is gone too


def test_download_puts_exactly_the_four_files_in_place(tmp_path, web):
    target = tmp_path / "data"
    data = load_fashion_mnist(root=target)
    assert data.source == target and data.checksums == FILES
    raw = ["FashionMNIST", "FashionMNIST/raw"]
    assert listing(target) == sorted(raw + [f"FashionMNIST/raw/{name}" for name in FILES])
    assert len(web.requests) >= 4
    # the next run finds them and does not download again
    web.requests.clear()
    assert load_fashion_mnist(root=target).checksums == FILES and not web.requests


def test_data_env_at_a_missing_folder(tmp_path, monkeypatch, good_files):
    missing = tmp_path / "nowhere" / "data"
    monkeypatch.setenv("FASHION_OPTIM_DATA", str(missing))
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(download=False)
    assert f"{missing} (does not exist)" in str(info.value)
    assert "Looked for the four idx files" in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="The download failed"):
        load_fashion_mnist()  # offline
    assert not (tmp_path / "nowhere").exists()  # neither call created anything
    monkeypatch.setenv("FASHION_OPTIM_DATA", str(good_files))
    assert load_fashion_mnist().source == good_files


def test_data_env_at_a_file_is_refused_without_download(tmp_path, monkeypatch, offline, good_files):
    afile = tmp_path / "fashion.npz"
    afile.write_bytes(b"not a folder")
    monkeypatch.setenv("FASHION_OPTIM_DATA", str(afile))
    with pytest.raises(DatasetNotFoundError, match=rf"{re.escape(str(afile))} is a file.*"):
        load_fashion_mnist(download=True)
    assert not offline and afile.read_bytes() == b"not a folder"
    assert listing(tmp_path) == ["fashion.npz"]
    monkeypatch.setenv("FASHION_OPTIM_DATA", str(good_files))
    assert load_fashion_mnist(download=True).source == good_files


# --------------------------------------------------------------------------- result cache

KIND = "reliability"


@pytest.fixture(autouse=True)
def reliability_kind(monkeypatch):
    """A kind of computation of these tests' own, keyed on the run's code."""
    monkeypatch.setitem(cache.KINDS, KIND, cache.KINDS["run"])
    cache.code_hash.cache_clear()
    yield
    cache.code_hash.cache_clear()


def cached(value: float, calls: list, config=None, **kwargs):
    """``experiments.cached`` with a computation that counts its calls."""

    def compute():
        calls.append(value)
        return {"x": np.arange(4.0) * value}, {"value": value}

    return cache.cached(KIND, config or {"v": 1}, compute, data_checksum="data", **kwargs)


def entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.npz"))


def leftovers(cache: Path) -> list[str]:
    return [p for p in listing(cache) if p.endswith(".tmp") or "/." in p or p.startswith(".")]


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"",
        lambda raw: raw[:1],
        lambda raw: raw[: len(raw) // 2],
        lambda raw: raw[:-1],
        lambda raw: b"PK\x03\x04" + b"\x00" * 100,
        lambda raw: _flip(raw, raw.index(np.arange(4.0).tobytes()) + 9),
        # the member's name in the zip's central directory (no CRC covers it): "a:x" is
        # no longer an array's name, and zip reads the rest without a complaint
        lambda raw: _flip(raw, raw.rindex(b"a:x.npy") + 1),
    ],
    ids=[
        "empty",
        "one-byte",
        "half",
        "last-byte-missing",
        "garbage-zip",
        "flipped-data-byte",
        "flipped-directory-name",
    ],
)
def test_damaged_entry_is_recomputed_and_rewritten(damage, tmp_cache):
    calls = []
    cached(1.0, calls)
    (entry,) = entries(tmp_cache)
    entry.write_bytes(damage(entry.read_bytes()))
    # (a flipped byte in the array data is caught by the zip member's CRC-32)
    with pytest.warns(RuntimeWarning, match="unreadable cache entry .*; recomputing it"):
        arrays, meta = cached(1.0, calls)
    np.testing.assert_array_equal(arrays["x"], np.arange(4.0))
    assert meta["value"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arrays, _ = cached(1.0, calls)  # the rewritten entry is used, silently
    np.testing.assert_array_equal(arrays["x"], np.arange(4.0))
    assert len(calls) == 2 and leftovers(tmp_cache) == []


def test_entry_of_another_library_version_is_not_used(tmp_cache, monkeypatch):
    calls = []
    cached(1.0, calls)
    with monkeypatch.context() as mp:
        mp.setattr(cache, "code_hash", lambda kind: "another-version")
        _, meta = cached(2.0, calls)  # the new code computes 2.0, not the old 1.0
        assert meta["value"] == 2.0 and calls == [1.0, 2.0]
    assert len(entries(tmp_cache)) == 2  # the old version's entry is kept for it
    assert cached(3.0, calls)[1]["value"] == 1.0 and calls == [1.0, 2.0]


def test_entry_whose_key_does_not_match_its_name_is_recomputed(tmp_cache):
    calls = []
    cached(1.0, calls, config={"v": 1})
    cached(2.0, calls, config={"v": 2})
    one, two = (cache.cache_key(KIND, {"v": v}, "data") for v in (1, 2))
    path = tmp_cache / KIND
    shutil.copyfile(path / f"{one}.npz", path / f"{two}.npz")  # v=1's result under v=2's key
    with pytest.warns(RuntimeWarning, match=r"does not match its file name\); recomputing"):
        arrays, meta = cached(2.0, calls, config={"v": 2})
    assert meta["value"] == 2.0 and meta["key"] == two  # never the other entry's figure
    np.testing.assert_array_equal(arrays["x"], np.arange(4.0) * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cached(9.0, calls, config={"v": 2})[1]["value"] == 2.0


def test_readers_never_see_a_partial_entry(tmp_path):
    path = tmp_path / "entry.npz"
    files.atomic_write(path, lambda fh: fh.write(b"old" * 1000))
    seen = []

    def write(fh):
        for _ in range(10):
            fh.write(b"new" * 100)
            fh.flush()
            seen.append(path.read_bytes())  # what a reader sees while the writer writes

    files.atomic_write(path, write)
    assert set(seen) == {b"old" * 1000}
    assert path.read_bytes() == b"new" * 1000
    assert listing(tmp_path) == ["entry.npz"]


def test_interrupted_save_keeps_the_old_entry_and_no_temp(tmp_cache, monkeypatch):
    calls = []
    cached(1.0, calls)
    (entry,) = entries(tmp_cache)
    before = entry.read_bytes()

    def interrupted(fd):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(os, "fsync", interrupted)  # after the bytes are written, before the rename
        with pytest.raises(KeyboardInterrupt):
            cached(2.0, calls, fresh=True)
    assert entry.read_bytes() == before and leftovers(tmp_cache) == []


_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import torch
    from fashion_optim import experiments as ex
    from fashion_optim.batches import Splits
    from fashion_optim.experiments import Spec
    ready, go, data = sys.argv[1:]
    spec = Spec("tiny", lr=0.05, optimizer_kwargs={"momentum": 0.9}, epochs=1,
                batch_size=16, train_subset=600, val_subset=200)
    splits = Splits(**torch.load(data))  # the parent's, cut to what the spec uses
    from fashion_optim.experiments import train
    train.get_splits = lambda: splits
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.005)
    r = ex.run(spec, seed=0, profile="quick", fresh=True, progress=False)
    print(json.dumps({"loss": r.history.batch_loss, "test_loss": r.test_loss,
                      "key": r.meta["key"]}))
    """
)


def test_two_processes_writing_the_same_entry(tmp_path, tmp_cache):
    # The writers start from the data already loaded here (loading it twice more would
    # take most of the test's time), cut to the 600 + 200 images the spec trains on.
    full, cut = ex.get_splits(), {"train": 600, "val": 200, "test": TEST_IMAGES}
    data = {f.name: getattr(full, f.name) for f in dataclasses.fields(full)}
    for part, n in cut.items():
        for field in ("images", "labels", "index") if part != "test" else ("images", "labels"):
            data[f"{part}_{field}"] = data[f"{part}_{field}"][:n].clone()
    torch.save(data, tmp_path / "splits.pt")
    env = {**os.environ, "FASHION_OPTIM_CACHE": str(tmp_cache)}
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, tmp_path / f"ready{i}", go, tmp_path / "splits.pt"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 240
        while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the writers did not start"
            time.sleep(0.05)
        go.touch()
        reads = 0
        while any(p.poll() is None for p in procs):  # read while they train and write
            for entry in entries(tmp_cache):
                arrays, meta = cache.read_entry(entry)  # complete, or not there at all
                assert meta["key"] == entry.stem
                reads += 1
            time.sleep(0.002)
        outs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    a, b = (json.loads(out.strip().splitlines()[-1]) for out, _ in outs)
    assert a == b
    (entry,) = entries(tmp_cache)
    arrays, meta = cache.read_entry(entry)
    assert entry.stem == a["key"] and arrays["history/batch_loss"].tolist() == a["loss"]
    assert meta["test_loss"] == a["test_loss"] and leftovers(tmp_cache) == []


# test_experiments' tiny spec, without its recorders: these tests need only the history
TINY = test_experiments.TINY.replace(record=Record())


def test_cache_folder_deleted_between_two_runs(tmp_cache, small_test_set):
    first = ex.run(TINY, seed=0, profile="quick")
    shutil.rmtree(tmp_cache)
    again = ex.run(TINY, seed=0, profile="quick")
    assert not again.from_cache and again.history.same_as(first.history)
    assert len(entries(tmp_cache)) == 1 and ex.run(TINY, seed=0, profile="quick").from_cache


def test_cache_folder_deleted_between_compute_and_save(tmp_cache):
    calls = []
    cached(1.0, calls)

    def compute_then_clear():
        shutil.rmtree(tmp_cache)  # `python -m fashion_optim cache --clear` meanwhile
        return {"x": np.arange(4.0) * 2}, {"value": 2.0}

    arrays, meta = cache.cached(KIND, {"v": 2}, compute_then_clear, data_checksum="data")
    assert meta["value"] == 2.0 and len(entries(tmp_cache)) == 1  # saved anew

    # ... and replaced by a file while a result is computed: the result is still returned,
    # with a warning
    def compute_then_block():
        shutil.rmtree(tmp_cache)
        tmp_cache.write_text("not a folder")
        return {"x": np.arange(4.0) * 3}, {"value": 3.0}

    with pytest.warns(RuntimeWarning, match="could not write the cache entry.*FASHION_OPTIM_CACHE"):
        arrays, meta = cache.cached(KIND, {"v": 3}, compute_then_block, data_checksum="data")
    assert meta["value"] == 3.0 and tmp_cache.read_text() == "not a folder"
    np.testing.assert_array_equal(arrays["x"], np.arange(4.0) * 3)
    # the next look-up says what is wrong, before computing anything
    with pytest.raises(cache.CacheError, match=r"is a file, not a folder .*FASHION_OPTIM_CACHE="):
        cached(4.0, calls, config={"v": 4})
    assert calls == [1.0]


def test_cache_folder_deleted_while_saving(tmp_cache, monkeypatch):
    calls = []
    real = cache.atomic_write

    def write_then_clear(path, write):
        def clearing(fh):
            write(fh)
            shutil.rmtree(tmp_cache)  # the temporary file and the folder vanish

        real(path, clearing)

    with monkeypatch.context() as mp:
        mp.setattr(cache, "atomic_write", write_then_clear)
        with pytest.warns(RuntimeWarning, match="could not write the cache entry"):
            _, meta = cached(1.0, calls)
    assert meta["value"] == 1.0 and listing(tmp_cache) == []
    assert cached(1.0, calls)[1]["value"] == 1.0 and calls == [1.0, 1.0]  # recomputed
    assert len(entries(tmp_cache)) == 1


@pytest.mark.parametrize("how", ["read-only", "full"])
def test_unwritable_cache_still_serves_and_says_how_to_fix(how, tmp_cache, monkeypatch):
    calls = []
    cached(1.0, calls)
    before = listing(tmp_cache)
    with monkeypatch.context() as mp:
        break_folder(mp, tmp_cache, how)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert cached(1.0, calls)[1]["value"] == 1.0  # existing entries still serve
        with pytest.warns(RuntimeWarning) as caught:
            arrays, meta = cached(2.0, calls, config={"v": 2})
    msg = str(caught[0].message)
    assert "the result is used but not kept" in msg and "FASHION_OPTIM_CACHE" in msg
    assert "writable" in msg and "free some space" in msg
    assert meta["value"] == 2.0 and calls == [1.0, 2.0]
    np.testing.assert_array_equal(arrays["x"], np.arange(4.0) * 2)
    assert listing(tmp_cache) == before  # no temporary file left behind


# --------------------------------------------------------------------------- training


def test_learning_rate_10_on_the_real_model_diverges_with_epoch_and_step(tmp_cache, small_test_set):
    with pytest.raises(TrainingDivergedError) as info:
        ex.run(TINY.replace(lr=10.0), seed=0, profile="quick")
    err = info.value
    steps = 600 // 16 + 1
    assert err.epoch == 1 and 1 < err.step <= steps and err.lr == 10.0
    assert not math.isfinite(err.loss) or err.loss > err.limit
    assert re.search(
        r"training diverged: loss is \S+ .*at epoch 1, mini-batch \d+ \(learning rate 10\)\. "
        r"Lower the learning rate",
        str(err),
    )
    # the failure is a result: cached, with the history up to where it stopped
    with pytest.raises(TrainingDivergedError) as again:
        ex.run(TINY.replace(lr=10.0), seed=0, profile="quick")
    assert again.value.meta["from_cache"] and str(again.value) == str(err)
    assert len(again.value.history.batch_loss) == err.step - 1


def test_trainer_divergence_limit_follows_the_first_loss():
    torch.manual_seed(0)
    model = LeNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"diverge_threshold must be > 1 or None, got 0\.5"):
        Trainer(model, nn.CrossEntropyLoss(), opt, diverge_threshold=0.5)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, device="cpu", diverge_threshold=10)
    x = torch.randn(8, 1, 28, 28)
    batches = [(x, torch.zeros(8, dtype=torch.int64))] * 3
    calls = []

    def loss(logits, y):  # finite, but a thousand times too high from the third batch
        calls.append(1)
        return nn.functional.cross_entropy(logits, y) * (1 if len(calls) < 3 else 1e3)

    trainer.loss_fn = loss
    with pytest.raises(TrainingDivergedError, match=r"above the limit .* mini-batch 3") as info:
        trainer.fit(batches, epochs=1)
    assert math.isfinite(info.value.loss)
    assert info.value.limit == pytest.approx(10 * trainer.history.batch_loss[0])


def test_range_test_records_its_early_stop(tmp_cache):
    ramp = {"start_lr": 1e-3, "end_lr": 1e3, "num_iter": 40, "profile": "quick"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # few points left to suggest from
        res = ex.run_range_test(TINY, seed=0, **ramp)
        again = ex.run_range_test(TINY, seed=0, **ramp)  # from the cache
    assert res.diverged is True and isinstance(res.stopped_at, int)
    assert 0 < res.stopped_at < 39
    assert len(res.lrs) in (res.stopped_at, res.stopped_at + 1)
    np.testing.assert_allclose(res.lrs, np.geomspace(1e-3, 1e3, 40)[: len(res.lrs)])
    assert again.diverged is True and again.stopped_at == res.stopped_at
    np.testing.assert_array_equal(again.losses, res.losses)
    assert len(entries(tmp_cache)) == 1


class _Interrupt(training.Recorder):
    def __init__(self, at: int) -> None:
        self.at = at

    def after_step(self, trainer: Trainer) -> None:
        if trainer.step == self.at:
            raise KeyboardInterrupt


def test_interrupt_mid_epoch_leaves_no_entry_and_no_temp(tmp_cache, small_test_set, monkeypatch):
    real = Record.recorders
    with monkeypatch.context() as mp:
        mp.setattr(Record, "recorders", lambda self: [*real(self), _Interrupt(at=5)])
        with pytest.raises(KeyboardInterrupt):
            ex.run(TINY, seed=0, profile="quick")
    assert listing(tmp_cache) == []
    done = ex.run(TINY, seed=0, profile="quick")  # the next run trains it whole
    assert not done.from_cache and len(done.history.batch_loss) == done.meta["steps_per_epoch"]
    assert done.meta["steps_per_epoch"] > 5  # the interrupt above was mid-epoch


def test_interrupt_while_an_entry_is_written_leaves_no_temp(tmp_cache, small_test_set):
    # Ctrl-C while the entry's bytes are on their way to disk (at the fsync before the
    # rename): its temporary file exists then, and must go
    real_fsync = os.fsync
    seen = []

    def interrupted(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.endswith(".tmp") and ".npz." in name:
            seen.append(name)
            assert Path(name).is_file()
            raise KeyboardInterrupt
        return real_fsync(fd)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", interrupted)
        with pytest.raises(KeyboardInterrupt):
            ex.run(TINY, seed=0, profile="quick")
    assert seen and not Path(seen[0]).exists()
    assert listing(tmp_cache) == ["CACHEDIR.TAG", "run"]  # (an empty folder of its kind)
    assert not ex.run(TINY, seed=0, profile="quick").from_cache


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "call",
    [
        lambda: TINY.resolve("fast"),
        lambda: ex.run(TINY, profile="fast"),
        lambda: ex.run_seeds(TINY, profile="fast"),
        lambda: ex.run_range_test(TINY, profile="fast"),
    ],
    ids=["resolve", "run", "run_seeds", "run_range_test"],
)
def test_unknown_profile_lists_the_choices(call):
    with pytest.raises(ValueError, match=r"unknown profile 'fast'.*valid choices: \['full', 'qu"):
        call()


def test_unknown_profile_on_the_command_line(capsys):
    assert main(["run", "sgd", "--profile", "fast"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown profile 'fast' (from the argument); valid choices")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "Adam"}, r"unknown optimizer 'Adam'; valid choices: \['adam', "),
        ({"lr": float("nan")}, r"lr must be a finite number in \(0, 1000\], got nan"),
        ({"lr": float("inf")}, r"lr must be a finite number in \(0, 1000\], got inf"),
        ({"lr": "0.1"}, r"lr must be a finite number in \(0, 1000\], got '0\.1'"),
        ({"lr": 1e308}, r"lr must be a finite number in \(0, 1000\], got 1e\+308"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        ({"batch_size": True}, r"batch_size must be an integer >= 1, got True"),
        ({"epochs": True}, r"epochs must be an integer >= 1, got True"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1\.0"),
        ({"train_subset": 0}, r"train_subset must be None \(the whole split\) or an integer in"),
        ({"train_subset": True}, r"train_subset must be None .* in \[1, 50000\], got True"),
        ({"train_subset": 10**6}, r"train_subset must be None .* in \[1, 50000\], got 1000000"),
        ({"val_subset": 10_001}, r"val_subset must be None .* in \[1, 10000\], got 10001"),
        ({"optimizer": ["sgd"]}, r"unknown optimizer \['sgd'\]; valid choices"),
        ({"scheduler": 123}, r"unknown scheduler 123; valid choices: \['constant', "),
        (
            {"scheduler": "step", "scheduler_kwargs": {"step_size": 0}},
            r"scheduler_kwargs\['step_size'\] must be an integer >= 1, got 0",
        ),
        (
            {"scheduler": "cosine_warm_restarts", "scheduler_kwargs": {"T_0": 2.5}},
            r"scheduler_kwargs\['T_0'\] must be an integer >= 1, got 2\.5",
        ),
        (
            {"record": Record(gradients={"conv1.weight": [0]})},
            r"record\.gradients names no parameter of the model: 'conv1\.weight'; valid names",
        ),
        (
            {"record": Record(state={"features.0.bias": [6]})},
            r"record\.state\['features\.0\.bias'\] holds index 6; valid flat indices .* \[0, 5\]",
        ),
        (
            {"record": Record(snapshot_every=0)},
            r"record\.snapshot_every must be None or an integer >= 1, got 0",
        ),
        (
            {"optimizer_kwargs": {"momentun": 0.9}},
            r"unknown optimizer_kwargs \['momentun'\] for 'sgd'; valid choices: \['momentum'",
        ),
        ({"optimizer_kwargs": {"momentum": -0.9}}, r"momentum must be in \[0, inf\), got -0\.9"),
        ({"optimizer_kwargs": {"dampening": 1.5}}, r"dampening must be in \[0, 1\], got 1\.5"),
        ({"optimizer_kwargs": {"weight_decay": -1}}, r"weight_decay must be in \[0, inf\)"),
        ({"optimizer_kwargs": {"nesterov": True}}, r"'sgd': Nesterov momentum requires"),
        (
            {"optimizer": "adam", "optimizer_kwargs": {"betas": (1.0, 0.999)}},
            r"'adam': betas\[0\] must be in \[0, 1\), got 1\.0",
        ),
        (
            {"optimizer": "adamw", "optimizer_kwargs": {"betas": (0.9, -0.1)}},
            r"betas\[1\] must be in \[0, 1\), got -0\.1",
        ),
        (
            {"optimizer": "adam", "optimizer_kwargs": {"betas": 0.9}},
            r"betas must be a pair \(beta1, beta2\), got 0\.9",
        ),
        ({"optimizer": "adam", "optimizer_kwargs": {"eps": -1e-8}}, r"eps must be in \[0, inf\)"),
        (
            {"optimizer": "scratch_adam", "optimizer_kwargs": {"betas": (0.9, 1.0)}},
            r"betas\[1\] must be in \[0, 1\), got 1\.0",
        ),
        ({"scheduler": "step"}, r"the 'step' scheduler needs step_size"),
        (
            {"scheduler": "cosine", "scheduler_kwargs": {"T_maxx": 3}},
            r"invalid scheduler_kwargs for 'cosine': .*T_maxx",
        ),
    ],
)
def test_invalid_settings_fail_before_any_data_is_loaded(changes, message, monkeypatch):
    def no_data():
        raise AssertionError("a bad spec must fail before the data is loaded")

    monkeypatch.setattr(train_module, "get_splits", no_data)
    spec = TINY.replace(**changes)
    with pytest.raises(ValueError, match=message):
        spec.resolve("quick")
    with pytest.raises(ValueError, match=message):
        ex.run(spec, seed=0, profile="quick")


@pytest.mark.parametrize("seed", [-1, 2**32, 2**63, 2**64 + 1])
def test_a_seed_out_of_range_fails_before_any_data_is_loaded(seed, monkeypatch, capsys):
    def no_data():
        raise AssertionError("a bad seed must fail before the data is loaded")

    monkeypatch.setattr(train_module, "get_splits", no_data)
    said = rf"a seed \(of '{TINY.name}'\) must be an integer in \[0, 2\*\*32 - 1\], got {seed}"
    with pytest.raises(ValueError, match=said):
        ex.run_many([(TINY, 0), (TINY, seed)], profile="quick")
    with pytest.raises(ValueError, match=said):
        ex.run(TINY, seed=seed, profile="quick")
    assert main(["run", "sgd", "--profile", "quick", "--seed", str(seed)]) == 2
    assert capsys.readouterr().err == (
        f"error: --seed must be an integer in [0, 2**32 - 1], got {seed}.\n"
    )


def test_a_seed_given_twice_on_the_command_line_is_refused(monkeypatch, capsys):
    def no_data():
        raise AssertionError("a bad seed must fail before the data is loaded")

    monkeypatch.setattr(train_module, "get_splits", no_data)
    argv = ["run", "sgd", "--profile", "quick", "--seed", "0", "--seed", "0", "--seed", "1"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "error: --seed 0 is given more than once; give each seed once (the mean and "
        "standard deviation are over distinct seeds).\n"
    )


@pytest.mark.parametrize(
    ("changes", "optimizer", "scheduler"),
    [
        (
            {"optimizer": "adam", "optimizer_kwargs": {"betas": (0.0, 0.999), "eps": 0.0}},
            torch.optim.Adam,
            None,
        ),
        (
            {"optimizer_kwargs": {"momentum": 0.9, "nesterov": True, "dampening": 0}},
            torch.optim.SGD,
            None,
        ),
        ({"optimizer": "rmsprop", "optimizer_kwargs": {"alpha": 0.9}}, torch.optim.RMSprop, None),
        (
            {"scheduler": "onecycle", "scheduler_kwargs": {"max_lr": 0.1}},
            torch.optim.SGD,
            torch.optim.lr_scheduler.OneCycleLR,
        ),
        (
            {"scheduler": "lambda", "scheduler_kwargs": {"lr_lambda": "exp_0.95"}},
            torch.optim.SGD,
            torch.optim.lr_scheduler.LambdaLR,
        ),
    ],
)
def test_valid_settings_build_what_they_say(changes, optimizer, scheduler):
    from fashion_optim.experiments.specs import build_optimizer, build_scheduler

    cfg = TINY.replace(**changes).resolve("quick")
    opt = build_optimizer(cfg, [torch.nn.Parameter(torch.zeros(2))])
    assert type(opt) is optimizer and opt.param_groups[0]["lr"] == cfg.lr
    for key, value in cfg.optimizer_kwargs.items():
        assert opt.param_groups[0][key] == value, key
    sched = build_scheduler(cfg, opt, steps_per_epoch=3)
    assert (sched is None) if scheduler is None else type(sched) is scheduler
    if cfg.scheduler == "lambda":  # the named factor, not a copy: 0.95 per epoch
        opt.step()
        sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(cfg.lr * 0.95)


def test_a_none_subset_overrides_the_profiles():
    cfg = TINY.replace(train_subset=None, val_subset=None).resolve("quick")
    assert cfg.train_subset is None and cfg.val_subset is None
    assert TINY.replace(train_subset="profile").resolve("quick").train_subset == 10000


# --------------------------------------------------------------------------- determinism

#: Every spec a chapter or a note page trains, at a reduced size: two fresh runs of each
#: must match bit for bit. The shared runs (:data:`experiments.NAMED`), the schedules of
#: chapter 5 and the results page (their StepLR pitfall pair and chapter 4's short runs
#: are these specs at other rates and lengths), the full-budget one-cycle run and the
#: snapshot runs behind chapter 2's loss surface.
REDUCED = {"train_subset": 1000, "val_subset": 500, "epochs": 1}
EXTRA_SPECS: dict[str, Spec] = {
    **{f"schedules/{name}": spec for name, spec in ex.schedule_specs(0.01, 0.05).items()},
    **{f"bias/{lr}-{c}": spec for (lr, c), spec in ex.bias_correction_specs((1e-3,)).items()},
    **{f"sweep/{k}": ex.sweep_specs([k])[(k, ex.SWEEP_GRIDS[k][2])] for k in ex.SWEEP_GRIDS},
    "results/onecycle_full": ex.full_budget_onecycle(0.05),
    **{f"ch2/snapshots_{key}": spec for key, spec in ex.snapshot_specs().items()},
}
CHAPTER_SPECS: dict[str, Spec] = {
    **{f"note/{name}": spec for name, spec in ex.NAMED.items()},
    **EXTRA_SPECS,
}


@pytest.mark.parametrize("key", ["momentum", "adam"])
def test_range_tests_are_bitwise_identical(key, small_test_set):
    spec = ex.NAMED[key].replace(**REDUCED)
    ramp = {"num_iter": 30, "profile": "quick", "fresh": True, "progress": False}
    a = ex.run_range_test(spec, 1, **ramp)
    b = ex.run_range_test(spec, 1, **ramp)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert (a.suggested_lr, a.lr_min, a.lr_max) == (b.suggested_lr, b.lr_min, b.lr_max)


@pytest.mark.parametrize("name", list(CHAPTER_SPECS))
def test_same_spec_and_seed_give_bitwise_identical_runs(name, small_test_set):
    spec = CHAPTER_SPECS[name].replace(**REDUCED)
    a = ex.run(spec, seed=1, profile="quick", fresh=True, progress=False)
    b = ex.run(spec, seed=1, profile="quick", fresh=True, progress=False)
    assert not a.from_cache and not b.from_cache
    assert a.history.same_as(b.history)
    assert (a.test_loss, a.test_acc) == (b.test_loss, b.test_acc)
    assert a.records.keys() == b.records.keys()
    for key, value in a.records.items():
        np.testing.assert_array_equal(b.records[key], value, err_msg=key)


def test_snapshot_runs_retrace_the_shared_runs(small_test_set):
    # The loss-surface figure draws the shared runs' paths from shorter runs that keep
    # snapshots: they must start from the same weights and see the same mini-batches, so
    # take the same steps bit for bit; and the three optimizers start alike.
    snaps = {f"{key} snapshots": spec for key, spec in ex.snapshot_specs(profile="quick").items()}
    shared = {key: ex.NAMED[key] for key in ex.snapshot_specs(profile="quick")}
    specs = {k: s.replace(train_subset=500, val_subset=200) for k, s in {**shared, **snaps}.items()}
    runs = ex.run_specs(specs, seeds=[1], profile="quick", fresh=True, progress=False)
    for key in shared:
        short, long = runs[f"{key} snapshots"].results[0], runs[key].results[0]
        assert 0 < short.history.epochs < long.history.epochs
        n = len(short.history.batch_loss)
        assert short.history.batch_loss == long.history.batch_loss[:n], key
        assert short.records["param_steps"][0] == 0
        np.testing.assert_array_equal(
            short.records["params"][0], runs["sgd snapshots"].results[0].records["params"][0]
        )
    assert len({runs[key].results[0].history.batch_loss[0] for key in specs}) == 1
