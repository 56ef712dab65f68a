"""PyTensor configuration for the theano backend: flags, BLAS linking and compile modes.

PyTensor (Theano's maintained successor) is imported here and nowhere earlier. Flags the user
set (in ``PYTENSOR_FLAGS`` or a ``.pytensorrc`` file) are never overridden; only flags left at
their defaults are changed:

* ``floatX=float32`` so Python floats mixed with tensors stay float32.
* ``traceback__limit=0``: no creation stack trace on every graph variable (slow to record).
* ``blas__ldflags``: pip wheels of PyTensor find no BLAS to link their C code against, and their
  matrix products then fall back to slow paths. SciPy's wheel ships an OpenBLAS whose Fortran
  symbols carry a ``scipy_`` prefix; linking that library and renaming the symbols with
  preprocessor defines gives PyTensor's C ``Gemm`` / ``Dot22`` ops full BLAS speed.

The compile mode of each step is read when the step is compiled, from ``MINIDL_THEANO_MODE``,
else from PyTensor's own ``mode`` flag when the user set it, else ``C`` when BLAS could be
linked and ``NUMBA`` otherwise:

* ``C`` (also ``CVM``, ``FAST_RUN``): all rewrites, C implementations run by PyTensor's C
  virtual machine; compiled modules are cached in PyTensor's ``compiledir`` across runs.
* ``NUMBA``: all rewrites, the graph JIT-compiled by Numba on the first call (cached too).
* ``JAX``: the graph compiled by JAX/XLA, on a GPU when JAX has one (``pip install jax``).
* ``FAST_COMPILE``: PyTensor's quick mode, Python implementations and a few rewrites.
* ``PY``: Python implementations and only the merge rewrites; compiles fastest, runs slowest
  (the test suite uses it for its many small graphs).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
import os
from pathlib import Path

import pytensor
from pytensor.compile.mode import Mode, get_mode
from pytensor.graph.rewriting.db import RewriteDatabaseQuery
from pytensor.link.vm import VMLinker

logger = logging.getLogger("minidl")

MODE_ENV = "MINIDL_THEANO_MODE"

# Fortran BLAS routines PyTensor's C code calls for real float32/float64 data.
_BLAS_ROUTINES = ("sgemm", "dgemm", "sgemv", "dgemv", "sger", "dger", "sdot", "ddot")

# Our name for a mode -> the PyTensor mode it stands for.  "C" means PyTensor's C virtual
# machine with C implementations where they exist (PyTensor's strict "c" linker refuses graphs
# holding any op without C code, such as Softmax, so it is never what a user wants).
MODE_ALIASES = {
    "C": "CVM",
    "CVM": "CVM",
    "FAST_RUN": "CVM",
    "NUMBA": "NUMBA",
    "JAX": "JAX",
    "FAST_COMPILE": "FAST_COMPILE",
    "PY": "PY",
}


def _user_set(key: str) -> bool:
    """True when ``key`` was given in ``PYTENSOR_FLAGS`` or a PyTensor config file."""
    param = pytensor.config._config_var_dict.get(key)
    if param is not None and hasattr(param, "val"):  # already read: PyTensor knows its origin
        return not param.is_default
    try:
        pytensor.config.fetch_val_for_key(key)
    except KeyError:
        return False
    return True


def _scipy_openblas() -> tuple[Path, str] | None:
    """SciPy wheel's bundled OpenBLAS (path, symbol prefix), when it exports prefixed BLAS."""
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.submodule_search_locations:
        return None
    libs_dir = Path(next(iter(spec.submodule_search_locations))).parent / "scipy.libs"
    for path in sorted(libs_dir.glob("libscipy_openblas*.so*")):
        if "64_" in path.name:  # the ILP64 build uses 64-bit integers: not PyTensor's ABI
            continue
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        if all(hasattr(library, f"scipy_{r}_") for r in _BLAS_ROUTINES):
            return path, "scipy_"
    return None


def blas_ldflags() -> str:
    """Linker flags that give PyTensor's C code a real BLAS, or ``""`` when none is found."""
    found = _scipy_openblas()
    if found is None:
        return ""
    path, prefix = found
    renames = " ".join(f"-D{r}_={prefix}{r}_" for r in _BLAS_ROUTINES)
    # ``-Wl,-L`` rather than ``-L``: PyTensor scans ``-L`` folders for a library whose name
    # contains the ``-l`` name and warns when the ``-l:file`` form does not match.
    return f"-Wl,-L{path.parent} -Wl,-rpath,{path.parent} -l:{path.name} {renames}"


def configure() -> None:
    """Set the PyTensor flags minidl needs, leaving any the user set alone."""
    if not _user_set("floatX"):
        pytensor.config.floatX = "float32"
    if not _user_set("traceback__limit"):  # creation stack traces cost graph-building time
        pytensor.config.traceback__limit = 0
    if not _user_set("blas__ldflags"):
        flags = blas_ldflags()
        pytensor.config.blas__ldflags = flags
        if flags:
            logger.debug("theano backend: PyTensor linked to BLAS with %s", flags)
        else:
            logger.info("theano backend: no BLAS found for PyTensor's C code; default mode NUMBA")


def default_mode_name() -> str:
    """The mode used when ``MINIDL_THEANO_MODE`` is not set."""
    if _user_set("mode"):
        return str(pytensor.config.mode)
    return "C" if pytensor.config.blas__ldflags else "NUMBA"


def mode_name() -> str:
    """The mode name steps are compiled with now (upper case, validated)."""
    name = (os.environ.get(MODE_ENV) or default_mode_name()).strip().upper()
    if name not in MODE_ALIASES:
        raise ValueError(
            f"{MODE_ENV} must be one of {', '.join(sorted(MODE_ALIASES))}. "
            f"Received: {MODE_ENV}={os.environ.get(MODE_ENV, name)!r}"
        )
    return name


def compile_mode() -> Mode:
    """The PyTensor ``Mode`` for compiling a step, checking that its runtime is present."""
    name = mode_name()
    target = MODE_ALIASES[name]
    if target == "JAX" and importlib.util.find_spec("jax") is None:
        raise ImportError(
            f"{MODE_ENV}=JAX needs the 'jax' package, which is not installed. Install it with: "
            "pip install jax  (or 'pip install \"jax[cuda12]\"' to run steps on an NVIDIA GPU)."
        )
    if target == "NUMBA" and importlib.util.find_spec("numba") is None:
        raise ImportError(
            f"{MODE_ENV}=NUMBA needs the 'numba' package, which is not installed. "
            "Install it with: pip install numba"
        )
    return _tuned_mode(target)


def compile_mode_named(name: str) -> Mode:
    """The tuned PyTensor ``Mode`` for one of our mode names (see ``MODE_ALIASES``)."""
    return _tuned_mode(MODE_ALIASES[name])


# Rewrites that cost seconds per compile on a CNN (measured with cProfile on ConvLarge) and
# never pay off on neural networks: the first four ask, for every matrix product or
# transpose, whether an operand is diagonal / orthogonal / a selection / symmetric by walking
# the graph above it; the last two re-derive shapes for each of the many window slices of a
# convolution and its gradient.
_SLOW_USELESS_REWRITES = (
    "dot_diag_to_elemwise",
    "orthogonal_dot_transpose_to_eye",
    "selection_dot_to_indexing",
    "useless_symmetric_transpose",
    "local_useless_slice",
    "local_useless_inc_subtensor",
    # moves reshapes before unary ops; a reshaped activation (block pooling) then no longer
    # matches the one its gradient uses, and tanh is computed twice
    "local_reshape_lift",
    # turns softmax's exp / sum into PyTensor's Softmax, whose inner function compiles on the
    # step's first call (0.7 s) instead of fusing into the step's C loops
    "local_softmax_stabilize",
)


@functools.cache
def _tuned_mode(target: str) -> Mode:
    """PyTensor's ``target`` mode without rewrites that only cost time on neural networks."""
    if target == "PY":
        # Python implementations and only the cheap merge rewrites: the quickest to compile
        mode = Mode(VMLinker(use_cloop=False, c_thunks=False), RewriteDatabaseQuery(["merge"]))
    else:
        mode = get_mode(target)
    return mode.excluding(*_SLOW_USELESS_REWRITES)


def device() -> str:
    """``"gpu"`` when steps compile to JAX and JAX's default device is a GPU, else ``"cpu"``."""
    if MODE_ALIASES.get(mode_name()) != "JAX" or importlib.util.find_spec("jax") is None:
        return "cpu"
    import jax

    return "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"
