"""Which implementation a kernel call runs: the Triton kernel or its torch reference.

Triton is imported only by the `*_triton.py` modules, and those only when a call resolves to
"triton": the CPU runtime never imports it, and tests can set TRITON_INTERPRET=1 before it is.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Literal

import torch

Backend = Literal["auto", "torch", "triton"]

# find_spec locates the package without importing it; a module constant, so torch.compile reads it freely.
HAS_TRITON = importlib.util.find_spec("triton") is not None

# "auto" takes the kernel only for calls at least this large (elements of the first input). Below it a call is
# launch-bound: on an H200 the tiny preset's whole denoiser (calls of at most 0.6 M elements) ran 0.80x torch
# eager with the kernels, the base preset's (37.7 M) 1.27x (docs/kernels_bench.md, docs/kernels.md).
AUTO_MIN_ELEMENTS = 1 << 20


def use_triton(backend: Backend, *tensors: torch.Tensor) -> bool:
    """True when a call with these input tensors should run the Triton kernel.

    "auto": Triton for CUDA tensors of at least AUTO_MIN_ELEMENTS elements; the reference on CPU, for
    smaller calls (launch-bound, where torch's dispatch is cheaper than a Triton launch), and whenever
    autograd must record the call (the kernels are forward-only). "triton": always the kernel (CPU tensors need the
    interpreter). "torch": always the reference. ONNX export always traces the reference, which
    exporters know; a custom op they would not.
    """
    if backend not in ("auto", "torch", "triton"):
        raise ValueError(f"unknown kernel backend {backend!r}; choose auto, torch or triton")
    if backend == "torch" or torch.onnx.is_in_onnx_export():
        return False
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    if backend == "auto":
        return HAS_TRITON and tensors[0].is_cuda and not needs_grad and tensors[0].numel() >= AUTO_MIN_ELEMENTS
    if needs_grad:
        raise RuntimeError("the Triton kernels are forward-only: call them under torch.no_grad() or use backend='torch'")
    if not tensors[0].is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("backend='triton' on CPU tensors needs TRITON_INTERPRET=1 set before the first Triton call")
    return True


def eager_launch() -> bool:
    """Outside torch.compile, call the launchers directly: the custom operators exist for compile's graph
    capture (and opcheck), and their dispatch costs tens of microseconds a call, as much as a tiny-preset
    kernel itself (kernels.bench on an H200; docs/kernels.md)."""
    return not torch.compiler.is_compiling()
