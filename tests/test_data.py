"""Data: the real files, their checksums, bad copies, and the command line."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import pytest
import torch

from fashion_optim import data as fd
from fashion_optim.data import (
    DEBIAN_DIR,
    FILES,
    DatasetCorruptError,
    DatasetNotFoundError,
    load_fashion_mnist,
)


def test_real_shapes_and_dtypes(fashion):
    assert fashion.train_images.shape == (60000, 28, 28)
    assert fashion.train_images.dtype == torch.uint8
    assert fashion.train_labels.shape == (60000,)
    assert fashion.train_labels.dtype == torch.int64
    assert fashion.test_images.shape == (10000, 28, 28)
    assert fashion.test_labels.shape == (10000,)
    assert len(fashion.classes) == 10
    train_images, _, _, test_labels, classes = fashion
    assert train_images is fashion.train_images and test_labels is fashion.test_labels
    assert classes[9] == "Ankle boot"


def test_real_label_counts(fashion):
    assert torch.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert torch.bincount(fashion.test_labels).tolist() == [1000] * 10


def test_checksums_are_the_published_ones(fashion):
    assert fashion.checksums == FILES


@pytest.fixture(scope="module")
def raw_bytes(fashion):
    """The uncompressed idx bytes, read from wherever the real data was found."""
    return {name: fd._read_bytes(fd._find_file(fashion.source, name)) for name in FILES}


def test_debian_copy_passes(fashion):
    if not DEBIAN_DIR.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    data = load_fashion_mnist(root=DEBIAN_DIR, download=False)
    assert data.source == DEBIAN_DIR
    # Debian re-compressed the files: the .gz MD5s differ from upstream's, the content not.
    gz = (DEBIAN_DIR / "train-images-idx3-ubyte.gz").read_bytes()
    assert hashlib.md5(gz).hexdigest() != "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert torch.equal(data.train_images, load_fashion_mnist(download=False).train_images)


def test_upstream_style_copies_pass(tmp_path, raw_bytes, fashion):
    # torchvision's layout, uncompressed
    raw = tmp_path / "tv" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name, content in raw_bytes.items():
        (raw / name).write_bytes(content)
    a = load_fashion_mnist(root=tmp_path / "tv", download=False)
    # upstream's gzip files, with a gzip header of another origin than Debian's
    gz = tmp_path / "gz"
    gz.mkdir()
    for name, content in raw_bytes.items():
        (gz / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    b = load_fashion_mnist(root=gz, download=False)
    assert torch.equal(a.test_images, fashion.test_images)
    assert torch.equal(b.train_labels, fashion.train_labels)


def _copy(tmp_path, raw_bytes):
    folder = tmp_path / "copy"
    folder.mkdir()
    for name, content in raw_bytes.items():
        (folder / name).write_bytes(content)
    return folder


def test_flipped_byte_is_rejected(tmp_path, raw_bytes):
    folder = _copy(tmp_path, raw_bytes)
    path = folder / "t10k-labels-idx1-ubyte"
    content = bytearray(path.read_bytes())
    content[5000] ^= 0x01
    path.write_bytes(bytes(content))
    with pytest.raises(
        DatasetCorruptError,
        match=r"t10k-labels-idx1-ubyte.*expected "
        r"15d484375f8d13e6eb1aabb0c3f46965",
    ):
        load_fashion_mnist(root=folder, download=False)


def test_truncated_and_bad_gzip_are_rejected(tmp_path, raw_bytes):
    folder = _copy(tmp_path, raw_bytes)
    (folder / "train-labels-idx1-ubyte").write_bytes(raw_bytes["train-labels-idx1-ubyte"][:100])
    with pytest.raises(DatasetCorruptError, match=r"train-labels-idx1-ubyte.*truncated"):
        load_fashion_mnist(root=folder, download=False)
    (folder / "train-labels-idx1-ubyte").unlink()
    good = gzip.compress(raw_bytes["train-labels-idx1-ubyte"])
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetCorruptError, match="not a valid gzip file"):
        load_fashion_mnist(root=folder, download=False)


def test_missing_data_lists_places_and_fixes(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(root=empty, download=False)
    msg = str(info.value)
    assert str(empty) in msg
    assert "--download" in msg and "dataset-fashion-mnist" in msg and "FASHION_OPTIM_DATA" in msg


def test_env_var_is_the_only_place(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_OPTIM_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        load_fashion_mnist(download=False)
    afile = tmp_path / "file"
    afile.write_text("x")
    monkeypatch.setenv("FASHION_OPTIM_DATA", str(afile))
    with pytest.raises(DatasetNotFoundError, match="is a file"):
        load_fashion_mnist(download=False)


def test_download_failure_is_reported(tmp_path, monkeypatch):
    def offline(folder):
        raise OSError("network unreachable")

    monkeypatch.setattr(fd, "_download", offline)
    with pytest.raises(DatasetNotFoundError, match="network unreachable"):
        load_fashion_mnist(root=tmp_path / "none")


def test_download_is_used_when_nothing_local(tmp_path, monkeypatch, raw_bytes):
    def fake_download(folder):
        raw = folder / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for name, content in raw_bytes.items():
            (raw / name).write_bytes(content)

    monkeypatch.setattr(fd, "_download", fake_download)
    data = load_fashion_mnist(root=tmp_path / "dl")
    assert data.source == tmp_path / "dl"


def test_cli_data(capsys, fashion):
    from fashion_optim.__main__ import main

    assert main(["data", "--root", str(fashion.source)]) == 0
    out = capsys.readouterr().out
    assert str(fashion.source) in out and FILES["train-images-idx3-ubyte"] in out


def test_cli_data_missing(tmp_path, capsys):
    from fashion_optim.__main__ import main

    assert main(["data", "--root", str(tmp_path)]) == 1
    assert "dataset-fashion-mnist" in capsys.readouterr().err


def test_swapped_files_are_named_as_swapped(tmp_path, raw_bytes):
    folder = _copy(tmp_path, raw_bytes)
    (folder / "train-labels-idx1-ubyte").write_bytes(raw_bytes["t10k-labels-idx1-ubyte"])
    (folder / "t10k-labels-idx1-ubyte").write_bytes(raw_bytes["train-labels-idx1-ubyte"])
    with pytest.raises(DatasetCorruptError) as info:
        load_fashion_mnist(root=folder, download=False)
    message = str(info.value)
    assert message.startswith(f"{folder / 'train-labels-idx1-ubyte'}: MD5 of the uncompressed")
    assert "holds t10k-labels-idx1-ubyte's content" in message and "swapped" in message
    assert "truncated or altered" not in message


def test_nothing_cached_from_bad_copy(tmp_path, raw_bytes, monkeypatch):
    """A run asked of a bad copy of the data fails on the data, and leaves nothing: no
    result in the cache, nothing in the data folder, nothing kept in memory."""
    from test_experiments import TINY

    from fashion_optim import experiments as ex

    folder = _copy(tmp_path, raw_bytes)
    flipped = bytearray(raw_bytes["t10k-images-idx3-ubyte"])
    flipped[100_000] ^= 0x01  # one pixel: only the checksum can tell
    (folder / "t10k-images-idx3-ubyte").write_bytes(bytes(flipped))
    before = sorted(p.name for p in folder.iterdir())
    results = tmp_path / "results"
    monkeypatch.setenv("FASHION_OPTIM_DATA", str(folder))
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(results))
    ex.get_splits.cache_clear()  # (the splits are loaded once per process)
    try:
        for _ in range(2):  # the second time too: the failure itself was not kept
            with pytest.raises(DatasetCorruptError, match="t10k-images-idx3-ubyte"):
                ex.run(TINY, seed=0, profile="quick")
        assert not results.exists() or list(results.rglob("*")) == []
        assert sorted(p.name for p in folder.iterdir()) == before
        # once the file is right again, the same process loads it
        (folder / "t10k-images-idx3-ubyte").write_bytes(raw_bytes["t10k-images-idx3-ubyte"])
        assert ex.get_splits().data_checksum == fd.load_fashion_mnist().checksum
    finally:
        ex.get_splits.cache_clear()
    shutil.rmtree(folder)
