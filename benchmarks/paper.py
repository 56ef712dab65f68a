"""Published numbers of the Theano paper (Bergstra et al., SciPy 2010).

Hardware then: Intel Core2 Duo E8500 3.16 GHz, one thread, MKL BLAS, float64 on the CPU;
NVIDIA GeForce GTX 285, float32, on the GPU. Metric: examples per second.
"""

from __future__ import annotations

CITATION = (
    'Bergstra et al., "Theano: A CPU and GPU Math Compiler in Python", Proc. SciPy 2010, '
    "DOI 10.25080/Majora-92bf1922-003"
)
HARDWARE = "Core2 Duo E8500 3.16 GHz, 1 thread, MKL, float64; GPU: GTX 285, float32"
HARDWARE_SHORT = "Core2 Duo E8500, 1 thread, float64\n(GPU rows: GTX 285, float32)"

# Fig. 5: MLP 784-500-10, batch 60.
MLP = {
    "Theano GPU (float32)": 38_310.0,
    "MATLAB + GPUmat (GPU)": 5_865.0,
    "Theano CPU (float64)": 6_574.0,
    "MATLAB CPU": 4_093.0,
    "NumPy CPU (hand-written)": 3_580.0,
    "Torch 5 CPU": 876.0,
}

# Fig. 6: ConvLarge, batch 1 (the plotted bars).
CONV = {
    "Theano GPU": 79.0,
    "Theano CPU": 16.5,
    "EBLearn (C++)": 7.44,
    "Torch 5": 6.83,
    "SciPy convolve2d (forward only)": 2.83,
}

# Fig. 7: read off the plot, approximate speed-ups over NumPy.
ELEMWISE_NOTE = (
    "paper (2010, read off Fig. 7): compiled code loses at 1e3 elements and never beats NumPy on "
    "a+1; best cases about 6x (a**2+b**2+2ab at 1e6) and about 36x (2a+b**10 at 1e5; numexpr ~18x)"
)
ELEMWISE_BEST = {"a**2 + b**2 + 2*a*b": (1_000_000, 6.0), "2*a + b**10": (100_000, 36.0)}

GPU_OVER_CPU_MLP = 5.8  # Theano GPU / Theano CPU on Fig. 5
