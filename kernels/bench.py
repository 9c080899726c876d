"""python -m kernels.bench: the Triton kernels against torch at the tiny and base presets' shapes (CUDA only).

Attention is reported in TFLOP/s (4 B H Lq Lk D flops: two matmuls) against torch's SDPA pinned to
its flash backend; the fused element-wise ops in GB/s (bytes each must read and write once) against
the torch reference, eager and under torch.compile, and as a share of this GPU's measured
device-to-device copy bandwidth (the achievable peak). Shapes are one stream's teacher step: the
three CFG branches batched, as fada_stream.sampling.multi_cfg runs them. Then the whole denoiser (one
VideoDiT forward) with its torch and its Triton backend, and with --sweep the attention kernel over a
grid of tiles and the row kernels over rows per program and warps, next to the shipped heuristics.
Writes docs/kernels_bench.md after
every section, so a run stopped early still leaves what it measured.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from fada_stream.model.audio_encoder import AudioEncoder
from fada_stream.model import build_teacher, preset as model_preset
from fada_stream.model.config import PRESETS
from kernels.attention import flash_attention
from kernels.cfg_token import (
    gated_residual, gated_residual_reference, modulated_layer_norm, modulated_layer_norm_reference, multi_cfg_combine, multi_cfg_reference,
)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
DEVICE = "cuda"  # a module constant so the test can walk every code path on CPU tensors, in Triton's interpreter


@dataclass
class Case:
    """One benchmarked call: implementations by name, and the work it does (flops or bytes)."""

    op: str
    shape: str
    impls: dict[str, Callable[[], torch.Tensor]]
    flops: float = 0.0
    bytes: float = 0.0
    inputs: tuple[torch.Tensor, ...] = ()


def _sdpa_flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # pinned: the fallback math kernel would flatter ours
        return F.scaled_dot_product_attention(q, k, v)


def _triton_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return flash_attention(q, k, v, backend="triton")


def attention_cases(preset: str, batch: int, dtype: torch.dtype, compiled: bool = True) -> list[Case]:
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
        q = torch.randn(s, h, lq, d // h, device=DEVICE, dtype=dtype)  # (S, H, Lq, hd)
        k, v = (torch.randn(s, h, lk, d // h, device=DEVICE, dtype=dtype) for _ in range(2))  # (S, H, Lk, hd)
        impls = {"sdpa-flash": lambda q=q, k=k, v=v: _sdpa_flash(q, k, v),
                 "sdpa-flash compiled": lambda q=q, k=k, v=v: compiled_sdpa(q, k, v),
                 "triton": lambda q=q, k=k, v=v: _triton_attention(q, k, v),
                 "triton compiled": lambda q=q, k=k, v=v: compiled_ours(q, k, v)}
        if not compiled:
            impls = {n: fn for n, fn in impls.items() if "compiled" not in n}
        cases.append(Case(f"attention {name}", f"({s}, {h}, {lq}, {lk}, {d // h})", impls,
                          flops=4.0 * s * h * lq * lk * (d // h), inputs=(q, k, v)))
    return cases


def fused_cases(preset: str, batch: int, dtype: torch.dtype) -> list[Case]:
    cfg = PRESETS[preset]()
    d, f, n = cfg.dit.width, cfg.dit.frames, cfg.dit.grid**2
    es = torch.finfo(dtype).bits // 8
    x, y = (torch.randn(batch, f * n, d, device=DEVICE, dtype=dtype) for _ in range(2))  # (B, F*N, D) frame tokens
    shift, scale = (torch.randn(batch, f, d, device=DEVICE, dtype=dtype) for _ in range(2))  # (B, F, D) per-frame modulation
    lat = (batch // 3 or 1, f, cfg.dit.latent_channels, cfg.dit.latent_size, cfg.dit.latent_size)
    u, r, full = (torch.randn(lat, device=DEVICE, dtype=dtype) for _ in range(3))  # (B/3, F, C, h, w) per branch
    many = (32 * lat[0], *lat[1:])  # 32 streams' worth: one stream's latents are too few bytes to show bandwidth
    u32, r32, f32 = (torch.randn(many, device=DEVICE, dtype=dtype) for _ in range(3))
    ln_ref, res_ref, cfg_ref = (torch.compile(fn) for fn in (modulated_layer_norm_reference, gated_residual_reference, multi_cfg_reference))
    mod_bytes = 2 * shift.numel() * es
    return [
        Case("modulated LayerNorm", str(tuple(x.shape)), {
            "torch eager": lambda: modulated_layer_norm_reference(x, shift, scale),
            "torch compiled": lambda: ln_ref(x, shift, scale),
            "triton": lambda: modulated_layer_norm(x, shift, scale, backend="triton")}, bytes=2 * x.numel() * es + mod_bytes,
            inputs=(x, shift, scale)),
        Case("gated residual", str(tuple(x.shape)), {
            "torch eager": lambda: gated_residual_reference(x, shift, y),
            "torch compiled": lambda: res_ref(x, shift, y),
            "triton": lambda: gated_residual(x, shift, y, backend="triton")}, bytes=3 * x.numel() * es + mod_bytes / 2,
            inputs=(x, shift, y)),
        Case("multi-CFG combine", str(lat), {
            "torch eager": lambda: multi_cfg_reference(u, r, full, 1.5, 2.5),
            "torch compiled": lambda: cfg_ref(u, r, full, 1.5, 2.5),
            "triton": lambda: multi_cfg_combine(u, r, full, 1.5, 2.5, backend="triton")}, bytes=4 * u.numel() * es),
        Case("multi-CFG combine, 32 streams", str(many), {
            "torch eager": lambda: multi_cfg_reference(u32, r32, f32, 1.5, 2.5),
            "torch compiled": lambda: cfg_ref(u32, r32, f32, 1.5, 2.5),
            "triton": lambda: multi_cfg_combine(u32, r32, f32, 1.5, 2.5, backend="triton")}, bytes=4 * u32.numel() * es),
    ]


def model_cases(preset: str, batch: int, dtype: torch.dtype) -> list[Case]:
    """One denoiser forward (a teacher step's three CFG branches as one batch) with each backend, same weights."""
    models = {}
    for backend in ("torch", "triton"):
        cfg = model_preset(preset, backend=backend)
        torch.manual_seed(0)
        model = build_teacher(cfg)
        with torch.no_grad():  # adaLN-Zero starts at zero; fill so every branch of the block does real work
            for p in model.parameters():
                if not p.any():
                    p.normal_(0, 0.02)
        models[backend] = model.to(DEVICE, dtype).eval()
    g = torch.Generator(device=DEVICE).manual_seed(1)
    f, m, c, z = cfg.dit.frames, cfg.dit.motion_frames, cfg.dit.latent_channels, cfg.dit.latent_size

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, device=DEVICE).to(dtype)

    inputs = dict(x=rnd(batch, f, c, z, z), t=torch.rand(batch, generator=g, device=DEVICE).to(dtype), ref=rnd(batch, c, z, z),
                  mel=rnd(batch, cfg.audio.n_mels, cfg.audio.mel_span(f)) - 5, motion=rnd(batch, m, c, z, z))
    return [Case("denoiser forward", f"{preset}, x {tuple(inputs['x'].shape)}",
                 {name: (lambda mod=mod: mod(**inputs)) for name, mod in models.items()})]


def sweep_configs(lq: int, lk: int) -> list[dict[str, int]]:
    """Tiles worth trying at these lengths: sizes past the (power-of-two) sequence only repeat a smaller tile."""
    from triton import next_power_of_2

    ms = sorted({min(b, max(16, next_power_of_2(lq))) for b in (32, 64, 128)})
    ns = sorted({min(b, max(16, next_power_of_2(lk))) for b in (16, 32, 64, 128)})
    return [dict(BLOCK_M=bm, BLOCK_N=bn, num_warps=w, num_stages=st) for bm, bn, w, st in itertools.product(ms, ns, (4, 8), (2, 3))]


def sweep(preset: str, batch: int, dtype: torch.dtype, deadline: float) -> list[str]:
    """The attention kernel at each use's shape over sweep_configs: the shipped heuristic against the fastest tile."""
    from kernels.attention_triton import _config, attention_forward

    lines = ["| use | shape | heuristic tile | heuristic | best tile | best | configs timed |", "|---|---|---|---|---|---|---|"]
    for case in attention_cases(preset, batch, dtype, compiled=False):
        q, k, v = case.inputs
        lq, lk, d = q.shape[2], k.shape[2], q.shape[3]
        shipped = _config(lq, lk, d)
        results = []
        for conf in sweep_configs(lq, lk):
            if results and time.monotonic() > deadline:  # each shape gets at least one config
                break
            try:
                results.append((time_ms(lambda conf=conf: attention_forward(q, k, v, d**-0.5, None, conf), rep=50), conf))
            except Exception as e:  # noqa: BLE001 - e.g. a tile needing more shared memory than the SM has
                print(f"  {case.op} {conf}: {type(e).__name__}", flush=True)
        if not results:
            continue
        base = time_ms(lambda: attention_forward(q, k, v, d**-0.5, None), rep=50)
        best_ms, best = min(results, key=lambda r: r[0])
        for ms, conf in sorted(results, key=lambda r: r[0])[:5]:
            print(f"  {case.op} {case.shape}: {ms * 1e3:.1f} us {conf}", flush=True)

        def tile(c: dict[str, int]) -> str:
            return f"{c['BLOCK_M']}x{c['BLOCK_N']}, {c['num_warps']} warps, {c['num_stages']} stages"

        lines.append(f"| {case.op.removeprefix('attention ')} | {case.shape} | {tile(shipped)} | {cell(case, base)} | "
                     f"{tile(best)} | {cell(case, best_ms)} | {len(results)} |")
    return lines


def sweep_rows(preset: str, batch: int, dtype: torch.dtype, deadline: float) -> list[str]:
    """The row kernels (modulated LayerNorm, gated residual) over rows per program and warps, against the shipped tile."""
    from kernels.cfg_token_triton import _row_tiles, gated_residual_forward, modulated_layer_norm_forward

    ln, res = fused_cases(preset, batch, dtype)[:2]  # their tensors: x, y (B, F*N, D), modulation (B, F, D)
    calls = {ln.op: (ln, lambda c=None: modulated_layer_norm_forward(*ln.inputs, 1e-6, c)),
             res.op: (res, lambda c=None: gated_residual_forward(*res.inputs, c))}
    lines = ["| op | shape | shipped tile | shipped | best tile | best | configs timed |", "|---|---|---|---|---|---|---|"]
    for op, (case, call) in calls.items():
        results = []
        for rows, warps in itertools.product((1, 2, 4, 8, 16), (2, 4, 8)):
            if results and time.monotonic() > deadline:  # each shape gets at least one config
                break
            conf = {"BLOCK_R": rows, "num_warps": warps}
            try:
                results.append((time_ms(lambda conf=conf: call(conf), rep=50), conf))
            except Exception as e:  # noqa: BLE001 - one tile that cannot run must not cost the others
                print(f"  {op} {conf}: {type(e).__name__}", flush=True)
        if not results:
            continue
        shipped = time_ms(lambda: call(), rep=50)
        best_ms, best = min(results, key=lambda r: r[0])
        x, mod = case.inputs[:2]  # (B, L, D), (B, G, D)
        rows_shipped = _row_tiles(x.shape[0] * x.shape[1], x.shape[2], x.shape[1] // mod.shape[1], None)[0]["BLOCK_R"]
        lines.append(f"| {op} | {case.shape} | {rows_shipped} rows, 4 warps | {cell(case, shipped)} | "
                     f"{best['BLOCK_R']} rows, {best['num_warps']} warps | {cell(case, best_ms)} | {len(results)} |")
    return lines


def time_ms(fn: Callable[[], torch.Tensor], rep: int = 200) -> float:
    from triton.testing import do_bench

    return do_bench(fn, warmup=25, rep=rep, return_mode="median")


def copy_bandwidth() -> float:
    """GB/s of a 1 GiB device-to-device copy: the bandwidth an element-wise kernel can hope for."""
    src = torch.empty(1 << 28, device=DEVICE, dtype=torch.float32)  # 1 GiB
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


def cell(case: Case, ms: float) -> str:
    if not (case.flops or case.bytes):
        return f"{ms:.3g} ms"
    return f"{rate(case, ms):.3g} {'TFLOP/s' if case.flops else 'GB/s'} ({ms * 1e3:.1f} us)"


def table(cases: list[Case], times: list[dict[str, float | str]], baseline: str, peak: float | None) -> list[str]:
    names = list(cases[0].impls)
    head = ["op", "shape", *names, f"triton / {baseline}"] + (["triton % of copy"] if peak else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case, t in zip(cases, times):
        cells = [cell(case, t[n]) if isinstance(t[n], float) else t[n] for n in names]
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
    p.add_argument("--no-model", action="store_true", help="skip the whole-denoiser timing")
    p.add_argument("--sweep", action="store_true", help="also time the attention kernel over a grid of tile configurations")
    p.add_argument("--sweep-minutes", type=float, default=3.0, help="wall-clock budget of the sweep (configs past it are skipped)")
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
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def section(title: str, lines: list[str]) -> None:
        doc.extend([f"## {title}", "", *lines, ""])
        print("\n".join([f"## {title}", *lines]), flush=True)
        args.out.write_text("\n".join(doc))  # after every section: a run cut short keeps what it measured

    sections = []
    for preset in args.presets:
        sections += [(f"{preset}: attention", lambda pr=preset: attention_cases(pr, args.batch, dtype), "sdpa-flash", None),
                     (f"{preset}: fused element-wise ops", lambda pr=preset: fused_cases(pr, args.batch, dtype), "torch eager", peak)]
    if not args.no_model:
        sections += [(f"{preset}: whole denoiser, one forward", lambda pr=preset: model_cases(pr, args.batch, dtype), "torch", None)
                     for preset in args.presets]
    for title, make, baseline, share in sections:
        try:
            cases = make()
            section(title, table(cases, [measure(c) for c in cases], baseline, share))
        except Exception as e:  # noqa: BLE001 - one section that cannot be built must not cost the others
            section(title, [f"not measured: {type(e).__name__}: {e}"])
        cases = None
        torch.cuda.empty_cache()
    if args.sweep:
        deadline = time.monotonic() + 60 * args.sweep_minutes
        for preset in args.presets:
            for title, fn in (("attention tile sweep", sweep), ("row-kernel tile sweep", sweep_rows)):
                try:
                    section(f"{preset}: {title}", fn(preset, args.batch, dtype, deadline))
                except Exception as e:  # noqa: BLE001
                    section(f"{preset}: {title}", [f"not measured: {type(e).__name__}: {e}"])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
