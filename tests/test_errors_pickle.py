"""Every metalgpu exception crosses a process boundary whole: pickled and unpickled, it keeps its type, its text
and its fields (multiprocessing and Dask send errors between processes this way)."""
from __future__ import annotations

import pickle

import pytest

import metalgpu
from metalgpu import errors
from metalgpu.errors import Diagnostic, ShaderCompileError, SourcePos

SIMPLE = [errors.MetalError, errors.BackendUnavailableError, errors.FunctionNotFoundError, errors.ArgumentError,
          errors.BufferReleasedError, errors.OutOfMemoryError, errors.DispatchError]


def _every_error_class() -> set[type]:
    return {value for value in vars(errors).values()
            if isinstance(value, type) and issubclass(value, errors.MetalError)}


def test_the_lists_below_cover_every_exception_class():
    assert _every_error_class() == set(SIMPLE) | {ShaderCompileError}


@pytest.mark.parametrize("cls", SIMPLE, ids=lambda c: c.__name__)
def test_simple_errors_round_trip(cls):
    error = cls("something went wrong: 42")
    error.kernel = "saxpy"  # fields set after construction travel too
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert copy.kernel == "saxpy"


def test_shader_compile_error_round_trips_with_its_fields():
    located = Diagnostic("unknown type 'flaot'", SourcePos("k.metal", 3, 5), "error", "    flaot x = 1;")
    warning = Diagnostic("unused variable 'y'", SourcePos("k.metal", 4, 9), "warning", "    int y;")
    error = ShaderCompileError([located, warning, Diagnostic("in a header")], log="the full log", backend="cpu",
                               source="kernel void k() {}", options=("g++", "-O2"))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ShaderCompileError
    assert str(copy) == str(error)
    assert copy.diagnostics == error.diagnostics
    assert (copy.log, copy.backend, copy.source, copy.options) == ("the full log", "cpu", "kernel void k() {}",
                                                                   ("g++", "-O2"))
    assert copy.pos == SourcePos("k.metal", 3, 5)


def test_a_real_front_end_error_round_trips(iface):
    with pytest.raises(ShaderCompileError) as caught:
        iface.load_shader_from_str("kernel void k(device float* x [[buffer(0)]] {}\n")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value)
    assert copy.diagnostics == caught.value.diagnostics
    assert isinstance(copy, metalgpu.MetalError)
