"""Diffusion pieces: noise schedules, EDM/CTM preconditioning, samplers, guidance and inpainting closures."""
