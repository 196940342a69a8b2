"""The chapter-2 planner distilled to one step (``planner_ctd``): exact warm start, refusal of a mismatched teacher,
and, on synthetic two-direction trajectories, a one-step student that follows the teacher's ODE and its condition."""
import pytest
import torch
from conftest import ema_copy, train

from algorithms.base import DataSpec, Frozen, Trained
from algorithms.configs import PlannerConfig, PlannerCTDConfig
from algorithms.diffusion.samplers import heun_sample
from algorithms.planner import Planner, known_entries
from algorithms.planner_student import PlannerCTD, descending_grid, jump, teacher_denoiser
from rayexp.train import init_model

pytestmark = pytest.mark.training  # every test reads the module's trained teacher; the distillation test ~1 min on 2 cores

H, STEP = 8, 0.3
SPEC = DataSpec(obs_dim=2, act_dim=2, action_horizon=H, discrete_actions=True)
ARCH = dict(horizon=H, n_diffusion_steps=20, inpaint_goal=False, guidance=1.0, cond_mode="cross_attention",
            down_dims=[16, 32], step_embed_dim=16, cond_embed_dim=16, pos_freqs=2, cond_drop=0.3)


def direction_batch(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Straight paths from a random start, +x or -x with probability 1/2; the action is the direction, one-hot."""
    sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    start = torch.rand(n, 2, generator=generator) - 0.5
    k = torch.arange(H, dtype=torch.float32)
    states = start[:, None] + STEP * sign[:, None, None] * torch.stack([k, torch.zeros(H)], -1)
    actions = torch.nn.functional.one_hot((sign > 0).long(), 2).float()[:, None].expand(n, H, 2)
    return {"future_obs": states, "actions": actions.contiguous()}


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    method = Planner(PlannerConfig(**ARCH))
    model = method.build_model(SPEC)
    ema = ema_copy(model)
    train(method, model, 300, Frozen(), lr=2e-3, batch_size=64, ema=ema, ema_decay=0.95, batch_fn=direction_batch)
    return ema.eval()


def distil(teacher, steps: int):
    method = PlannerCTD(PlannerCTDConfig(**ARCH, solver_steps_max=2))
    model = init_model(method, SPEC, Frozen({"teacher": teacher}), seed=1)
    ema = ema_copy(model)
    # lr 3e-3 sometimes collapses onto one mode within 300 steps; 1e-3 kept both over seeds 1-3
    train(method, model, steps, Frozen({"teacher": teacher, "ema": ema}), lr=1e-3, batch_size=32, ema=ema,
          ema_decay=0.9, batch_fn=direction_batch, seed=1)
    return method, model.eval()


def _inputs(model, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    b = direction_batch(n, g)
    states = model.obs_norm(b["future_obs"])
    x = torch.randn(n, H, 4, generator=g)
    known, mask = known_entries(model, states[:, 0], None, x)
    wp = b["future_obs"][:, [2, 4, 6]]
    return b, x, known, mask, model.encode_waypoints(model.obs_norm(wp)), wp


def test_warm_started_student_is_one_euler_step_of_the_teacher(teacher):
    student = init_model(PlannerCTD(PlannerCTDConfig(**ARCH)), SPEC, Frozen({"teacher": teacher}), seed=0)
    _, x, known, mask, cond, _ = _inputs(teacher, 16, 0)
    grid = descending_grid(teacher)
    t, s = grid[3].expand(16), grid[9].expand(16)
    d = teacher_denoiser(teacher, cond, 1.0, known, mask)(x, t)
    with torch.no_grad():
        assert torch.allclose(jump(student, x, t, torch.zeros(16), cond, known, mask), d, atol=1e-5)
        euler = x + (s - t).view(-1, 1, 1) * (x - d) / t.view(-1, 1, 1)
        assert torch.allclose(jump(student, x, t, s, cond, known, mask), euler, atol=1e-4)
        assert torch.equal(jump(student, x, t, t, cond, known, mask), x)


def test_student_refuses_a_teacher_of_another_architecture(teacher):
    trained = {"teacher": Trained(Planner(PlannerConfig(**ARCH)), teacher, SPEC)}
    PlannerCTD(PlannerCTDConfig(**ARCH)).check_frozen(SPEC, trained)
    with pytest.raises(ValueError, match="planner_ctd must repeat its teacher planner's fields"):
        PlannerCTD(PlannerCTDConfig(**{**ARCH, "down_dims": [16, 64]})).check_frozen(SPEC, trained)
    with pytest.raises(ValueError, match="noise schedule"):
        PlannerCTD(PlannerCTDConfig(**{**ARCH, "beta_schedule": "linear"})).check_frozen(SPEC, trained)


def test_one_step_student_jumps_to_the_teachers_modes_and_follows_the_condition(teacher):
    """Without a condition the paths go +x or -x: the teacher's ODE ends on one of the two, while one Euler step
    (the warm-started student) lands near their mean. Distillation must move the one-step plans onto the modes."""
    n = 200
    b, x, known, mask, cond, wp = _inputs(teacher, n, 5)
    null = teacher.null_condition(n)
    grid = descending_grid(teacher)
    x_T = x * (1 + grid[0] ** 2).sqrt()

    def one_step(model):
        with torch.no_grad():
            return jump(model, x_T, grid[0].expand(n), torch.zeros(n), null, known, mask)

    def travel(plans):  # x distance covered by each plan (2.1 on either mode, 0 at their mean)
        return plans[:, -1, 0] - plans[:, 0, 0]

    with torch.no_grad():
        teacher_x0 = heun_sample(teacher_denoiser(teacher, null, 1.0, known, mask), x_T, grid)
    method, student = distil(teacher, 300)
    untrained = one_step(distil(teacher, 0)[1])
    trained = one_step(student)
    reach = travel(teacher_x0).abs().mean()
    assert travel(untrained).abs().mean() < 0.5 * reach, "the task must not be solvable by one Euler step"
    assert travel(trained).abs().mean() > 0.7 * reach
    assert 0.1 <= (travel(trained) > 0).float().mean() <= 0.9, "both modes"
    # Not asserted: that each noise lands on the same mode as the teacher's ODE from it. At this budget the
    # per-noise gap ranged 0.4-1.2x the untrained one over seeds and thread counts.
    # the closed-loop API, conditioned: one network evaluation, plans that go the way the waypoints say
    policy = method.make_policy(student, SPEC)
    states, actions = policy.sample(b["future_obs"][:, 0], waypoints=wp)
    assert (actions[:, 0].argmax(-1) == b["actions"][:, 0].argmax(-1)).float().mean() >= 0.9
    assert torch.allclose(states[:, 0], b["future_obs"][:, 0], atol=1e-5)
