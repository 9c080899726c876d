"""Custom Triton kernels (flash attention, fused CFG-token modulation) with their torch references.

attention.py and cfg_token.py hold the public functions, references and torch.library operators;
the Triton kernels live in *_triton.py, imported only when a call runs one (kernels/backend.py).
docs/kernels.md has the design, tolerances and benchmark commands.
"""
