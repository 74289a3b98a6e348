"""The result cache: what a key depends on, clearing that never deletes a user's file,
and the errors and messages of a cache folder that cannot be used."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fashion_optim.cli import main
from fashion_optim.experiments import cache

PACKAGE = Path(cache.__file__).resolve().parents[1]

#: Which computations each module of the package decides, written out by hand: a change
#: in the module must change exactly these kinds' keys. (Everything a run imports also
#: decides the range test and the loss surface, which are built from the same model,
#: optimizer and data code.) Both loss surfaces, the PCA plane's and the random plane's,
#: are computed in experiments/surface.py; the sharpness (the Hessian's largest
#: eigenvalue at a run's snapshots) in experiments/curvature.py.
SURFACES = {"loss_surface", "random_plane_surface"}
ALL = {"run", "range_test", *SURFACES, "sharpness"}
DEPENDS: dict[str, set[str]] = {
    "data.py": ALL,
    "batches.py": ALL,
    "models.py": ALL,
    "training.py": ALL,
    "recorders.py": ALL,
    "device.py": ALL,
    "files.py": ALL,
    "optimizers.py": ALL,
    "lr.py": ALL,
    "lr_finder.py": {"range_test"},
    "experiments/profiles.py": ALL,
    "experiments/specs.py": ALL,
    "experiments/train.py": ALL,
    "pin.py": ALL,  # the CPU kernels (and its settings are in every key too)
    "experiments/rangetest.py": {"range_test"},
    "experiments/surface.py": SURFACES,
    "experiments/curvature.py": {"sharpness"},
    "landscape.py": SURFACES,
    "toys.py": set(),
    "plotting/__init__.py": set(),
    "plotting/style.py": set(),
    "plotting/axes.py": set(),
    "plotting/tables.py": set(),
    "plotting/figures.py": set(),
    "plotting/animation.py": set(),
    "plotting/rangetests.py": set(),
    "plotting/sweeps.py": set(),
    "plotting/schedules.py": set(),
    "plotting/headline.py": set(),
    "plotting/theory.py": set(),
    "plotting/adam.py": set(),
    "plotting/landscape.py": set(),
    "plotting/momentum.py": set(),
    "ewma.py": {"range_test"},
    "cli.py": set(),
    "__main__.py": set(),
    "__init__.py": set(),
    "experiments/__init__.py": set(),
    "experiments/cache.py": set(),
    "experiments/executors.py": set(),
    "experiments/kinds.py": set(),
    "experiments/runner.py": set(),
    "experiments/studies.py": set(),
    "experiments/selection.py": set(),
    "experiments/tuning.py": set(),
    "suggest.py": {"range_test"},
    "stats.py": set(),
    "theory.py": set(),
    "curvature.py": {"sharpness"},
    "record.py": set(),
}


def _hashes(package_dir: Path) -> dict[str, str]:
    cache.code_hash.cache_clear()
    try:
        return {kind: cache.code_hash(kind, package_dir) for kind in cache.KINDS}
    finally:
        cache.code_hash.cache_clear()


def test_every_module_of_the_package_is_listed():
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    assert modules == set(DEPENDS), "add the new module to DEPENDS with what it decides"


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory):
    copy = tmp_path_factory.mktemp("pkg") / "fashion_optim"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize("module", sorted(DEPENDS))
def test_editing_a_module_changes_the_keys_of_exactly_what_depends_on_it(module, package_copy):
    before = _hashes(package_copy)
    assert before == _hashes(PACKAGE)  # the copy hashes as the package does
    path = package_copy / module
    text = path.read_text()
    try:
        path.write_text(text + "\nEDITED_FOR_A_TEST = 1\n")
        after = _hashes(package_copy)
    finally:
        path.write_text(text)
    changed = {kind for kind in cache.KINDS if after[kind] != before[kind]}
    assert changed == DEPENDS[module]


def test_comments_and_docstrings_change_no_key(package_copy):
    before = _hashes(package_copy)
    path = package_copy / "training.py"
    text = path.read_text()
    try:
        path.write_text(text.replace('"""', '"""Edited. ', 1) + "\n# a comment\n")
        assert _hashes(package_copy) == before
    finally:
        path.write_text(text)


def test_a_new_import_joins_the_keys_of_its_importer(package_copy):
    # plotting decides nothing; once the run's code imports it, a change to it retrains.
    path = package_copy / "experiments" / "train.py"
    plotting = package_copy / "plotting" / "tables.py"
    text, plot_text = path.read_text(), plotting.read_text()
    try:
        path.write_text(text + "\nfrom ..plotting import tables  # noqa\n")
        before = _hashes(package_copy)
        plotting.write_text(plot_text + "\nEDITED = 1\n")
        assert _hashes(package_copy)["run"] != before["run"]
    finally:
        path.write_text(text)
        plotting.write_text(plot_text)


def _run_key(record) -> str:
    from fashion_optim.experiments import NAMED
    from fashion_optim.experiments.train import RunTask

    cfg = NAMED["adam"].replace(record=record).resolve("quick")
    return cache.cache_key("run", RunTask(cfg, 0).key_config(), "data")


def test_the_layer_quantiles_a_record_asks_for_are_part_of_a_runs_key():
    from fashion_optim.experiments import Record

    records = [
        Record(),
        Record(layer_quantiles=(0.5,)),
        Record(layer_quantiles=(0.25, 0.5)),
        Record(layer_quantiles=(0.5,), layer_quantiles_every=5),
    ]
    assert len({_run_key(r) for r in records}) == len(records)
    assert _run_key(Record(layer_quantiles=[0.5])) == _run_key(Record(layer_quantiles=(0.5,)))
    data = Record(layer_quantiles=(0.25, 0.5), layer_quantiles_every=5).to_dict()
    assert (data["layer_quantiles"], data["layer_quantiles_every"]) == ([0.25, 0.5], 5)
    assert Record().to_dict()["layer_quantiles"] is None


def test_only_the_shared_adam_run_and_its_tuned_copy_record_layer_quantiles():
    from fashion_optim import experiments as ex

    assert ex.NAMED["adam"].record.layer_quantiles == ex.LAYER_QUANTILES
    assert not any(s.record.layer_quantiles for k, s in ex.NAMED.items() if k != "adam")
    assert not any(s.record.layer_quantiles for s in ex.sweep_specs().values())
    sweep = SimpleNamespace(points={}, best_rate=lambda key: 3e-4)  # all tuned_specs reads
    tuned = ex.tuned_specs(sweep, ["adam"])["adam"]
    assert tuned.record == ex.NAMED["adam"].record


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"layer_quantiles": (5, 50, 95)}, r"\[0, 1\] \(0.5 is the median, not 50\)"),
        ({"layer_quantiles": (0.75, 0.25)}, "strictly increasing"),
        ({"layer_quantiles": ()}, "non-empty"),
        ({"layer_quantiles": (0.5,), "layer_quantiles_every": 0}, "layer_quantiles_every"),
    ],
)
def test_a_record_with_bad_layer_quantiles_is_refused(changes, message):
    from fashion_optim.experiments import Record

    with pytest.raises(ValueError, match=message):
        Record(**changes)


def test_layer_quantiles_on_an_optimizer_without_adams_moments_are_refused():
    from fashion_optim.experiments import NAMED, Record

    spec = NAMED["momentum"].replace(record=Record(layer_quantiles=(0.5,)))
    with pytest.raises(ValueError, match=r"optimizer 'sgd' keeps no Adam moments; use one of"):
        spec.resolve("quick")
    for optimizer in ("adamw", "scratch_adam"):
        spec.replace(optimizer=optimizer, lr=1e-3, optimizer_kwargs={}).resolve("quick")


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match=r"unknown kind 'nope'; valid choices: \['loss_surface'"):
        cache.code_hash("nope")


# --------------------------------------------------------------------------- clearing


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(root))
    return root


def _entry(kind: str, value: float) -> Path:
    key = cache.cache_key(kind, {"v": value}, "data")
    cache.save_entry(kind, key, {"x": np.arange(3.0) * value}, {"value": value})
    return cache.cache_dir() / kind / f"{key}.npz"


def test_entries_are_written_under_a_cache_tag(tmp_cache):
    entry = _entry("run", 1.0)
    assert (
        (tmp_cache / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    arrays, meta = cache.read_entry(entry)
    assert meta["value"] == 1.0 and meta["kind"] == "run" and meta["key"] == entry.stem
    np.testing.assert_array_equal(arrays["x"], [0.0, 1.0, 2.0])


def test_clear_removes_the_entries_and_temporary_files_only(tmp_cache):
    entries = [_entry("run", 1.0), _entry("run", 2.0), _entry("loss_surface", 3.0)]
    temp = entries[0].parent / f".{entries[0].name}.abc123.tmp"  # left by a killed writer
    temp.write_bytes(b"partial")
    assert cache.clear_cache() == 3
    assert not any(p.exists() for p in [*entries, temp])
    assert sorted(p.name for p in tmp_cache.iterdir()) == ["CACHEDIR.TAG"]
    assert cache.clear_cache() == 0


@pytest.mark.parametrize(
    "where",
    ["top", "kind folder", "unknown folder"],
)
def test_clear_refuses_a_folder_holding_a_users_file_and_deletes_nothing(where, tmp_cache):
    entries = [_entry("run", 1.0), _entry("range_test", 2.0)]
    mine = {
        "top": tmp_cache / "thesis.tex",
        "kind folder": tmp_cache / "run" / "notes.txt",
        "unknown folder": tmp_cache / "photos" / "holiday.jpg",
    }[where]
    mine.parent.mkdir(exist_ok=True)
    mine.write_text("a user's file")
    before = sorted(tmp_cache.rglob("*"))
    with pytest.raises(cache.CacheError) as info:
        cache.clear_cache()
    message = str(info.value)
    assert f"refusing to clear {tmp_cache}" in message and "Nothing was deleted" in message
    assert str(mine if where != "unknown folder" else mine.parent) in message
    assert sorted(tmp_cache.rglob("*")) == before
    assert mine.read_text() == "a user's file" and all(p.exists() for p in entries)


def test_clear_on_the_command_line_refuses_with_one_line(tmp_cache, capsys):
    _entry("run", 1.0)
    (tmp_cache / "keep.txt").write_text("mine")
    assert main(["cache", "--clear"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refusing to clear") and err.count("\n") == 1
    assert (tmp_cache / "keep.txt").read_text() == "mine"


def test_a_cache_of_an_earlier_version_without_a_tag_is_still_cleared(tmp_path, monkeypatch):
    # the default location is the package's own folder, tagged or not
    monkeypatch.delenv("FASHION_OPTIM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    entry = _entry("run", 1.0)
    assert entry.is_relative_to(tmp_path / "xdg")
    (cache.cache_dir() / "CACHEDIR.TAG").unlink()
    assert cache.clear_cache() == 1 and not entry.exists()


def test_clear_refuses_an_untagged_folder_even_with_entry_like_files(tmp_path, monkeypatch):
    # a user's file named like an entry, in a folder the cache never tagged
    folder = tmp_path / "u"
    mine = folder / "run" / "0123456789abcdef0123456789abcdef.npz"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(folder))
    with pytest.raises(cache.CacheError) as info:
        cache.clear_cache()
    message = str(info.value)
    assert f"refusing to clear {folder}" in message and "no CACHEDIR.TAG" in message
    assert str(mine) in message and "Nothing was deleted" in message
    assert mine.read_text() == "mine"


def test_clear_removes_a_leftover_temporary_tag(tmp_cache):
    _entry("run", 1.0)
    leftover = tmp_cache / ".CACHEDIR.TAG.k2j4_x9a.tmp"  # a writer killed mid-tag
    leftover.write_bytes(b"Signa")
    assert cache.clear_cache() == 1 and not leftover.exists()
    # in a folder holding nothing else, it does not stop the tag either
    leftover.write_bytes(b"Signa")
    (tmp_cache / "CACHEDIR.TAG").unlink()
    _entry("run", 2.0)
    assert (tmp_cache / "CACHEDIR.TAG").is_file()


@pytest.mark.parametrize("how", ["lookup", "save"])
def test_a_folder_holding_a_users_files_is_never_tagged(tmp_path, monkeypatch, how):
    home = tmp_path / "home"
    (home / "documents").mkdir(parents=True)
    (home / "documents" / "thesis.tex").write_text("a user's file")
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(home))
    key = cache.cache_key("run", {"v": 1}, "data")
    if how == "lookup":  # what a run does first: it fails before anything trains
        with pytest.raises(cache.CacheError) as info:
            cache.lookup("run", key)
        message = str(info.value)
        assert f"refusing to use {home} as the result cache (FASHION_OPTIM_CACHE=" in message
        assert "no CACHEDIR.TAG" in message and "Set FASHION_OPTIM_CACHE to a new" in message
    else:  # a result computed anyway (fresh=True) is returned, said, and not written
        with pytest.warns(RuntimeWarning, match=r"could not write .*refusing to use"):
            meta = cache.save_entry("run", key, {"x": np.zeros(2)}, {})
        assert meta["key"] == key
    assert sorted(p.name for p in home.iterdir()) == ["documents"]  # no tag, no run/
    # tar --exclude-caches-all (and borg, restic) would keep backing it up
    assert not (home / "CACHEDIR.TAG").exists()


def test_an_empty_or_missing_folder_is_tagged_and_used(tmp_path, monkeypatch):
    for folder in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.name == "empty":
            folder.mkdir()
        monkeypatch.setenv("FASHION_OPTIM_CACHE", str(folder))
        entry = _entry("run", 1.0)
        assert (folder / "CACHEDIR.TAG").is_file() and entry.is_file()
        assert cache.lookup("run", entry.stem) is not None


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_entries_and_the_tag_have_the_umasks_permissions(tmp_cache, umask, mode):
    old = os.umask(umask)
    try:
        entry = _entry("run", 1.0)
    finally:
        os.umask(old)
    for path in (entry, tmp_cache / "CACHEDIR.TAG"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def _flip_in_directory(path: Path, member: str) -> None:
    """Flip one byte of ``member``'s name in the zip's central directory (after every
    local header), where zip's own CRC checks do not reach."""
    content = bytearray(path.read_bytes())
    at = content.rindex(member.encode())
    assert at > content.rindex(b"PK\x01\x02") - 200  # (in the directory at the end)
    content[at + 1] ^= 0x01  # "a:x.npy" -> "a;x.npy"
    path.write_bytes(bytes(content))


def test_a_flipped_byte_in_the_zip_directory_is_not_served(tmp_cache):
    key = cache.cache_key("run", {"v": 1}, "data")
    arrays = {"val_acc": np.array([0.5, 0.7]), "x": np.arange(3.0)}
    cache.save_entry("run", key, arrays, {"value": 1})
    path = tmp_cache / "run" / f"{key}.npz"
    assert cache.lookup("run", key) is not None
    _flip_in_directory(path, "a:val_acc.npy")
    with pytest.warns(RuntimeWarning, match=r"unreadable cache entry .*damaged"):
        assert cache.lookup("run", key) is None


def test_a_flipped_byte_in_the_manifests_name_is_not_served(tmp_cache):
    key = cache.cache_key("run", {"v": 1}, "data")
    cache.save_entry("run", key, {"x": np.arange(3.0)}, {})
    _flip_in_directory(tmp_cache / "run" / f"{key}.npz", "manifest")
    with pytest.warns(RuntimeWarning, match=r"unreadable cache entry .*manifest is missing"):
        assert cache.lookup("run", key) is None


def test_an_entry_of_the_format_before_manifests_is_still_served(tmp_cache):
    key = cache.cache_key("run", {"v": 1}, "data")
    path = tmp_cache / "run" / f"{key}.npz"
    path.parent.mkdir(parents=True)
    (tmp_cache / "CACHEDIR.TAG").write_text(cache.TAG)
    meta = {"key": key, "kind": "run", "value": 1}  # no "format", no manifest
    with path.open("wb") as fh:
        np.savez(
            fh, **{"a:x": np.arange(3.0), "meta": np.frombuffer(json.dumps(meta).encode(), "u1")}
        )
    arrays, found = cache.lookup("run", key)
    assert found == meta
    np.testing.assert_array_equal(arrays["x"], np.arange(3.0))


def test_an_entry_whose_array_changed_is_not_served(tmp_cache):
    # a well-formed zip whose array is not the one written (swapped in from elsewhere)
    key = cache.cache_key("run", {"v": 1}, "data")
    cache.save_entry("run", key, {"x": np.arange(3.0)}, {})
    path = tmp_cache / "run" / f"{key}.npz"
    with np.load(path) as npz:
        members = {k: npz[k] for k in npz.files}
    members["a:x"] = np.arange(3.0) + 1
    with path.open("wb") as fh:
        np.savez(fh, **members)
    with pytest.warns(RuntimeWarning, match=r"unreadable cache entry .*damaged"):
        assert cache.lookup("run", key) is None


def test_cache_path_that_is_a_file(tmp_path, monkeypatch, capsys):
    afile = tmp_path / "results"
    afile.write_text("not a folder")
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(afile))
    with pytest.raises(cache.CacheError, match=r"is a file, not a folder.*set FASHION_OPTIM_CACHE"):
        cache.cache_dir()
    for argv in (["cache"], ["cache", "--clear"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: the result cache {afile} is a file") and err.count("\n") == 1
    assert afile.read_text() == "not a folder"


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only bind mount: unwritable even to root (the suite may run as
    root, to whom permission bits deny nothing)."""
    src, dst = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    dst.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(dst)]
        if subprocess.run(remount, capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield src, dst
    finally:
        subprocess.run(["umount", str(dst)], check=True)


def test_unwritable_cache_folder_is_said(read_only_folder, monkeypatch, capsys):
    src, ro = read_only_folder
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(src))
    _entry("run", 1.0)  # written through the writable side
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(ro))
    assert main(["cache"]) == 0
    captured = capsys.readouterr()
    assert "1 entries" in captured.out
    assert f"warning: {ro} is not writable" in captured.err
    # and where it can be written, nothing is said
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(src))
    assert main(["cache"]) == 0 and "not writable" not in capsys.readouterr().err


def test_a_cache_below_a_file_is_said_unwritable(tmp_path, monkeypatch, capsys):
    (tmp_path / "afile").write_text("a file where a folder would be")
    monkeypatch.setenv("FASHION_OPTIM_CACHE", str(tmp_path / "afile" / "cache"))
    assert main(["cache"]) == 0
    assert "is not writable" in capsys.readouterr().err


def test_bad_profile_in_the_environment_is_one_line_on_the_command_line(monkeypatch, capsys):
    monkeypatch.setenv("FASHION_OPTIM_PROFILE", "fast")
    assert main(["run", "sgd", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: unknown profile 'fast' (from FASHION_OPTIM_PROFILE); valid choices: "
        "['full', 'quick']. Set FASHION_OPTIM_PROFILE to one of them, or unset it for 'full'.\n"
    )
