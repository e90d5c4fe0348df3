"""CUDA kernels compiled at run time through CuPy."""
