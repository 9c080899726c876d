"""Backend resolution, torch.library registration (torch.compile, opcheck), and Triton staying out of the runtime."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels.attention import _flash_attention_op, flash_attention
from kernels.backend import AUTO_MIN_ELEMENTS, use_triton
from kernels.cfg_token import _gated_residual_op, _modulated_layer_norm_op, _multi_cfg_op, modulated_layer_norm

ROOT = Path(__file__).resolve().parents[2]


def test_auto_is_triton_only_on_cuda_without_autograd_for_large_calls(device):
    x = torch.randn(AUTO_MIN_ELEMENTS, device=device)
    assert use_triton("auto", x) == x.is_cuda
    assert not use_triton("auto", x.requires_grad_())
    with torch.no_grad():
        assert use_triton("auto", x) == x.is_cuda
    assert use_triton("triton", x[:-1].detach())  # forcing still forces (on CPU, conftest has set the interpreter)
    assert not use_triton("torch", x)
    with pytest.raises(ValueError, match="unknown kernel backend"):
        use_triton("cuda", x)


class _CudaLike:
    """What use_triton reads of a tensor, for a CUDA tensor of n elements: the size rule is testable without a GPU."""

    is_cuda, requires_grad = True, False

    def __init__(self, n: int):
        self.n = n

    def numel(self) -> int:
        return self.n


def test_auto_leaves_launch_bound_calls_to_torch():
    assert use_triton("auto", _CudaLike(AUTO_MIN_ELEMENTS))
    assert not use_triton("auto", _CudaLike(AUTO_MIN_ELEMENTS - 1))  # the tiny preset's calls: torch's dispatch is cheaper
    assert use_triton("triton", _CudaLike(1))


def test_forced_triton_refuses_autograd(device):
    x = torch.randn(2, 3, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="forward-only"):
        use_triton("triton", x)
    with torch.no_grad():
        assert use_triton("triton", x)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU tensors only")
def test_forced_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        use_triton("triton", torch.randn(2))


def test_onnx_export_traces_the_reference(monkeypatch):
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    assert not use_triton("triton", torch.randn(2))


@pytest.mark.parametrize("op,args", [
    (_flash_attention_op, lambda d: (torch.randn(2, 2, 9, 40, device=d), torch.randn(2, 2, 5, 40, device=d), torch.randn(2, 2, 5, 40, device=d), 0.3, torch.tensor([5, 2], device=d))),
    (_modulated_layer_norm_op, lambda d: (torch.randn(2, 6, 24, device=d), torch.randn(2, 3, 24, device=d), torch.randn(2, 3, 24, device=d), 1e-6)),
    (_gated_residual_op, lambda d: (torch.randn(2, 6, 24, device=d), torch.randn(2, 1, 24, device=d), torch.randn(2, 6, 24, device=d))),
    (_multi_cfg_op, lambda d: (torch.randn(7, 3, device=d), torch.randn(7, 3, device=d), torch.randn(7, 3, device=d), 1.5, 2.5)),
], ids=["flash_attention", "modulated_layer_norm", "gated_residual", "multi_cfg_combine"])
def test_registered_ops_pass_opcheck(op, args, device):
    torch.library.opcheck(op, args(device))


def test_compiles_into_one_graph(device):
    """The custom ops are opaque nodes to torch.compile: no graph breaks around them."""
    def block(q, k, v, shift, scale):
        o = flash_attention(q, k, v, backend="triton")  # (B, H, L, D)
        return modulated_layer_norm(o.transpose(1, 2).flatten(2), shift, scale, backend="triton")  # (B, L, H*D)

    args = (torch.randn(2, 2, 9, 32, device=device), torch.randn(2, 2, 18, 32, device=device), torch.randn(2, 2, 18, 32, device=device),
            torch.randn(2, 64, device=device), torch.randn(2, 64, device=device))
    compiled = torch.compile(block, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(*args), block(*args))


def test_the_cpu_runtime_never_imports_triton():
    code = (
        "import sys, torch\n"
        "from fada_stream.model import build_teacher, preset\n"
        "from fada_stream.sampling import combine_multi_cfg\n"
        "cfg = preset('tiny', latent_size=8, width=32, depth=1, heads=2, frames=4, motion_frames=1)\n"
        "m = build_teacher(cfg).eval()\n"
        "with torch.no_grad():\n"
        "    v = m(torch.randn(1, 4, 4, 8, 8), torch.rand(1), torch.randn(1, 4, 8, 8), torch.randn(1, 80, cfg.audio.mel_span(4)))\n"
        "    combine_multi_cfg(v, v, v, 1.5, 2.5)\n"
        "assert 'triton' not in sys.modules, 'triton was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)
