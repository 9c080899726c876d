import pytest
import torch


@pytest.fixture(scope="session")
def awake():
    """awake(model) -> model with its zero-initialised parameters (adaLN-Zero gates, tables, output layers) drawn
    small and random, as training would make them: an untrained DiT's output would not depend on its inputs."""

    def fill(model: torch.nn.Module, std: float = 0.05, seed: int = 0) -> torch.nn.Module:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                if not p.any():
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
        return model

    return fill


@pytest.fixture(autouse=True)
def _denormals_restored():
    """CLIs called in-process (teacher_eval, eval) turn on flush-to-zero for speed, a process-wide CPU state;
    put the default back so no test depends on which ran before it."""
    yield
    torch.set_flush_denormal(False)
