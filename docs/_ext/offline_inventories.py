"""Intersphinx inventories for torch, numpy, matplotlib and Python, made from the
installed packages, for builds that cannot reach the published ``objects.inv`` files.

``conf.py`` lists the published inventory first and this local one second, so a build
with network access uses the real inventory and an offline one (CI, a train) still
resolves ``:class:`torch.optim.SGD``` and friends, to the same URLs the real docs use.
"""

from __future__ import annotations

import builtins
import inspect
import zlib
from collections.abc import Iterable
from pathlib import Path

_HEADER = (
    "# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
    "# The remainder of this file is compressed using zlib.\n"
)


def _public(module, names: Iterable[str] | None = None):
    names = names if names is not None else getattr(module, "__all__", dir(module))
    for name in names:
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if obj is not None:
            yield name, obj


def _role(obj) -> str:
    if inspect.isclass(obj):
        return "py:exception" if issubclass(obj, BaseException) else "py:class"
    if inspect.ismodule(obj):
        return "py:module"
    if callable(obj):
        return "py:function"
    return "py:data"


def _write(path: Path, project: str, version: str, entries: dict[str, tuple[str, str]]) -> None:
    lines = [f"{name} {role} 1 {uri} -" for name, (role, uri) in sorted(entries.items())]
    body = zlib.compress(("\n".join(lines) + "\n").encode())
    path.write_bytes(_HEADER.format(project=project, version=version).encode() + body)


def _torch(path: Path) -> None:
    import torch
    import torch.nn.functional
    import torch.optim.lr_scheduler
    import torch.utils.data

    entries: dict[str, tuple[str, str]] = {}
    for mod in (
        torch.optim,
        torch.optim.lr_scheduler,
        torch.nn,
        torch.nn.functional,
        torch.utils.data,
    ):
        for name, obj in _public(mod):
            if inspect.ismodule(obj):
                continue
            full = f"{mod.__name__}.{name}"
            entries[full] = (_role(obj), f"generated/{full}.html#{full}")
            # autodoc writes type hints with the defining module's name
            # (torch.nn.modules.module.Module): point those at the same page.
            defined = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
            if inspect.isclass(obj) and defined != full:
                entries.setdefault(defined, ("py:class", f"generated/{full}.html#{full}"))
            if inspect.isclass(obj):
                for meth, _ in inspect.getmembers(obj, callable):
                    if not meth.startswith("_"):
                        entries[f"{full}.{meth}"] = (
                            "py:method",
                            f"generated/{full}.html#{full}.{meth}",
                        )
    for name, obj in _public(torch, [n for n in dir(torch) if not n.startswith("_")]):
        if inspect.ismodule(obj):
            continue
        full = f"torch.{name}"
        entries.setdefault(full, (_role(obj), f"generated/{full}.html#{full}"))
    special = {
        "torch.Tensor": "tensors.html#torch.Tensor",
        "torch.device": "tensor_attributes.html#torch.device",
        "torch.dtype": "tensor_attributes.html#torch.dtype",
        "torch.Generator": "generated/torch.Generator.html#torch.Generator",
    }
    for full, uri in special.items():
        entries[full] = ("py:class", uri)
    for mod in ("torch", "torch.nn", "torch.optim", "torch.optim.lr_scheduler"):
        entries[mod] = (
            "py:module",
            f"{mod.replace('.', '_')}.html" if mod != "torch" else "torch.html",
        )
    _write(path, "PyTorch", torch.__version__, entries)


def _numpy(path: Path) -> None:
    import numpy as np

    entries = {}
    for name, obj in _public(np, [n for n in dir(np) if not n.startswith("_")]):
        if inspect.ismodule(obj):
            continue
        full = f"numpy.{name}"
        entries[full] = (_role(obj), f"reference/generated/{full}.html#{full}")
    for name in np.linalg.__all__:
        full = f"numpy.linalg.{name}"
        if callable(getattr(np.linalg, name)) and not inspect.isclass(getattr(np.linalg, name)):
            entries[full] = ("py:function", f"reference/generated/{full}.html#{full}")
    entries["array_like"] = ("std:term", "glossary.html#term-array_like")
    entries["numpy.typing.ArrayLike"] = ("py:data", "reference/typing.html#numpy.typing.ArrayLike")
    entries["numpy.typing.NDArray"] = ("py:data", "reference/typing.html#numpy.typing.NDArray")
    _write(path, "NumPy", np.__version__, entries)


def _matplotlib(path: Path) -> None:
    import matplotlib
    import matplotlib.axes
    import matplotlib.figure
    import matplotlib.pyplot as plt

    entries = {}
    for name, obj in _public(plt, [n for n in dir(plt) if not n.startswith("_")]):
        if callable(obj) and not inspect.isclass(obj):
            full = f"matplotlib.pyplot.{name}"
            entries[full] = ("py:function", f"api/_as_gen/{full}.html#{full}")
    for cls, page in ((matplotlib.axes.Axes, "api/_as_gen/matplotlib.axes.Axes.{m}.html"),):
        for meth, _ in inspect.getmembers(cls, callable):
            if not meth.startswith("_"):
                full = f"matplotlib.axes.Axes.{meth}"
                entries[full] = ("py:method", page.format(m=meth) + f"#{full}")
    entries["matplotlib.axes.Axes"] = ("py:class", "api/_as_gen/matplotlib.axes.Axes.html")
    entries["matplotlib.axes._axes.Axes"] = entries["matplotlib.axes.Axes"]
    entries["matplotlib.figure.Figure"] = (
        "py:class",
        "api/figure_api.html#matplotlib.figure.Figure",
    )
    entries["matplotlib.lines.Line2D"] = (
        "py:class",
        "api/_as_gen/matplotlib.lines.Line2D.html#matplotlib.lines.Line2D",
    )
    entries["matplotlib.collections.PolyCollection"] = (
        "py:class",
        "api/collections_api.html#matplotlib.collections.PolyCollection",
    )
    entries["matplotlib.collections.QuadMesh"] = (
        "py:class",
        "api/collections_api.html#matplotlib.collections.QuadMesh",
    )
    entries["matplotlib.contour.QuadContourSet"] = (
        "py:class",
        "api/contour_api.html#matplotlib.contour.QuadContourSet",
    )
    entries["matplotlib.artist.Artist"] = (
        "py:class",
        "api/artist_api.html#matplotlib.artist.Artist",
    )
    for cls in ("Animation", "FuncAnimation"):
        full = f"matplotlib.animation.{cls}"
        entries[full] = ("py:class", f"api/_as_gen/{full}.html#{full}")
    for meth in ("save", "to_jshtml"):
        full = f"matplotlib.animation.Animation.{meth}"
        entries[full] = ("py:method", f"api/_as_gen/matplotlib.animation.Animation.html#{full}")
    _write(path, "Matplotlib", matplotlib.__version__, entries)


def _python(path: Path) -> None:
    import sys

    entries = {}
    for name, obj in vars(builtins).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            entries[name] = ("py:exception", f"library/exceptions.html#{name}")
        elif inspect.isclass(obj):
            entries[name] = ("py:class", f"library/functions.html#{name}")
        elif callable(obj):
            entries[name] = ("py:function", f"library/functions.html#{name}")
    for mod, names in {
        "pathlib": ["Path", "PurePath"],
        "os": ["PathLike"],
        "collections.abc": ["Iterable", "Iterator", "Mapping", "Sequence", "Callable", "Sized"],
        "typing": ["Any", "Literal", "Callable", "Iterable", "Sequence", "Mapping"],
        "dataclasses": ["dataclass", "field", "replace"],
        "argparse": ["ArgumentParser", "Namespace"],
        "contextlib": ["contextmanager", "AbstractContextManager"],
    }.items():
        for name in names:
            full = f"{mod}.{name}"
            entries[full] = ("py:class", f"library/{mod}.html#{full}")
    entries["None"] = ("py:data", "library/constants.html#None")
    entries["True"] = ("py:data", "library/constants.html#True")
    entries["False"] = ("py:data", "library/constants.html#False")
    _write(path, "Python", ".".join(map(str, sys.version_info[:2])), entries)


def _torchvision(path: Path) -> None:
    import torchvision
    import torchvision.datasets

    entries = {}
    for name, obj in _public(torchvision.datasets):
        if inspect.isclass(obj):
            full = f"torchvision.datasets.{name}"
            entries[full] = ("py:class", f"generated/{full}.html#{full}")
    _write(path, "Torchvision", torchvision.__version__, entries)


def write_all(folder: Path) -> dict[str, Path]:
    """Write the four inventories into ``folder``; return their paths by project key."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, make in (
        ("torch", _torch),
        ("numpy", _numpy),
        ("matplotlib", _matplotlib),
        ("python", _python),
        ("torchvision", _torchvision),
    ):
        paths[key] = folder / f"{key}.inv"
        make(paths[key])
    return paths
