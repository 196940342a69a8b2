"""Network function evaluations (NFE): the one counter evaluation, Maze2D's table and the inference bench use."""
from __future__ import annotations

from torch import nn


class NetworkCalls:
    """Counts a model's network evaluations: forward calls of its U-Nets, or of its largest submodule (the MLP of
    a BC policy) when it has none. ``count`` is reset by the caller; ``remove()`` takes the hooks off again."""

    def __init__(self, model: nn.Module):
        from algorithms.nets.unet1d import ConditionalUnet1D

        nets = [m for m in model.modules() if isinstance(m, ConditionalUnet1D)]
        if not nets:
            children = [m for m in model.modules() if m is not model] or [model]
            nets = [max(children, key=lambda m: sum(p.numel() for p in m.parameters()))]
        self.count = 0
        self._handles = [net.register_forward_pre_hook(self._called) for net in nets]

    def _called(self, *_) -> None:
        self.count += 1

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
