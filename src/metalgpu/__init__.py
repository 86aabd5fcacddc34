"""metalgpu: Metal Shading Language compute kernels from Python, on Metal, NVIDIA GPUs or the CPU,
with buffers that are numpy arrays."""
from ._version import __version__
from .backends import available as backends
from .batch import Batch
from .buffer import Buffer
from .dispatch import Dispatch
from .errors import (
    ArgumentError,
    BackendUnavailableError,
    BufferReleasedError,
    DispatchError,
    FunctionNotFoundError,
    MetalError,
    OutOfMemoryError,
    ShaderCompileError,
)
from .interface import Interface
from .ops import (
    UNARY_FUNCTIONS,
    abs,
    acos,
    asin,
    atan,
    ceil,
    cos,
    cosh,
    exp,
    exp2,
    floor,
    from_dlpack,
    log,
    log2,
    log10,
    round,
    rsqrt,
    sin,
    sinh,
    sqrt,
    tan,
    tanh,
    trunc,
)
from .sizes import MetalSize

__all__ = ["__version__", "backends", "Interface", "Buffer", "Dispatch", "MetalSize", "from_dlpack", "Batch",
           "MetalError", "BackendUnavailableError", "ShaderCompileError", "FunctionNotFoundError",
           "ArgumentError", "BufferReleasedError", "OutOfMemoryError", "DispatchError", *UNARY_FUNCTIONS]
