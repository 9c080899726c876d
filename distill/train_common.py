"""What every training script here shares: CLI from a dataclass, torchrun/DDP, EMA, run state, time budget.

Run state (weights, EMA, AdamW moments, step) is safetensors + JSON like every checkpoint here, so
resuming never unpickles anything.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import shlex
import sys
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from fada_stream.checkpoint import load_checkpoint, save_checkpoint

C = TypeVar("C")


def parse_config(cls: type[C], argv: list[str] | None = None, description: str = "") -> C:
    """A `--field value` flag per dataclass field; Literal fields become choices, bools take true/false."""
    p = argparse.ArgumentParser(description=description)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        kw: dict[str, Any] = {"default": f.default, "help": f"default: {f.default}"}
        if typing.get_origin(t) is typing.Literal:
            kw["choices"] = list(typing.get_args(t))
        elif t is bool:
            kw["type"] = lambda s: s.lower() in ("1", "true", "yes")
        elif t in (int, float, str):
            kw["type"] = t
        elif typing.get_origin(t) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            inner = [a for a in typing.get_args(t) if a is not type(None)][0]
            kw["type"] = inner
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kw)
    return cls(**vars(p.parse_args(argv)))


def command_line() -> str:
    """The command that started this process, for the checkpoint's record."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    prog = f"python -m {spec.name}" if spec is not None else f"python {sys.argv[0]}"
    if "TORCHELASTIC_RUN_ID" in os.environ:
        prog = f"torchrun --nproc_per_node {os.environ.get('LOCAL_WORLD_SIZE', '?')} -m {spec.name if spec else sys.argv[0]}"
    return f"{prog} {shlex.join(sys.argv[1:])}".strip()


#################################################################################
#                                 Distributed                                   #
#################################################################################


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def master(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """torchrun sets RANK/WORLD_SIZE: then join the group (nccl on GPU, gloo on CPU); else run alone."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick its fastest convolutions
    if "RANK" not in os.environ:
        return Dist(0, 1, 0, torch.device(device))
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return Dist(rank, world, local, torch.device("cuda", local))
    dist.init_process_group("gloo")
    return Dist(rank, world, local, torch.device("cpu"))


def teardown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, d: Dist) -> bool:
    """True on every rank if it is True on one: all ranks stop at the same step, so none hangs in a collective."""
    if d.world == 1:
        return flag
    t = torch.tensor([float(flag)], device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_across(x: float, d: Dist) -> float:
    if d.world == 1:
        return x
    t = torch.tensor([x], device=d.device)
    dist.all_reduce(t)
    return float(t.item()) / d.world


class Budget:
    """Wall-clock budget: `--max-minutes` stops training cleanly (with a checkpoint) before it runs out."""

    def __init__(self, minutes: float | None):
        self.start = time.monotonic()
        self.seconds = None if not minutes or minutes <= 0 else 60.0 * minutes

    def spent(self) -> bool:
        return self.seconds is not None and time.monotonic() - self.start >= self.seconds


#################################################################################
#                                EMA and run state                              #
#################################################################################


def make_ema(model: nn.Module) -> nn.Module:
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """EMA of the weights; the decay warms up ((1 + step) / (10 + step)) so early averages do not hold init noise."""
    d = min(decay, (1.0 + step) / (10.0 + step))
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p.detach().to(pe.dtype), 1.0 - d)


def optimizer_step(loss: torch.Tensor, model: nn.Module, opt: torch.optim.Optimizer, ema: nn.Module, ema_decay: float, step: int) -> float:
    """Backward, clip the gradient norm to 1, step, update the EMA; returns the gradient norm before clipping."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    update_ema(ema, model, ema_decay, step)
    return float(gnorm)


def start_run(device: str, seed: int, out: str) -> tuple[Dist, Path]:
    """Distributed setup (torchrun or one process), a per-rank seed, and the output folder."""
    d = setup_distributed(device)
    torch.manual_seed(seed + d.rank)
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    return d, path


def save_run_state(run_dir: Path, kind: str, config: Any, model: nn.Module, ema: nn.Module, opt: torch.optim.Optimizer, step: int, meta: dict[str, Any]) -> None:
    """Everything needed to resume: raw weights, EMA weights, AdamW moments, step."""
    state: dict[str, torch.Tensor] = {}
    state.update({f"model.{k}": v for k, v in model.state_dict().items()})
    state.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    for name, p in model.named_parameters():
        for k, v in opt.state.get(p, {}).items():
            state[f"opt.{name}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    save_checkpoint(run_dir / "state", f"run-{kind}", config, state, meta={**meta, "step": step})


def load_run_state(run_dir: Path, kind: str, model: nn.Module, ema: nn.Module, opt: torch.optim.Optimizer) -> tuple[int, dict[str, Any]]:
    """Restore what save_run_state wrote; returns (step, config)."""
    cfg, state, meta = load_checkpoint(run_dir / "state", f"run-{kind}")
    dev = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("ema.")})
    for name, p in model.named_parameters():
        moments = {k[len(f"opt.{name}.") :]: v for k, v in state.items() if k.startswith(f"opt.{name}.") and "." not in k[len(f"opt.{name}.") :]}
        if moments:
            opt.state[p] = {k: (v.to(dev) if k != "step" else v.float()) for k, v in moments.items()}
    return int(meta.get("step", 0)), cfg


def has_run_state(run_dir: Path) -> bool:
    return (run_dir / "state.json").is_file() and (run_dir / "state.safetensors").is_file()


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on GPU (large batches, no loss scaling needed); a no-op context on CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda")
