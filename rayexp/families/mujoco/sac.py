"""RLlib's SAC with rayexp's update: RLlib's env runners, RLModule, optimizers and checkpoints; the replay buffer
and gradient step of ``algorithms.sac``.

RLlib 2.60's own SAC update costs ~175 ms for a batch of 256 on this CPU (a plain loop: ~13 ms). A profile
(docs/sac_speed.md) puts a quarter of it in sampling ``EpisodeReplayBuffer`` (episode slicing in Python), a
tenth in the learner connectors, and most of the rest in its critic: a multi-stream encoder (separate 256x256
observation and action MLPs, then three fusion layers) several times the size of SAC's MLP on (obs, action).
``RayexpSAC.training_step`` keeps RLlib's sampling, metrics and weight sync, stores the sampled transitions in flat
arrays and runs ``sac_update`` on the learner's module through ``LearnerGroup.foreach_learner``;
``ConcatQSACCatalog`` gives the module SAC's usual critic.
"""
from __future__ import annotations

import numpy as np
import torch
from ray.rllib.algorithms.sac import SAC
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.models.configs import MLPEncoderConfig
from ray.rllib.core.models.torch.encoder import TorchMLPEncoder

from algorithms.sac import SACNets, SACOptimizers, TransitionBuffer, sac_update

REPLAY_STATE = "rayexp_replay"


class RayexpSAC(SAC):
    """SAC whose replay ratio (``training_intensity`` / batch size updates per sampled env step) runs as
    ``algorithms.sac.sac_update`` calls; the buffer is part of the algorithm's checkpoint."""

    def setup(self, config) -> None:
        super().setup(config)
        self.transitions: TransitionBuffer | None = None
        self._episode_numbers: dict[str, int] = {}
        self._next_episode, self._updates = 0, 0
        self._rng = np.random.default_rng(config.seed)

    def training_step(self) -> None:
        from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
        from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

        episodes, runner_results = synchronous_parallel_sample(
            worker_set=self.env_runner_group, concat=True, sample_timeout_s=self.config.sample_timeout_s,
            _uses_new_env_runners=True, _return_metrics=True)
        self.metrics.aggregate(runner_results, key=ENV_RUNNER_RESULTS)
        for ep in episodes:
            self._store(ep)
        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        owed = self.updates_owed(sampled)
        if owed <= 0:
            return
        cfg, batch_size = self.config, self.config.train_batch_size_per_learner
        batches = [self.transitions.sample(batch_size, self._rng) for _ in range(owed)]

        def learn(learner):
            return run_updates(learner, batches, gamma=cfg.gamma, tau=cfg.tau)

        losses = next(iter(self.learner_group.foreach_learner(learn))).get()
        self._updates += owed
        self.metrics.log_dict({**losses, "num_updates_lifetime": self._updates}, key="rayexp_sac", window=1)
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)

    def updates_owed(self, env_steps_sampled: int) -> int:
        """Updates still due for the replay ratio: (steps past learning_starts) x training_intensity / batch."""
        cfg = self.config
        ratio = (cfg.training_intensity or cfg.train_batch_size_per_learner) / cfg.train_batch_size_per_learner
        past = env_steps_sampled - cfg.num_steps_sampled_before_learning_starts
        return int(past * ratio) - self._updates if past >= 0 and self.transitions is not None else 0

    def _store(self, ep) -> None:
        obs = np.asarray(ep.get_observations(), np.float32)
        actions = np.asarray(ep.get_actions(), np.float32).reshape(len(ep), -1)
        if self.transitions is None:
            capacity = int(self.config.replay_buffer_config["capacity"])
            self.transitions = TransitionBuffer(capacity, obs.shape[1], actions.shape[1])
        if ep.id_ not in self._episode_numbers:
            self._episode_numbers[ep.id_] = self._next_episode
            self._next_episode += 1
        number = self._episode_numbers.pop(ep.id_) if ep.is_done else self._episode_numbers[ep.id_]
        self.transitions.add(obs[:-1], actions, np.asarray(ep.get_rewards(), np.float32), obs[1:],
                             terminated=bool(ep.is_terminated), done=bool(ep.is_done), episode=number)

    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(REPLAY_STATE, components, not_components) and self.transitions is not None:
            state[REPLAY_STATE] = {"buffer": self.transitions.state(), "updates": self._updates,
                                   "next_episode": self._next_episode, "obs_act": self.transitions.obs.shape[1:] +
                                   self.transitions.actions.shape[1:]}
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        if REPLAY_STATE in state:
            saved = state[REPLAY_STATE]
            obs_dim, act_dim = saved["obs_act"]
            self.transitions = TransitionBuffer(int(self.config.replay_buffer_config["capacity"]), obs_dim, act_dim)
            self.transitions.load_state(saved["buffer"])
            self._updates, self._next_episode = saved["updates"], saved["next_episode"]
            self._episode_numbers = {}  # the runners' open episodes restart; their partial steps stay as transitions


class ConcatMLPEncoder(TorchMLPEncoder):
    """An MLP on [observation, action]: the critic encoder of the SAC paper."""

    def _forward(self, inputs: dict, **kwargs) -> dict:
        return {ENCODER_OUT: self.net(torch.cat([inputs[Columns.OBS], inputs[Columns.ACTIONS]], dim=-1))}


class ConcatMLPEncoderConfig(MLPEncoderConfig):
    def build(self, framework: str = "torch") -> ConcatMLPEncoder:
        self._validate(framework)
        return ConcatMLPEncoder(self)


class ConcatQSACCatalog(SACCatalog):
    """SACCatalog whose continuous-action critics are one MLP (``fcnet_hiddens``) on the concatenated observation
    and action, instead of RLlib's multi-stream encoder."""

    def _build_qf_encoder_continuous(self, framework: str):
        hiddens = self._model_config_dict["fcnet_hiddens"]
        inputs = int(np.prod(self.observation_space.shape)) + int(np.prod(self.action_space.shape))
        self.qf_encoder_config = ConcatMLPEncoderConfig(
            input_dims=[inputs], hidden_layer_dims=hiddens[:-1],
            hidden_layer_activation=self._model_config_dict["fcnet_activation"], output_layer_dim=self.latent_dims[0],
            output_layer_activation=self._model_config_dict["fcnet_activation"])
        return self.qf_encoder_config.build(framework=framework)


def module_nets(module) -> SACNets:
    """``SACNets`` over RLlib's ``DefaultSACTorchRLModule`` (twin Q)."""
    def pair(q_enc, q_head, twin_enc, twin_head):
        def q(obs, act):
            batch = {Columns.OBS: obs, Columns.ACTIONS: act}
            return (module._qf_forward_train_helper(batch, q_enc, q_head),
                    module._qf_forward_train_helper(batch, twin_enc, twin_head))
        return q

    return SACNets(actor=lambda obs: module.pi(module.pi_encoder({Columns.OBS: obs})[ENCODER_OUT]),
                   critics=pair(module.qf_encoder, module.qf, module.qf_twin_encoder, module.qf_twin),
                   target_critics=pair(module.target_qf_encoder, module.target_qf, module.target_qf_twin_encoder,
                                       module.target_qf_twin),
                   target_pairs=module.get_target_network_pairs())


def run_updates(learner, batches: list[dict], gamma: float, tau: float) -> dict[str, float]:
    """``sac_update`` on each batch with the learner's module, its registered optimizers and temperature; returns
    the last update's losses."""
    from ray.rllib.core.rl_module.rl_module import DEFAULT_MODULE_ID

    module = learner.module[DEFAULT_MODULE_ID]
    optimizers = dict(learner.get_optimizers_for_module(DEFAULT_MODULE_ID))
    optim = SACOptimizers(critics=[optimizers["qf"], optimizers["qf_twin"]], actor=optimizers["policy"],
                          alpha=optimizers["alpha"])
    nets, log_alpha = module_nets(module), learner.curr_log_alpha[DEFAULT_MODULE_ID]
    target_entropy = float(learner.target_entropy[DEFAULT_MODULE_ID])
    device = next(module.parameters()).device
    losses = {}
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        losses = sac_update(batch, nets, optim, log_alpha, gamma=gamma, tau=tau, target_entropy=target_entropy)
    return {k: float(v.reshape(-1)[0]) for k, v in losses.items()}
