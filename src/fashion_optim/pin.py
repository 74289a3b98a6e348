"""The CPU kernels' instruction set, pinned to AVX2 so that a run gives the same bits on
any x86-64 processor with AVX2.

torch (ATen's own kernels), oneDNN (its convolutions), MKL (the BLAS torch calls), and
numpy (its SIMD loops, e.g. ``exp``, ``log`` and ``power`` in float64, and its OpenBLAS)
each choose their code by the processor they find: an AVX-512 machine rounds
differently from an AVX2 one. :func:`apply` sets the environment variables that make
each of them use its AVX2 code instead. It runs when ``fashion_optim`` is first
imported, before this package imports torch or numpy, so every process that trains or
evaluates through the package is pinned: the building process, its local workers (they
also inherit the variables) and Dask workers (they import the package before they
train). The pin's settings are part of every cache key (:func:`key`).

A Dask worker loads numpy before it loads this package, so numpy's part of the pin (it
does not touch training) holds there only when the worker starts with the variables set:
``eval "$(python -m fashion_optim pin --export)"`` before ``dask worker``.

``FASHION_OPTIM_PIN=off`` turns the pin off (each library then picks the processor's
best code; results are cached apart). A processor that cannot honour it (not x86-64, or
without AVX2) is said once per build, and the build goes on unpinned.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from functools import cache
from importlib import metadata
from typing import Any

__all__ = ["ENV_PIN", "ISA", "apply", "describe", "key", "processor", "settings", "status"]

#: Set to ``off`` (or ``0``, ``false``, ``no``) to leave the kernels unpinned.
ENV_PIN = "FASHION_OPTIM_PIN"
#: The instruction set every library is pinned to.
ISA = "AVX2"
_OFF = {"0", "off", "false", "no"}
# Set once a process has said that this processor cannot honour the pin, and inherited by
# the processes it starts (workers, notebook kernels): the build says it once.
_SAID = "FASHION_OPTIM_PIN_SAID"

# numpy's runtime dispatch: the targets above AVX2, by numpy's names (2.4 groups the
# x86 levels as X86_V3 = AVX2 and X86_V4 = AVX-512; before it, one name per feature).
# A name numpy does not dispatch makes it warn, so each version gets its own list.
_NUMPY_ABOVE_AVX2_NEW = "X86_V4 AVX512_ICL AVX512_SPR"
_NUMPY_ABOVE_AVX2_OLD = "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"

_applied: dict[str, Any] = {}


def _numpy_disable() -> str | None:
    try:
        major, minor = (int(p) for p in metadata.version("numpy").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if major < 2:
        return None  # numpy 1.x dispatch lists differ by build: left unpinned
    return _NUMPY_ABOVE_AVX2_NEW if (major, minor) >= (2, 4) else _NUMPY_ABOVE_AVX2_OLD


def settings() -> dict[str, str]:
    """The environment variables of the pin, whether or not it is on.

    ``ATEN_CPU_CAPABILITY`` (torch's kernels), ``ONEDNN_MAX_CPU_ISA`` (oneDNN's
    convolutions), ``MKL_CBWR`` (MKL's conditional bitwise reproducibility branch),
    ``OPENBLAS_CORETYPE`` (numpy's OpenBLAS) and ``NPY_DISABLE_CPU_FEATURES`` (numpy's
    loops above AVX2).

    Examples
    --------
    >>> settings()["ATEN_CPU_CAPABILITY"]
    'avx2'
    """
    pins = {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_CBWR": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell",
    }
    numpy_off = _numpy_disable()
    if numpy_off:
        pins["NPY_DISABLE_CPU_FEATURES"] = numpy_off
    return pins


def _requested() -> bool:
    return os.environ.get(ENV_PIN, "on").strip().lower() not in _OFF


@cache
def _cpu_flags() -> frozenset[str] | None:
    """The processor's flags from ``/proc/cpuinfo`` (Linux), or None elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return None


def processor() -> str:
    """The processor's model: its name, family, model and stepping (``/proc/cpuinfo`` on
    Linux, where a virtual machine's name alone may hide the model), else
    ``platform.processor()``."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if not line.strip():
                    break  # the first processor's block is enough
                fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    ids = [f"family {fields['cpu family']}"] if "cpu family" in fields else []
    ids += [f"{k} {fields[k]}" for k in ("model", "stepping") if k in fields]
    return f"{fields['model name']} ({', '.join(ids)})" if ids else fields["model name"]


def _honourable() -> str | None:
    """Why this processor cannot honour the pin, or None when it can."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return f"this processor is {platform.machine() or 'unknown'}, not x86-64"
    flags = _cpu_flags()
    if flags is not None and "avx2" not in flags:
        return "this x86-64 processor has no AVX2"
    return None


def apply() -> dict[str, Any]:
    """Pin the kernels in this process (once; later calls return the same state).

    Sets :func:`settings` in ``os.environ`` (so processes started from here inherit
    it), unless ``FASHION_OPTIM_PIN=off`` or the processor cannot honour it (said once,
    as a :class:`RuntimeWarning`). Must run before torch and numpy choose their kernels:
    torch chooses at its first operation, numpy when it is imported.
    """
    if _applied:
        return _applied
    reason = _honourable()
    before = {lib: lib not in sys.modules for lib in ("torch", "numpy")}
    if not _requested():
        state = "off"
    elif reason is not None:
        state = "unavailable"
        if not os.environ.get(_SAID):
            os.environ[_SAID] = "1"
            warnings.warn(
                f"fashion_optim cannot pin the CPU kernels to {ISA}: {reason}. Training goes "
                "on with this processor's own kernels, so its numbers may differ from the "
                "published ones in the last digits (see the site's reproducibility page).",
                RuntimeWarning,
                stacklevel=2,
            )
    else:
        state = ISA
        os.environ.update(settings())
    _applied.update(state=state, reason=reason, before=before)
    return _applied


def _hold(torch: Any) -> None:
    """Make torch, oneDNN and MKL choose their kernels now, while the pin's variables are
    set: each reads its variable at its first use, not when it loads, so a process whose
    environment loses them later (a caller removing them so that the processes it starts
    pin themselves) would otherwise compute unpinned under a pinned key."""
    torch.backends.cpu.get_cpu_capability()  # ATen
    image = torch.ones(2, 1, 8, 8)
    torch.nn.functional.conv2d(image, torch.ones(1, 1, 5, 5))  # oneDNN's convolution
    torch.ones(8, 8) @ torch.ones(8, 8)  # MKL's GEMM


def _in_force() -> bool:
    """Whether this process computes with the pinned kernels: decided at the first cache
    key (which comes before anything this package computes), and held from then on
    (:func:`_hold`). Not in force where torch chose its kernels before the pin was set,
    or where the pin's variables were gone from the environment by then."""
    if "in_force" not in _applied:
        in_force = True
        if _applied["state"] == ISA:
            import torch

            gone = sorted(k for k, v in settings().items() if os.environ.get(k) != v)
            if gone:
                in_force = False
                warnings.warn(
                    f"the CPU kernels' pin is not in force in this process: {', '.join(gone)} "
                    "no longer set as fashion_optim set them when torch, oneDNN and MKL "
                    "chose their kernels; its results are cached apart and may differ from "
                    "the published ones in the last digits. Leave the pin's variables set "
                    '(eval "$(python -m fashion_optim pin --export)").',
                    RuntimeWarning,
                    stacklevel=3,
                )
            else:
                _hold(torch)
                in_force = torch.backends.cpu.get_cpu_capability() == ISA
                if not in_force:
                    warnings.warn(
                        "torch chose its CPU kernels before fashion_optim was imported, so "
                        f"this process is not pinned to {ISA}: its results are cached apart "
                        "and may differ from the published ones in the last digits. Import "
                        "fashion_optim before torch (or run nothing in torch before "
                        "importing it).",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        _applied["in_force"] = in_force
    return _applied["in_force"]


def key() -> dict[str, Any]:
    """The pin's part of a cache key: the pin's state and, when in force, its settings
    (``"not in force"`` where torch had chosen its kernels before the pin was set, or the
    pin's variables were removed from the environment before the first key). From the
    first key on, the pin holds in this process whatever becomes of its variables."""
    state = apply()["state"]
    if state == ISA and not _in_force():
        return {"state": "not in force"}
    return {"state": state, **(settings() if state == ISA else {})}


def status() -> dict[str, Any]:
    """Whether the pin is in force in this process, as a dict.

    ``state`` (``"AVX2"``, ``"off"``, ``"unavailable"``, or ``"not in force"`` where
    torch had chosen its kernels before the pin was set), ``reason`` (why it is
    unavailable), ``before_torch`` and ``before_numpy`` (whether it was set before
    this process loaded them), ``torch_capability`` (the kernels torch uses: loads
    torch), ``processor`` and ``settings`` (the variables, as set in this process).
    """
    import torch

    state = apply()
    return {
        "state": "not in force" if state["state"] == ISA and not _in_force() else state["state"],
        "reason": state["reason"],
        "before_torch": state["before"]["torch"],
        "before_numpy": state["before"]["numpy"],
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "processor": processor(),
        "settings": {k: os.environ.get(k) for k in settings()},
    }


def describe() -> str:
    """One line for banners and records: e.g. ``"CPU kernels pinned to AVX2"``."""
    state = apply()
    if state["state"] == ISA and not _in_force():
        return "CPU kernels not pinned (torch chose its kernels before the pin was set)"
    if state["state"] == ISA:
        return f"CPU kernels pinned to {ISA}"
    if state["state"] == "off":
        return f"CPU kernels not pinned ({ENV_PIN}=off)"
    return f"CPU kernels not pinned ({state['reason']})"
