"""Pure compute kernels: array backends, FGW, graphs, rate-distortion.

No Django, Celery or platform imports and no I/O: arrays in, arrays or small
dataclasses out, usable from a notebook with plain numpy arrays.
"""
