"""python -m kernels.bench: the Triton kernels against torch at the tiny and base presets' shapes (CUDA only).

Attention is reported in TFLOP/s (4 B H Lq Lk D flops: two matmuls) against torch's SDPA pinned to
its flash backend; the fused element-wise ops in GB/s (bytes each must read and write once) against
the torch reference, eager and under torch.compile, and as a share of this GPU's measured
device-to-device copy bandwidth (the achievable peak). Shapes are one stream's teacher step: the
three CFG branches batched, as fada_stream.sampling.multi_cfg runs them. Writes docs/kernels_bench.md.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from fada_stream.model.audio_encoder import AudioEncoder
from fada_stream.model.config import PRESETS
from kernels.attention import flash_attention
from kernels.cfg_token import (
    gated_residual, gated_residual_reference, modulated_layer_norm, modulated_layer_norm_reference, multi_cfg_combine, multi_cfg_reference,
)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Case:
    """One benchmarked call: implementations by name, and the work it does (flops or bytes)."""

    op: str
    shape: str
    impls: dict[str, Callable[[], torch.Tensor]]
    flops: float = 0.0
    bytes: float = 0.0


def _sdpa_flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # pinned: the fallback math kernel would flatter ours
        return F.scaled_dot_product_attention(q, k, v)


def _triton_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return flash_attention(q, k, v, backend="triton")


def attention_cases(preset: str, batch: int, dtype: torch.dtype) -> list[Case]:
    cfg = PRESETS[preset]()
    d, h, f = cfg.dit.width, cfg.dit.heads, cfg.dit.frames
    n, a = cfg.dit.grid**2, AudioEncoder(cfg.audio).n_tokens
    uses = {  # (sequences, Lq, Lk): fada_stream/model/dit.py's three attentions
        "spatial + reference": (batch * f, n, 2 * n),
        "temporal": (batch * n, f, f),
        "audio cross": (batch * f, n, a),
    }
    compiled_sdpa, compiled_ours = torch.compile(_sdpa_flash), torch.compile(_triton_attention)
    cases = []
    for name, (s, lq, lk) in uses.items():
        q = torch.randn(s, h, lq, d // h, device="cuda", dtype=dtype)  # (S, H, Lq, hd)
        k, v = (torch.randn(s, h, lk, d // h, device="cuda", dtype=dtype) for _ in range(2))  # (S, H, Lk, hd)
        cases.append(Case(
            f"attention {name}", f"({s}, {h}, {lq}, {lk}, {d // h})",
            {"sdpa-flash": lambda q=q, k=k, v=v: _sdpa_flash(q, k, v),
             "sdpa-flash compiled": lambda q=q, k=k, v=v: compiled_sdpa(q, k, v),
             "triton": lambda q=q, k=k, v=v: _triton_attention(q, k, v),
             "triton compiled": lambda q=q, k=k, v=v: compiled_ours(q, k, v)},
            flops=4.0 * s * h * lq * lk * (d // h),
        ))
    return cases


def fused_cases(preset: str, batch: int, dtype: torch.dtype) -> list[Case]:
    cfg = PRESETS[preset]()
    d, f, n = cfg.dit.width, cfg.dit.frames, cfg.dit.grid**2
    es = torch.finfo(dtype).bits // 8
    x, y = (torch.randn(batch, f * n, d, device="cuda", dtype=dtype) for _ in range(2))  # (B, F*N, D) frame tokens
    shift, scale = (torch.randn(batch, f, d, device="cuda", dtype=dtype) for _ in range(2))  # (B, F, D) per-frame modulation
    lat = (batch // 3 or 1, f, cfg.dit.latent_channels, cfg.dit.latent_size, cfg.dit.latent_size)
    u, r, full = (torch.randn(lat, device="cuda", dtype=dtype) for _ in range(3))  # (B/3, F, C, h, w) per branch
    ln_ref, res_ref, cfg_ref = (torch.compile(fn) for fn in (modulated_layer_norm_reference, gated_residual_reference, multi_cfg_reference))
    mod_bytes = 2 * shift.numel() * es
    return [
        Case("modulated LayerNorm", str(tuple(x.shape)), {
            "torch eager": lambda: modulated_layer_norm_reference(x, shift, scale),
            "torch compiled": lambda: ln_ref(x, shift, scale),
            "triton": lambda: modulated_layer_norm(x, shift, scale, backend="triton")}, bytes=2 * x.numel() * es + mod_bytes),
        Case("gated residual", str(tuple(x.shape)), {
            "torch eager": lambda: gated_residual_reference(x, shift, y),
            "torch compiled": lambda: res_ref(x, shift, y),
            "triton": lambda: gated_residual(x, shift, y, backend="triton")}, bytes=3 * x.numel() * es + mod_bytes / 2),
        Case("multi-CFG combine", str(lat), {
            "torch eager": lambda: multi_cfg_reference(u, r, full, 1.5, 2.5),
            "torch compiled": lambda: cfg_ref(u, r, full, 1.5, 2.5),
            "triton": lambda: multi_cfg_combine(u, r, full, 1.5, 2.5, backend="triton")}, bytes=4 * u.numel() * es),
    ]


def time_ms(fn: Callable[[], torch.Tensor]) -> float:
    from triton.testing import do_bench

    return do_bench(fn, warmup=25, rep=200, return_mode="median")


def copy_bandwidth() -> float:
    """GB/s of a 1 GiB device-to-device copy: the bandwidth an element-wise kernel can hope for."""
    src = torch.empty(1 << 28, device="cuda", dtype=torch.float32)  # 1 GiB
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / time_ms(lambda: dst.copy_(src)) / 1e6


def measure(case: Case) -> dict[str, float | str]:
    """Milliseconds per implementation; a baseline that fails (e.g. SDPA-flash refusing a shape) gets its error's name, not a crash."""
    times: dict[str, float | str] = {}
    for name, fn in case.impls.items():
        try:
            with torch.inference_mode():
                times[name] = time_ms(fn)
        except Exception as e:  # noqa: BLE001 - the table says which baseline could not run and why
            times[name] = f"n/a ({type(e).__name__})"
    return times


def rate(case: Case, ms: float) -> float:
    """TFLOP/s for attention, GB/s for the memory-bound ops."""
    return case.flops / ms / 1e9 if case.flops else case.bytes / ms / 1e6


def table(cases: list[Case], times: list[dict[str, float | str]], baseline: str, peak: float | None) -> list[str]:
    names = list(cases[0].impls)
    head = ["op", "shape", *names, f"triton / {baseline}"] + (["triton % of copy"] if peak else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case, t in zip(cases, times):
        unit = "TFLOP/s" if case.flops else "GB/s"
        cells = [f"{rate(case, t[n]):.3g} {unit} ({t[n] * 1e3:.1f} us)" if isinstance(t[n], float) else t[n] for n in names]
        ours, base = t["triton"], t[baseline]
        cells.append(f"{base / ours:.2f}x" if isinstance(ours, float) and isinstance(base, float) else "n/a")
        if peak:
            cells.append(f"{100 * rate(case, ours) / peak:.0f}%" if isinstance(ours, float) else "n/a")
        lines.append("| " + " | ".join([case.op, case.shape, *cells]) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=["tiny", "base"])
    p.add_argument("--batch", type=int, default=3, help="sequences per denoiser call: 3 = one stream's CFG branches")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    p.add_argument("--out", type=Path, default=Path("docs/kernels_bench.md"))
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("kernels.bench needs a CUDA GPU (the kernels' CPU path is the torch reference); nothing measured.", file=sys.stderr)
        return 2

    dtype = DTYPES[args.dtype]
    gpu = torch.cuda.get_device_name()
    import triton

    peak = copy_bandwidth()
    doc = [
        f"# Kernel benchmark: {gpu}", "",
        f"`python -m kernels.bench {' '.join(argv if argv is not None else sys.argv[1:])}`: torch {torch.__version__}, "
        f"triton {triton.__version__}, {args.dtype}, batch {args.batch}. Medians of triton.testing.do_bench; "
        f"copy bandwidth (achievable peak) {peak:.0f} GB/s.", "",
    ]
    for preset in args.presets:
        for kind, cases, baseline, share in (
            ("attention", attention_cases(preset, args.batch, dtype), "sdpa-flash", None),
            ("fused element-wise ops", fused_cases(preset, args.batch, dtype), "torch eager", peak),
        ):
            doc += [f"## {preset}: {kind}", "", *table(cases, [measure(c) for c in cases], baseline, share), ""]
            print("\n".join(doc[-len(cases) - 5 :]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(doc))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
