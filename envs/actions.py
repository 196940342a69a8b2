"""The one mapping between a policy's [-1, 1] actions (RLlib's normalized actions, a tanh output) and a Box."""
from __future__ import annotations


def unit_to_box(action, low, high):
    """[-1, 1] -> [low, high], clipped first; numpy arrays and torch tensors alike."""
    return low + (action.clip(-1, 1) + 1.0) * 0.5 * (high - low)
