"""Maze2D open-loop planning evaluation (thesis 3.4.2, Table B.6) on parallel Ray actors.

Each episode: reset to a random start and goal cell (episode i of evaluation seed k on ``evaluate.seed + 100000 k
+ i``, ``rayexp.engine``), plan the whole state sequence once
from the start with the goal inpainted, then follow it with the inverse-dynamics model (stage ``inverse_dynamics``)
until the episode ends; after the plan's last state the target stays at the goal. ``evaluate.execute=chunk`` with
``evaluate.chunk=K`` replans every K steps instead, ``execute=first`` every step. ``rayexp evaluate`` on a maze2d
config lands here and writes ``maze_table.md`` / ``maze_table.csv`` (and ``eval.parquet``, one row per episode,
``rayexp.rows``).

The rows are Table B.6's, each a trained stage plus sampler overrides; rows whose stage is not in ``models`` (or not
in ``evaluate.models`` when that is set) are skipped.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from rayexp.errors import RayexpError

# label, stage, method-config overrides, thesis scores (U-Maze, Medium, Large; Tables 3.2 / B.6)
TABLE_ROWS: tuple[tuple[str, str, dict, tuple | None], ...] = (
    ("DDPM(100)", "ddpm", {"sampler": "ddpm", "sample_steps": 100}, (126.3, 126.8, 144.8)),
    ("DDIM(10)", "ddpm", {"sampler": "ddim", "sample_steps": 10}, (121.2, 126.2, 143.1)),
    ("DDIM(1)", "ddpm", {"sampler": "ddim", "sample_steps": 1}, ("~0", "~0", "~0")),
    ("EDM(80)", "teacher", {}, (125.4, 120.1, 149.0)),
    ("CTD(1)", "ctd", {}, (123.4, 119.8, 127.1)),
    ("RACTD(1)", "ractd", {}, (125.7, 130.8, 143.8)),
    ("Planner (ch. 2, uncond.)", "planner", {}, None),
)
MAZES = ("umaze", "medium", "large")
INVERSE_DYNAMICS = "inverse_dynamics"


class MazePlanWorker:
    """Holds one maze env, the inverse-dynamics model and one plan policy per table row."""

    def __init__(self, env_cfg: dict, rows: dict[str, tuple[str, dict]], id_path: str, replan_every: int | None):
        import torch

        from algorithms.nfe import NetworkCalls
        from envs.registry import make_env
        from rayexp.train import load_model

        torch.set_num_threads(1)
        self.env_id = env_cfg["id"]
        self.env = make_env(env_cfg["id"], max_episode_steps=env_cfg.get("max_episode_steps"))
        _, self.inv, _ = load_model(id_path)
        self.replan_every = replan_every
        self.policies = {}
        for label, (path, overrides) in rows.items():
            method, model, spec = load_model(path)
            if overrides:
                method = type(method)(method.cfg.model_copy(update=overrides))
            self.policies[label] = (method.make_policy(model, spec), NetworkCalls(model))

    def run(self, label: str, seed_index: int, episode: int, seed: int) -> dict:
        import torch

        from algorithms.planner import OpenLoopPlanExecutor

        policy, nfe = self.policies[label]
        torch.manual_seed(seed)
        obs, info = self.env.reset(seed=seed)
        goal = info["goal"]
        times, nfes = [], []

        def plan_fn(o: np.ndarray) -> np.ndarray:
            nfe.count, t0 = 0, time.perf_counter()
            states = policy.plan(torch.as_tensor(o)[None], torch.as_tensor(goal, dtype=torch.float32)[None])[0]
            times.append(time.perf_counter() - t0)
            nfes.append(nfe.count)
            return states.numpy()

        executor = OpenLoopPlanExecutor(plan_fn, self.inv.predict, self.replan_every)
        total, steps, success, done = 0.0, 0, False, False
        while not done:
            obs, r, terminated, truncated, info = self.env.step(executor.act(obs))
            total, steps = total + r, steps + 1
            success, done = success or bool(info.get("success", r > 0)), terminated or truncated
        return {"model": label, "task": self.env_id, "seed_index": seed_index, "episode": episode, "seed": seed,
                "return": total, "length": steps, "success": success,
                "plans": len(times), "nfe": int(np.mean(nfes)), "ms_per_plan": 1000 * float(np.mean(times)),
                "ms_per_action": 1000 * float(np.sum(times)) / steps}


def table_rows(cfg, run) -> dict[str, tuple[str, dict]]:
    """label -> (checkpoint path, overrides) for every Table B.6 row this config trains."""
    wanted = cfg.evaluate.models or list(cfg.models)
    rows = {label: (str(run.model_path(stage)), over) for label, stage, over, _ in TABLE_ROWS
            if stage in cfg.models and stage in wanted}
    missing = sorted({Path(p).stem for p, _ in rows.values() if not Path(p).exists()})
    if not Path(run.model_path(INVERSE_DYNAMICS)).exists():
        missing.append(INVERSE_DYNAMICS)
    if missing:
        raise RayexpError(f"no trained model for {missing} in {run.path / 'models'}; run `rayexp train` first")
    if not rows:
        raise RayexpError(f"no Table B.6 stage among models {sorted(cfg.models)}; expected some of "
                          f"{sorted({s for _, s, _, _ in TABLE_ROWS})}")
    return rows


def evaluate_maze(cfg, run, ref_scores: tuple[float, float]) -> pd.DataFrame:
    """Every table row on ``evaluate.seeds`` x ``evaluate.episodes`` seeded episodes over ``evaluate.num_actors``
    actors; one row per episode."""
    from rayexp.data.d4rl import normalized_score
    from rayexp.engine import episode_seed, run_on_actors

    rows = table_rows(cfg, run)
    ev = cfg.evaluate
    replan = 1 if ev.execute == "first" else ev.chunk  # None: the whole plan, open loop (thesis)
    jobs = [(label, k, i, episode_seed(ev.seed, k, i)) for label in rows for k in range(ev.seeds) for i in range(ev.episodes)]
    results = run_on_actors(MazePlanWorker, (cfg.env.model_dump(), rows, str(run.model_path(INVERSE_DYNAMICS)), replan),
                            jobs, ev.num_actors, "maze evaluate")
    order = {label: k for k, label in enumerate(rows)}  # the table's row order, as before the actors ran
    df = pd.DataFrame(results).sort_values(["model", "seed_index", "episode"],
                                           key=lambda c: c.map(order) if c.name == "model" else c)
    df = df.reset_index(drop=True)
    df["normalized_score"] = normalized_score(df["return"].to_numpy(), *ref_scores)
    return df


def maze_table(df: pd.DataFrame, maze: str) -> pd.DataFrame:
    """Table B.6 in kind: per row the normalized score (mean, s.e.), NFE, time per plan, and the thesis score."""
    from rayexp.rows import summarize

    thesis = {label: (ref[MAZES.index(maze)] if ref else "") for label, _, _, ref in TABLE_ROWS}
    s = summarize(df)
    return pd.DataFrame({
        "method": s["model"], "score_mean": s["normalized_score_mean"], "score_sem": s["normalized_score_sem"],
        "nfe": s["nfe"], "ms_per_plan": s["ms_per_plan"], "success_rate": s["success_mean"], "episodes": s["episodes"],
        "thesis_score": [thesis.get(m, "") for m in s["model"]]})


def run_maze_evaluate(cfg, run, keep_others: bool = False) -> pd.DataFrame:
    """Evaluate, write eval.parquet + maze_table.{md,csv}, and the Fig. 2.10 PNG when a planner is trained.
    ``keep_others``: rows of the table rows not evaluated now stay in eval.parquet and the tables."""
    from rayexp.artifacts import markdown_table
    from rayexp.data.store import EpisodeStore
    from rayexp.rows import write_run_rows
    from rayexp.runs import dataset_path

    maze = cfg.env.id.removeprefix("maze2d-")
    meta = EpisodeStore(dataset_path(cfg, run)).meta
    if meta.ref_min_score is None:
        raise RayexpError("the maze dataset has no reference scores; collect it with collect.source=maze2d-controller")
    if not meta.ref_max_score > meta.ref_min_score:
        raise RayexpError(f"reference scores random {meta.ref_min_score} >= controller {meta.ref_max_score}: no scale to "
                          "normalize with; recollect with more collect.episodes or a longer env.max_episode_steps")
    df = write_run_rows(run.path, evaluate_maze(cfg, run, (meta.ref_min_score, meta.ref_max_score)), keep_others)
    table = maze_table(df, maze)
    table.to_csv(run.path / "maze_table.csv", index=False)
    note = (f"\n\nmaze2d-{maze}, {len(df) // len(table)} episodes per row of {int(df['length'].iloc[0])} steps; "
            f"normalized with the dataset's own references (random {meta.ref_min_score:.1f}, controller "
            f"{meta.ref_max_score:.1f}); thesis_score is on D4RL's maze2d (Table B.6), for reference only.\n")
    (run.path / "maze_table.md").write_text(markdown_table(table) + note)
    if "planner" in cfg.models and run.model_path("planner").exists():
        from rayexp.families.maze2d.figure import maze_figure

        maze_figure(cfg, run)
    return table


def evaluate_run(cfg, run, models: list[str] | None = None) -> pd.DataFrame:
    """The family's evaluate hook: every table row, or with ``models`` only theirs (the other rows are kept)."""
    if models:
        cfg = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"models": list(models)})})
    return run_maze_evaluate(cfg, run, keep_others=bool(models))


def maze_report(run_path: Path) -> str | None:
    """The family's report section: the Table B.6 rows written by the last evaluation."""
    table = Path(run_path) / "maze_table.md"
    return f"## Maze2D (Table B.6 layout)\n\n{table.read_text().strip()}" if table.is_file() else None
