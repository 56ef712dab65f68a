"""Describe the machine and control thread counts, so every number is reported with its setting."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
from typing import Any

PACKAGES = (
    "numpy",
    "pytensor",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "torch",
    "numba",
    "matplotlib",
    "cupy",
    "jax",
    "numexpr",
)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """SIMD flags worth knowing when reading the numbers (AVX2, AVX-512, FMA)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni")
                    return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []


def versions() -> dict[str, str]:
    """Installed versions of the packages the benchmark can use (absent ones left out)."""
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        import minidl

        found["minidl"] = minidl.__version__
    except ImportError:
        pass
    return found


_THREADS: dict[str, int | None] = {"count": None}


def limit_threads(count: int | None) -> None:
    """Cap BLAS/OpenMP/Numba/torch/TensorFlow threads to ``count`` for the rest of the run.

    Environment variables cover libraries loaded later; ``threadpoolctl`` caps the BLAS pools
    already loaded (NumPy's); ``apply_framework_threads`` sets torch's and TensorFlow's pools
    when a row first imports them.
    """
    if count is None:
        return
    _THREADS["count"] = count
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
        "MINIDL_NUMPY_THREADS",  # the numpy backend's conv/pool worker threads
    ):
        os.environ[var] = str(count)
    if importlib.util.find_spec("threadpoolctl") is not None:
        import threadpoolctl

        # Kept alive on purpose: the limit lasts for the whole run.
        globals()["_THREADPOOL_LIMIT"] = threadpoolctl.threadpool_limits(limits=count)


def apply_framework_threads(framework: str) -> None:
    """Set a framework's own thread pools to the ``limit_threads`` count (if one was given)."""
    count = _THREADS["count"]
    if count is None:
        return
    if framework == "torch":
        import_quietly("torch").set_num_threads(count)
    elif framework == "tensorflow":
        tf = import_quietly("tensorflow")
        try:
            tf.config.threading.set_intra_op_parallelism_threads(count)
            tf.config.threading.set_inter_op_parallelism_threads(count)
        except RuntimeError:  # already initialised: TF_NUM_*_THREADS applied at start-up
            pass


def thread_report() -> dict[str, Any]:
    """Thread counts actually in effect for each library that is loaded."""
    report: dict[str, Any] = {"cpu_count": os.cpu_count()}
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "MINIDL_NUMPY_THREADS",
        "OPENBLAS_CORETYPE",  # pins OpenBLAS's kernels (the report names those in use)
        "OPENBLAS_L2_SIZE",
    ):
        report[var] = os.environ.get(var, "unset")
    if importlib.util.find_spec("threadpoolctl") is not None:
        import threadpoolctl

        report["blas"] = [
            {k: info.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
            for info in threadpoolctl.threadpool_info()
        ]
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        report["torch_threads"] = torch.get_num_threads()
        report["torch_interop_threads"] = torch.get_num_interop_threads()
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        intra = tf.config.threading.get_intra_op_parallelism_threads()
        inter = tf.config.threading.get_inter_op_parallelism_threads()
        report["tf_intra_op"] = intra or f"0 (TensorFlow default: {os.cpu_count()})"
        report["tf_inter_op"] = inter or f"0 (TensorFlow default: {os.cpu_count()})"
    if "numba" in sys.modules:
        report["numba_threads"] = sys.modules["numba"].config.NUMBA_NUM_THREADS
    return report


def machine() -> dict[str, Any]:
    """CPU model, core count, OS and package versions."""
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions(),
    }


def _try_import(name: str) -> Any:
    try:
        return import_quietly(name)
    except ImportError:
        return None


def import_quietly(name: str) -> Any:
    """Import ``name`` with file descriptor 2 sent to /dev/null (TensorFlow's start-up banner)."""
    if name in sys.modules:
        return sys.modules[name]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        return importlib.import_module(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def gpu_inventory() -> dict[str, str]:
    """Which frameworks see a CUDA GPU; values say what was found (empty dict: no GPU anywhere)."""
    found: dict[str, str] = {}
    torch = _try_import("torch")
    if torch is not None and torch.cuda.is_available():
        found["torch"] = torch.cuda.get_device_name(0)
    tf = _try_import("tensorflow")
    if tf is not None and tf.config.list_physical_devices("GPU"):
        found["tensorflow"] = ", ".join(g.name for g in tf.config.list_physical_devices("GPU"))
    cupy = _try_import("cupy")
    if cupy is not None:
        try:
            if cupy.cuda.runtime.getDeviceCount() > 0:
                found["cupy"] = f"{cupy.cuda.runtime.getDeviceCount()} device(s)"
        except Exception:  # noqa: BLE001 - CuPy raises its own CUDA errors without a driver
            pass
    jax = _try_import("jax")
    if jax is not None:
        try:
            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if gpus:
                found["jax"] = ", ".join(str(d) for d in gpus)
        except RuntimeError:
            pass
    return found
