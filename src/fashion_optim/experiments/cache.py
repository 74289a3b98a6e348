"""The result cache on disk: where it lives, what a key covers, atomic entries, clearing.

Folder: ``FASHION_OPTIM_CACHE``, or a per-user cache folder. Layout: a ``CACHEDIR.TAG``
(the Cache Directory Tagging convention, so backup tools skip it and :func:`clear_cache`
knows the folder is the cache's own), then one folder per kind of computation
(:data:`KINDS`) holding ``KEY.npz`` entries. Nothing else is ever written there. The tag
goes only into a folder the cache creates or finds empty: a folder that holds anything
else and no tag (a home folder named by mistake) is refused with :class:`CacheError`
before anything trains, because backup tools would skip every file in it. Likewise
:func:`clear_cache` deletes only in a tagged folder, and only the cache's own files.

Each entry stores, in its metadata, the name, dtype, shape and SHA-256 of every array it
holds, and is checked against them when read: a damaged entry (even a flipped byte in a
member name of the zip's directory, which zip's own checks miss) is recomputed, never
served.

A key covers everything a result depends on: the kind, its configuration (for a run, the
resolved spec and the seed), torch's version, the data's checksum, the device type, and
the code. The code is found, not listed: each kind names the module that computes it
(:data:`KINDS`), and its key hashes that module and every module of this package it
imports, directly or not, without docstrings. So a change to
:mod:`fashion_optim.landscape` re-computes the loss surfaces and nothing else, a change
to :mod:`fashion_optim.training` every run, and a change to plotting, the gallery or the
documentation nothing.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch

from .. import pin
from ..device import resolve_device
from ..files import atomic_write

__all__ = [
    "KINDS",
    "CacheError",
    "cache_dir",
    "cache_key",
    "cached",
    "clear_cache",
    "code_hash",
    "code_modules",
    "lookup",
    "read_entry",
    "save_entry",
]

ENV_CACHE = "FASHION_OPTIM_CACHE"
PACKAGE = "fashion_optim"

#: Each kind of cached computation and the module whose code (with what it imports from
#: this package) computes it.
KINDS: dict[str, str] = {
    "run": "fashion_optim.experiments.train",
    "range_test": "fashion_optim.experiments.rangetest",
    "loss_surface": "fashion_optim.experiments.surface",
    "random_plane_surface": "fashion_optim.experiments.surface",
    "sharpness": "fashion_optim.experiments.curvature",
}

TAG_NAME = "CACHEDIR.TAG"
TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by fashion-optim.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)
# What the cache writes inside a kind's folder: entries, and atomic_write's temporary
# files (".NAME.XXXX.tmp"), left only by a process killed while writing.
_ENTRY = re.compile(r"[0-9a-f]{32}\.npz")
_TEMP = re.compile(r"\.[0-9a-f]{32}\.npz\..+\.tmp")
# The tag's temporary file, left only by a process killed while writing it.
_TAG_TEMP = re.compile(re.escape(f".{TAG_NAME}.") + r".+\.tmp")


#: The entries' format: 2 stores a manifest of the arrays (see :func:`read_entry`); an
#: entry of format 1 (no ``format`` in its metadata) is served unchecked, as before.
FORMAT = 2


class CacheError(RuntimeError):
    """The cache folder cannot be used, or holds files that are not the cache's."""


def _default_root() -> Path:
    return Path(platformdirs.user_cache_dir("fashion-optim")) / "results"


def _root() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return _default_root()


def _named_by() -> str:
    env = os.environ.get(ENV_CACHE)
    return f" ({ENV_CACHE}={env})" if env else ""


def cache_dir() -> Path:
    """Where results are kept: ``FASHION_OPTIM_CACHE`` or the user cache folder.

    Raises :class:`CacheError` when that path is a file.
    """
    root = _root()
    if root.exists() and not root.is_dir():
        raise CacheError(
            f"the result cache {root} is a file, not a folder{_named_by()}; set "
            f"{ENV_CACHE} to a folder (it is created if missing), or unset it."
        )
    return root


def _is_own(root: Path) -> bool:
    """Whether ``root`` is the cache's folder: it holds the cache's tag, or it is the
    default location (the folder this package names for itself; caches of versions
    before the tag have none)."""
    return (root / TAG_NAME).is_file() or root == _default_root()


def _shown(items: list[Path]) -> str:
    return ", ".join(str(p) for p in items[:5]) + (" ..." if len(items) > 5 else "")


def _usable_root() -> Path:
    """:func:`cache_dir`, once it is known to be the cache's folder, empty or missing.

    Raises :class:`CacheError` for a folder that holds anything and no cache tag: the
    cache would tag it, and backup tools honouring the tag skip every file in it.
    """
    root = cache_dir()
    if root.exists() and not _is_own(root):
        found = [p for p in sorted(root.iterdir()) if not _TAG_TEMP.fullmatch(p.name)]
        if found:
            raise CacheError(
                f"refusing to use {root} as the result cache{_named_by()}: it holds "
                f"{len(found)} item(s) and no {TAG_NAME} ({_shown(found)}). The cache tags "
                "its folder so that backup tools skip it, so it only uses a folder it "
                f"created, an empty one or one it tagged. Set {ENV_CACHE} to a new or "
                "empty folder, or unset it."
            )
    return root


# --------------------------------------------------------------------------- code


#: The folder of the package's code (``fashion_optim/``).
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _module_file(name: str, package_dir: Path) -> Path | None:
    """The source file of the package module ``name`` under ``package_dir``, or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(name: str, path: Path, tree: ast.Module, package_dir: Path) -> set[str]:
    """The modules of this package that ``name``'s code imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                # "from . import lr" imports the module lr; "from .specs import Spec" a
                # name of the module specs
                sub = f"{base}.{alias.name}"
                found.add(sub if _module_file(sub, package_dir) else base)
    return {m for m in found if _module_file(m, package_dir)}


def _strip_docstrings(tree: ast.Module) -> str:
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


def code_modules(root: str, package_dir: Path | None = None) -> list[str]:
    """``root`` and every module of this package it imports, directly or not, sorted.

    Found in the source (``package_dir``, default the installed package), without
    importing anything. A package's ``__init__`` counts only when imported by name:
    importing one of its submodules depends on that submodule alone.
    """
    package_dir = PACKAGE_DIR if package_dir is None else Path(package_dir)
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        path = _module_file(name, package_dir)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo.extend(_imports(name, path, ast.parse(path.read_text()), package_dir) - seen)
    return sorted(seen)


@cache
def code_hash(kind: str, package_dir: Path | None = None) -> str:
    """SHA-256 (16 hex digits) of the code a ``kind`` of computation depends on:
    :func:`code_modules` of its module in :data:`KINDS`, without docstrings (so a
    comment or a docstring retrains nothing)."""
    try:
        root = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; valid choices: {sorted(KINDS)}.") from None
    package_dir = PACKAGE_DIR if package_dir is None else Path(package_dir)
    digest = hashlib.sha256()
    for name in code_modules(root, package_dir):
        path = _module_file(name, package_dir)
        digest.update(name.encode())
        digest.update(_strip_docstrings(ast.parse(path.read_text())).encode())
    return digest.hexdigest()[:16]


def cache_key(kind: str, config: Mapping[str, Any], data_checksum: str) -> str:
    """The cache key of a computation: what, with which inputs, code, torch, data,
    device type (a result trained on a GPU is not the CPU's result, bit for bit) and the
    CPU kernels' pin (:func:`fashion_optim.pin.key`)."""
    payload = json.dumps(
        {
            "kind": kind,
            "config": config,
            "code": code_hash(kind),
            "torch": torch.__version__,
            "data": data_checksum,
            "device": resolve_device("auto").type,
            "pin": pin.key(),  # the CPU kernels' instruction set (fashion_optim.pin)
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- entries


def _entry_path(kind: str, key: str) -> Path:
    return _usable_root() / kind / f"{key}.npz"


def _new_file_mode() -> int:
    """The permissions a newly created file gets here (0666 less the umask):
    :func:`tempfile.mkstemp` creates 0600 files whatever the umask says, and a cache
    shared with another user must be readable as the umask allows."""
    try:
        with open("/proc/self/status") as fh:  # reading the umask without changing it
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)  # (briefly changes it for every thread: the fallback only)
    os.umask(umask)
    return 0o666 & ~umask


def _write_file(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` atomically, with the umask's permissions."""

    def write(fh: Any) -> None:
        os.fchmod(fh.fileno(), _new_file_mode())
        fh.write(content)

    atomic_write(path, write)


def _manifest(arrays: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
    """Per array: ``[dtype, shape, sha256 of its bytes]``, stored in the entry's metadata
    and checked when it is read."""
    return {
        name: [a.dtype.str, list(a.shape), hashlib.sha256(np.ascontiguousarray(a)).hexdigest()]
        for name, a in sorted(arrays.items())
    }


def save_entry(
    kind: str, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Write an entry atomically (a reader sees the old file or the whole new one);
    return its metadata. A folder that cannot be written is said in a warning: the
    result is still used, and so is it when the folder is not the cache's (see
    :func:`lookup`)."""
    meta = {**meta, "key": key, "kind": kind, "format": FORMAT}
    buffer = io.BytesIO()
    payload = {f"a:{k}": np.asarray(v) for k, v in arrays.items()}
    manifest = _manifest({k[2:]: v for k, v in payload.items()})
    payload["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    payload["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    np.savez(buffer, **payload)
    root = _root()
    path = root / kind / f"{key}.npz"
    try:
        # (raises CacheError if the folder became a file, or another's, meanwhile)
        _tag(_usable_root())
        _write_file(path, buffer.getvalue())
    except (OSError, CacheError) as exc:  # a read-only or full cache must not lose the result
        warnings.warn(
            f"could not write the cache entry {path} ({exc}); the result is used but not "
            f"kept. Make {root} writable (or free some space there), or set "
            f"{ENV_CACHE} to a writable folder.",
            RuntimeWarning,
            stacklevel=3,
        )
    return meta


def _tag(root: Path) -> None:
    tag = root / TAG_NAME
    if not tag.exists():
        root.mkdir(parents=True, exist_ok=True)
        _write_file(tag, TAG.encode())


def read_entry(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The ``(arrays, meta)`` of the entry file at ``path``.

    Raises if it is unreadable, or if its arrays are not those its manifest lists (by
    name, dtype, shape and SHA-256): a damaged entry is never returned.
    """
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(npz["meta"].tobytes().decode())
        arrays = {k[2:]: npz[k] for k in npz.files if k.startswith("a:")}
        if meta.get("format", 1) < FORMAT:  # written before manifests: served as it is
            return arrays, meta
        if "manifest" not in npz.files:
            raise ValueError("the entry is damaged: its manifest is missing")
        manifest = json.loads(npz["manifest"].tobytes().decode())
        unknown = sorted(set(npz.files) - {"meta", "manifest"} - {f"a:{k}" for k in arrays})
    if unknown or _manifest(arrays) != manifest:
        names = sorted(set(manifest) ^ set(arrays)) + unknown
        what = f"members {names} differ from" if names else "an array differs from"
        raise ValueError(f"the entry is damaged: {what} its manifest")
    return arrays, meta


def lookup(kind: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The cached ``(arrays, meta)`` under ``key``, or ``None`` when there is none (an
    unreadable or damaged entry is said in a warning and counts as none).

    Raises :class:`CacheError`, before anything is computed, when the cache folder holds
    files and no cache tag (it is not the cache's, see :func:`cache_dir`).
    """
    path = _entry_path(kind, key)
    if not path.exists():
        return None
    try:
        arrays, meta = read_entry(path)
        if meta.get("key") != key:
            raise ValueError("the entry's key does not match its file name")
        return arrays, meta
    except Exception as exc:  # any unreadable entry is recomputed
        warnings.warn(
            f"ignoring unreadable cache entry {path} ({type(exc).__name__}: {exc}); "
            "recomputing it.",
            RuntimeWarning,
            stacklevel=3,
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
    """``compute()``'s ``(arrays, meta)``, from the cache when possible (``fresh=True``
    recomputes and overwrites). Only the library's own computations call this: ``kind``
    must be one of :data:`KINDS`, whose code the key covers."""
    key = cache_key(kind, config, data_checksum)
    if not fresh:
        found = lookup(kind, key)
        if found is not None:
            return found
    arrays, meta = compute()
    meta = save_entry(kind, key, arrays, {**meta, "config": config})
    return dict(arrays), meta


# --------------------------------------------------------------------------- clearing


def _cache_files(root: Path) -> tuple[list[Path], list[Path]]:
    """The cache's own files under ``root`` (entries and temporary files) and anything
    else found there."""
    own, foreign = [], []
    for item in sorted(root.iterdir()):
        if item.name == TAG_NAME and item.is_file():
            continue
        if _TAG_TEMP.fullmatch(item.name) and item.is_file() and not item.is_symlink():
            own.append(item)
        elif item.is_dir() and not item.is_symlink() and item.name in KINDS:
            for sub in sorted(item.iterdir()):
                is_own = sub.is_file() and not sub.is_symlink()
                if is_own and (_ENTRY.fullmatch(sub.name) or _TEMP.fullmatch(sub.name)):
                    own.append(sub)
                else:
                    foreign.append(sub)
        else:
            foreign.append(item)
    return own, foreign


def clear_cache() -> int:
    """Delete every cached result (and temporary file the cache left); return how many
    entries were removed.

    Only what the cache wrote is removed, and only in the cache's folder (one that holds
    its tag, or the default location): a folder that holds anything else, or entries
    and no tag, raises :class:`CacheError`, naming what it found, and nothing is
    deleted.
    """
    root = cache_dir()
    if not root.exists():
        return 0
    own, foreign = _cache_files(root)
    if not _is_own(root):
        # an untagged folder is not the cache's, however its files are named
        foreign += [p for p in own if not _TAG_TEMP.fullmatch(p.name)]
        own = [p for p in own if _TAG_TEMP.fullmatch(p.name)]
    if foreign:
        tagless = "" if _is_own(root) else f" and no {TAG_NAME}"
        raise CacheError(
            f"refusing to clear {root}: it holds {len(foreign)} item(s) that the result "
            f"cache did not write{tagless} ({_shown(foreign)}). Nothing was deleted. Move "
            f"them away, or set {ENV_CACHE} to a folder used only by the cache."
        )
    count = sum(1 for p in own if p.suffix == ".npz")
    for path in own:
        path.unlink()
    for kind in KINDS:
        folder = root / kind
        if folder.is_dir():
            if not any(folder.iterdir()):
                folder.rmdir()
    return count


def describe() -> dict[str, Any]:
    """The cache's folder, entries per kind, size and whether it is writable."""
    root = cache_dir()
    entries = {kind: sorted((root / kind).glob("*.npz")) for kind in KINDS}
    # the folder, or the nearest existing one above it, where it would be created: a
    # folder this process may write to (a file in the way cannot hold the cache)
    where = root if root.exists() else _existing_parent(root)
    writable = where.is_dir() and os.access(where, os.W_OK | os.X_OK)
    return {
        "root": root,
        "entries": {kind: len(paths) for kind, paths in entries.items()},
        "bytes": sum(p.stat().st_size for paths in entries.values() for p in paths),
        "writable": writable,
        "code": {kind: code_hash(kind) for kind in KINDS},
    }


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
