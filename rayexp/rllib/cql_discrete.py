"""Discrete-action CQL for RLlib 2.60, through RLlib's own extension points (a Learner subclass, a module spec).

RLlib's CQL is continuous only: its RLModule samples its out-of-distribution actions uniformly from a Box. For a
``Discrete`` action space CQL(H) needs no sampling (Kumar et al. 2020, the discrete variant): every action's
Q-value is at hand, and the regulariser is ``logsumexp_a Q(s, a) - Q(s, a_data)`` added to each critic's loss.
So this learner takes RLlib's discrete SAC loss (``SACTorchLearner._compute_loss_for_module_discrete``, whose
module forward already returns Q(s, .) for all actions) and adds that term, weighted by ``min_q_weight`` and
scaled by ``temperature`` as RLlib's continuous CQL does. Box action spaces keep RLlib's CQL unchanged.
"""
from __future__ import annotations

import gymnasium as gym
import torch
from ray.rllib.algorithms.cql.torch.cql_torch_learner import CQLTorchLearner
from ray.rllib.algorithms.sac.sac_learner import QF_LOSS_KEY, QF_PREDS, QF_TWIN_LOSS_KEY, QF_TWIN_PREDS
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import TD_ERROR_KEY


def cql_regularizer(q_all: torch.Tensor, actions: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """CQL(H) for discrete actions: mean over the batch of T logsumexp(Q(s, .) / T) - Q(s, a). q_all: B, A; actions: B."""
    q_data = q_all.gather(-1, actions.long().view(-1, 1)).squeeze(-1)
    return (temperature * torch.logsumexp(q_all / temperature, dim=-1) - q_data).mean()


class DiscreteCQLTorchLearner(CQLTorchLearner):
    """RLlib's CQL learner with a discrete-action branch: discrete SAC loss + the CQL(H) regulariser per critic."""

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        if not isinstance(self.module[module_id].action_space, gym.spaces.Discrete):
            return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        # Offline batches come from Parquet, not SAC's replay buffer: one-step targets, no priority weights.
        ones = torch.ones_like(batch[Columns.REWARDS], dtype=torch.float32)
        batch.setdefault("n_step", ones)
        batch.setdefault("weights", ones)
        total = self._compute_loss_for_module_discrete(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        # The per-row TD errors it logs are for prioritised replay (none offline); their "item_series" reduce fails
        # when the offline batches differ in size, and td_error_mean is logged anyway.
        self.metrics.delete(module_id, TD_ERROR_KEY, key_error=False)
        actions = batch[Columns.ACTIONS]
        reg = cql_regularizer(fwd_out[QF_PREDS], actions, config.temperature)
        self._temp_losses[(module_id, QF_LOSS_KEY)] = self._temp_losses[(module_id, QF_LOSS_KEY)] + config.min_q_weight * reg
        total = total + config.min_q_weight * reg
        logged = {"cql_loss": reg}
        if config.twin_q:
            reg_twin = cql_regularizer(fwd_out[QF_TWIN_PREDS], actions, config.temperature)
            key = (module_id, QF_TWIN_LOSS_KEY)
            self._temp_losses[key] = self._temp_losses[key] + config.min_q_weight * reg_twin
            total = total + config.min_q_weight * reg_twin
            logged["cql_twin_loss"] = reg_twin
        self.metrics.log_dict(logged, key=module_id, window=1)
        return total


def discrete_cql_module_spec():
    """RLlib's SAC module (its forward handles Discrete: Q(s, .) for every action); CQL's own module is Box-only."""
    from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    return RLModuleSpec(module_class=DefaultSACTorchRLModule)
