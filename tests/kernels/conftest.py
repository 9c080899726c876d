"""Kernel tests: compiled Triton on a GPU, Triton's CPU interpreter otherwise.

Triton decides between compiling and interpreting when a kernel is decorated, i.e. when
kernels/*_triton.py is first imported (the package imports them lazily, so nothing else in the
suite does): the variable is set here, at conftest import, before any test can import them.
"""
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture(scope="session")
def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _max_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return (out.double() - ref.double()).abs().max().item()


def _assert_as_accurate_as_torch(out: torch.Tensor, out_torch: torch.Tensor, ref: torch.Tensor) -> None:
    """flash-attention's test criterion: the kernel's error against a float64 reference is at most twice
    that of torch computing in the kernel's dtype, plus one unit of that dtype's epsilon (so a
    reference that happens to round exactly does not demand an exact kernel)."""
    err, err_torch = _max_err(out, ref), _max_err(out_torch, ref)
    bound = 2 * err_torch + torch.finfo(out.dtype).eps
    assert err <= bound, f"kernel error {err:.3g} > {bound:.3g} (torch {out.dtype}: {err_torch:.3g})"


@pytest.fixture(scope="session")
def as_accurate_as_torch():
    """The accuracy assertion, as a fixture: test modules do not import each other under --import-mode=importlib."""
    return _assert_as_accurate_as_torch
