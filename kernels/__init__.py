"""Custom Triton kernels (flash attention, fused CFG-token modulation) with their torch references."""
