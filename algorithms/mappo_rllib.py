"""MAPPO (and IPPO) on RLlib's new API stack: PPO with one shared actor and a centralized critic.

RLlib 2.60 ships no MAPPO; its repository's example (``rllib/examples/algorithms/mappo/``) splits the work into
a config, an RLModule, a Learner and a GAE connector with a separate shared-critic module. Here the critic's
input travels in the observation instead (``envs.smax_rllib``: obs / state / action_mask), so RLlib's own PPO
GAE connector and loss work unchanged and only two extension points are ours:

- ``MAPPOTorchRLModule``: the shared actor (masked logits from the local obs) and the critic on ``state``
  (MAPPO) or ``obs`` (IPPO), one module for all agents;
- ``MAPPOTorchLearner``: separate actor and critic optimizers (Table A.7: lr 5e-4 / 1e-3), each with a linear
  decay to zero over the run.

The PPO loss sums surrogate + ``vf_loss_coeff`` (1.0) x value loss; the two optimizers see disjoint parameters,
so each part trains at its own learning rate.
"""
from __future__ import annotations

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule

from algorithms.mappo_module import SharedActor, mlp
from algorithms.mappo_settings import MAPPOSettings

SHARED_POLICY = "shared_policy"


def linear_decay(lr: float, total_steps: int, decay: bool) -> float | list[list[float]]:
    """An RLlib learning-rate schedule: constant, or linear from ``lr`` at step 0 to ~0 at ``total_steps``."""
    return [[0, lr], [total_steps, lr * 1e-3]] if decay else lr


class MAPPOTorchRLModule(TorchRLModule, ValueFunctionAPI):
    """model_config: hidden, critic_hidden (lists), critic_input ("state" = MAPPO, "obs" = IPPO)."""

    def setup(self):
        space, cfg = self.observation_space, self.model_config
        self.actor = SharedActor(space["obs"].shape[0], self.action_space.n, list(cfg.get("hidden", [64, 64])))
        self.critic_input = cfg.get("critic_input", "state")
        self.critic = mlp([space[self.critic_input].shape[0], *cfg.get("critic_hidden", [64, 64]), 1])

    def _forward(self, batch, **kwargs):
        obs = batch[Columns.OBS]
        return {Columns.ACTION_DIST_INPUTS: self.actor(obs["obs"], obs["action_mask"])}

    def _forward_train(self, batch, **kwargs):
        return self._forward(batch)

    def compute_values(self, batch, embeddings=None):
        return self.critic(batch[Columns.OBS][self.critic_input]).squeeze(-1)


class MAPPOTorchLearner(PPOTorchLearner):
    """PPO's learner with one optimizer for the actor and one for the critic (``learner_config_dict``)."""

    def configure_optimizers_for_module(self, module_id, config=None):
        import torch

        module = self._module[module_id]
        lrs = config.learner_config_dict
        for name, part in (("actor", module.actor), ("critic", module.critic)):
            params = list(part.parameters())
            self.register_optimizer(module_id=module_id, optimizer_name=name, optimizer=torch.optim.Adam(params),
                                    params=params, lr_or_lr_schedule=lrs[f"{name}_lr"])


def mappo_config(s: MAPPOSettings, env_name: str, env_config: dict, seed: int = 0) -> PPOConfig:
    """An RLlib ``PPOConfig`` running MAPPO (or IPPO) on a registered SMAX multi-agent env."""
    return (
        PPOConfig()
        .environment(env_name, env_config=env_config)
        .env_runners(num_env_runners=s.num_env_runners, num_envs_per_env_runner=s.num_envs_per_env_runner,
                     num_cpus_per_env_runner=1)
        .multi_agent(policies={SHARED_POLICY}, policy_mapping_fn=lambda agent_id, *a, **k: SHARED_POLICY)
        .rl_module(rl_module_spec=RLModuleSpec(
            module_class=MAPPOTorchRLModule,
            model_config={"hidden": s.hidden, "critic_hidden": s.critic_hidden,
                          "critic_input": "state" if s.critic == "central" else "obs"}))
        .learners(learner_class=MAPPOTorchLearner,
                  learner_config_dict={"actor_lr": linear_decay(s.actor_lr, s.total_env_steps, s.lr_decay),
                                       "critic_lr": linear_decay(s.critic_lr, s.total_env_steps, s.lr_decay)})
        .training(num_epochs=s.num_epochs, train_batch_size_per_learner=s.train_batch_size,
                  minibatch_size=s.minibatch_size, gamma=s.gamma, lambda_=s.lambda_, clip_param=s.clip_param,
                  entropy_coeff=s.entropy_coeff, grad_clip=s.grad_clip, vf_loss_coeff=1.0, vf_clip_param=10.0,
                  use_kl_loss=False, lr=None)
        .debugging(seed=seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=50)
    )
