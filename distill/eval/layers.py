"""Building blocks shared by the expert networks, and config (de)serialisation."""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from torch import nn

C = TypeVar("C")


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv, BatchNorm, ReLU: the unit of every image tower here."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def config_from_dict(cls: type[C], doc: dict[str, Any]) -> C:
    """Rebuild a config dataclass from its JSON form (JSON turns tuples into lists); unknown keys are refused."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(doc) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()})
