"""The ``rayexp`` command line. Every experiment command takes ``--config FILE.yaml``, ``key=value``
overrides, ``--run-dir`` and ``--address``; bad input exits non-zero with one line saying what to fix."""
from __future__ import annotations

from pathlib import Path

import click

from rayexp.commands import experiment_options, setup_experiment, verbose_option
from rayexp.console import fail_cleanly
from rayexp.errors import RayexpError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rayexp")
@verbose_option
def main():
    """rayexp: diffusion planners and one-step consistency students on Ray.

    Stages: collect (PPO expert + parallel rollouts) -> train (Ray Train) -> evaluate (parallel
    actors) -> report. Results land in RUN_DIR/<name>/. `rayexp quickstart` runs them all.
    """


@main.command()
@experiment_options
@fail_cleanly
def collect(config_path, overrides, run_dir, address, overwrite):
    """Train an RLlib PPO expert and record its rollouts into the run's dataset (episode store)."""
    from rayexp.pipeline import check_collect, run_collect

    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite,
                      check=lambda cfg, run: check_collect(cfg, run, overwrite),
                      redo=("data", "expert") if overwrite else (), clear=("expert",),
                      hint="pass --overwrite to collect again (new expert), or choose another name=... for a new run")
    store = run_collect(cfg, run, overwrite=overwrite)
    click.echo(_format_summary(store.summary()))


@main.command()
@experiment_options
@click.option("--stage", "stages", multiple=True, help="Model stage(s) to train (default: all in `models`).")
@click.option("--retrain", is_flag=True, help="Train stages again from scratch even if their model file exists (--overwrite: the same).")
@fail_cleanly
def train(config_path, overrides, run_dir, address, overwrite, stages, retrain):
    """Train model stages on Ray Train (checkpoints every N steps; rerun to resume)."""
    from rayexp.pipeline import check_resources, check_train, run_train

    stages, retrain = list(stages) or None, retrain or overwrite

    def redo(cfg):  # the outputs a retrain rewrites, so a changed config may replace them
        names = (stages or [*cfg.models, *cfg.offline_rl]) if retrain else []
        return [f"{kind}/{s}" for s in names for kind in ("models", "offline_rl")]

    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite,
                      check=lambda cfg, run: check_train(cfg, run, stages, retrain),
                      ray_check=lambda cfg: check_resources(cfg, stages), redo=redo,
                      hint="pass --retrain to train the stages again (--stage NAME for some), or choose another name=... for a new run")
    if cfg.seeds:  # one run folder per seed, trained in parallel Ray tasks (rayexp.seeds)
        from rayexp.seeds import run_seeds

        run_seeds(cfg, run, stages, do_evaluate=False)
        return
    metrics = run_train(cfg, run, stages, retrain=retrain)
    if not metrics.empty:
        last = metrics.groupby("stage").tail(1)[["stage", "step", "loss"]]
        from rayexp.artifacts import markdown_table

        click.echo(markdown_table(last))


@main.command()
@experiment_options
@click.option("--model", "models", multiple=True, help="Model stage(s) to evaluate (default: evaluate.models or all).")
@fail_cleanly
def evaluate(config_path, overrides, run_dir, address, overwrite, models):
    """Evaluate trained models on seeded episodes spread over parallel Ray actors."""
    from rayexp.artifacts import markdown_table
    from rayexp.pipeline import check_evaluate, run_evaluate

    models = list(models) or None
    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite, check=lambda cfg, run: check_evaluate(cfg, run, models))
    if cfg.seeds:
        from rayexp.reports.seeds import seeds_report
        from rayexp.seeds import run_seeds

        run_seeds(cfg, run, models=models, do_train=False)
        click.echo(seeds_report([run.path]))
        return
    click.echo(markdown_table(run_evaluate(cfg, run, models)))


@main.command()
@click.argument("run_paths", nargs=-1, required=True, type=click.Path())
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Several runs: folder for seeds.md/.csv and the interval plot (default: beside the runs). One run: "
                   "also write report.md (commit, resolved config, dataset) and its figures there, e.g. results/NAME.")
@fail_cleanly
def report(run_paths, out):
    """Print a run's results as a markdown table and write PNG plots beside them. Several runs (seeds of one
    experiment), or a run made with `seeds: [...]`: mean, s.e., IQM and stratified-bootstrap 95% intervals per method.
    A `data make-d4rl` folder: its tiers (size, returns, normalized score, wall time) and their return distributions."""
    from rayexp.reports.run import report as make_report
    from rayexp.reports.seeds import seeds_report

    if len(run_paths) > 1:
        click.echo(seeds_report([Path(p) for p in run_paths], out))
    else:
        from rayexp.families.mujoco.tiers_report import is_tiers_dir, tiers_report

        path = Path(run_paths[0])
        click.echo(tiers_report(path, Path(out) if out else None) if is_tiers_dir(path) else make_report(path, out))


@main.command()
@experiment_options
@fail_cleanly
def quickstart(config_path, overrides, run_dir, address, overwrite):
    """The whole pipeline on a small task in minutes: expert -> data -> models -> evaluation -> table."""
    from rayexp.pipeline import run_collect, run_evaluate, run_train
    from rayexp.reports.run import report as make_report

    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite, base_preset="quickstart.yaml",
                      redo=("*",) if overwrite else (), clear=(".",),
                      hint="pass --overwrite to start the quickstart over, or choose another name=...")
    click.echo(f"[1/3] collecting data into {run.path}")
    run_collect(cfg, run)
    if cfg.seeds:  # train + evaluate per seed in parallel Ray tasks; the report gives intervals over seeds
        from rayexp.seeds import run_seeds

        click.echo(f"[2/3] training {', '.join(cfg.models)} and [3/3] evaluating for seeds {cfg.seeds}")
        run_seeds(cfg, run)
    else:
        click.echo(f"[2/3] training {', '.join(cfg.models)} on Ray Train")
        run_train(cfg, run)
        click.echo("[3/3] evaluating in parallel actors")
        run_evaluate(cfg, run)
    run.mark_finished()
    click.echo(make_report(run.path))


@main.command()
@click.argument("sweep_yaml", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--address", default=None, help="Ray address: 'auto', HOST:PORT or 'ray://host:port'; default: the base's ray.address or a local Ray.")
@click.option("--restart", is_flag=True, help="Delete the sweep folder and start over instead of resuming it.")
@click.option("--stop-after", type=int, default=None, help="Interrupt the driver after N trials finish (rerun to resume).")
@fail_cleanly
def sweep(sweep_yaml, overrides, address, restart, stop_after):
    """Run (or resume) a Ray Tune sweep from tune_configs/sweep_*.yaml.

    OVERRIDES set sweep keys (max_concurrent=1, from_run=runs/x) or base experiment keys
    (base.train.steps=100). Results: <storage_path>/<name>/results.{parquet,csv}; then `rayexp report` on that folder.
    """
    from rayexp.artifacts import markdown_table
    from rayexp.sweeps.results import best_configs
    from rayexp.sweeps.run import run_sweep

    table = run_sweep(sweep_yaml, list(overrides), address=address, stop_after=stop_after, restart=restart)
    done = table.groupby("trial_id").tail(1)["status"].isin(["TERMINATED", "ERROR"]).sum() if len(table) else 0
    click.echo(f"sweep folder: {table.attrs['sweep_dir']} ({done} of {table.attrs['expected_trials']} trials finished)")
    if done < table.attrs["expected_trials"]:
        click.echo("interrupted: run the same command again to resume")
    if table.attrs["metric"] in table:
        click.echo(markdown_table(best_configs(table, table.attrs["metric"], table.attrs["mode"])))


@main.command()
@click.argument("names", nargs=-1)
@click.option("--quick", is_flag=True, help="Every benchmark tiny: a smoke test, not a measurement.")
@click.option("--out", "out_root", default="runs/bench", show_default=True, type=click.Path(file_okay=False),
              help="Results go to OUT/<time>/bench.{md,csv}.")
@fail_cleanly
def bench(names, quick, out_root):
    """Speed as ratios measured side by side in one run: inference, student-vs-forward, train-overhead, data,
    eval-scaling, collect-scaling, sweep-scaling, memory (default: all). Run it on an otherwise idle machine."""
    from rayexp.bench import BENCHMARKS, run_benchmarks

    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise RayexpError(f"no benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    _, out_dir = run_benchmarks(list(names) or None, quick=quick, out_root=out_root, echo=click.echo)
    click.echo(f"wrote {out_dir / 'bench.md'} and bench.csv")


@main.group()
def data():
    """Inspect, import and export datasets."""


@data.command("inspect")
@click.argument("path", type=click.Path())
@fail_cleanly
def data_inspect(path):
    """Validate a dataset and print its summary (episodes, steps, returns, success)."""
    from rayexp.data.minari import resolve_dataset

    click.echo(_format_summary(resolve_dataset(path, Path(".rayexp_cache")).summary()))


@data.command("import-d4rl")
@click.argument("hdf5", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--env-id", required=True, help="Env the data belongs to, e.g. Hopper-v5.")
@click.option("--overwrite", is_flag=True)
@fail_cleanly
def data_import_d4rl(hdf5, out, env_id, overwrite):
    """Import a file in the D4RL hdf5 layout into an episode store."""
    from rayexp.data.d4rl import import_d4rl_hdf5

    click.echo(_format_summary(import_d4rl_hdf5(hdf5, out, env_id, overwrite=overwrite).summary()))


@data.command("export-d4rl")
@click.argument("path", type=click.Path())
@click.argument("hdf5", type=click.Path(dir_okay=False))
@fail_cleanly
def data_export_d4rl(path, hdf5):
    """Write a dataset in the D4RL hdf5 layout."""
    from rayexp.data.d4rl import export_d4rl_hdf5
    from rayexp.data.store import EpisodeStore

    click.echo(f"wrote {export_d4rl_hdf5(EpisodeStore(path), hdf5)}")


@data.command("export-minari")
@click.argument("dataset", type=click.Path())
@click.option("--id", "dataset_id", required=True, help="Minari id, e.g. mujoco/hopper/medium-v0.")
@click.option("--path", "root", default=None, type=click.Path(file_okay=False), help="Minari root (default: MINARI_DATASETS_PATH or ~/.minari/datasets).")
@click.option("--format", "data_format", type=click.Choice(["hdf5", "arrow"]), default="hdf5", show_default=True)
@click.option("--overwrite", is_flag=True)
@fail_cleanly
def data_export_minari(dataset, dataset_id, root, data_format, overwrite):
    """Export a rayexp dataset (or minari:ID) as a local Minari dataset, with reference scores and per-episode conditions."""
    from rayexp.data.minari import export_minari, resolve_dataset

    store = resolve_dataset(dataset, Path(".rayexp_cache"))
    click.echo(f"wrote {export_minari(store, dataset_id, root, overwrite=overwrite, data_format=data_format)}")


@data.command("import-minari")
@click.argument("id_or_path")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Episode store folder to create.")
@click.option("--overwrite", is_flag=True)
@fail_cleanly
def data_import_minari(id_or_path, out, overwrite):
    """Import a local Minari dataset (id or folder; never downloads) into an episode store."""
    from rayexp.data.minari import import_minari

    click.echo(_format_summary(import_minari(id_or_path, out, overwrite=overwrite).summary()))


@data.command("make-d4rl")
@click.option("--env", "env_id", required=True, help="Gymnasium MuJoCo env, e.g. Hopper-v5.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the tiers, the SAC checkpoint and policies.")
@click.option("--steps", default=300_000, show_default=True, help="Total SAC env steps (rerun with more to extend the expert).")
@click.option("--target-fraction", default=1 / 3, show_default=True, help="Medium = first policy whose training return reaches this fraction of D4RL's expert score.")
@click.option("--target-return", type=float, default=None, help="Medium threshold as a raw return (envs without D4RL scores).")
@click.option("--tier-steps", default=100_000, show_default=True, help="Steps recorded for medium and expert (D4RL: 1M).")
@click.option("--num-env-runners", default=2, show_default=True)
@click.option("--max-episode-steps", type=int, default=None, help="Episode cap (default: the env's, 1000 for MuJoCo as in D4RL).")
@click.option("--learning-starts", default=5000, show_default=True, help="Random-action steps before SAC updates.")
@click.option("--training-intensity", default=256.0, show_default=True, help="RLlib replay ratio; 256 = one update (batch 256) per env step.")
@click.option("--seed", default=0, show_default=True)
@click.option("--address", default=None, help="Ray address; default: a local Ray.")
@fail_cleanly
def data_make_d4rl(env_id, out, steps, target_fraction, target_return, tier_steps, num_env_runners, max_episode_steps,
                   learning_starts, training_intensity, seed, address):
    """Train RLlib SAC and save D4RL tiers (medium, medium-replay, expert, medium-expert) as episode stores."""
    from envs.registry import check_env_id
    from rayexp.cluster import init_ray
    from rayexp.config import RayConfig
    from rayexp.families.mujoco.make_d4rl import make_d4rl

    check_env_id(env_id)  # before Ray starts
    init_ray(RayConfig(address=address))
    tiers = make_d4rl(env_id, out, steps=steps, target_fraction=target_fraction, target_return=target_return,
                      tier_steps=tier_steps, num_env_runners=num_env_runners, seed=seed, max_episode_steps=max_episode_steps,
                      learning_starts=learning_starts, training_intensity=training_intensity)
    for tier, summary in tiers.items():
        click.echo(f"{tier}: {summary['episodes']} episodes, {summary['steps']} steps, return mean {summary['return_mean']:.1f}")
    if "medium" not in tiers:
        click.echo("medium threshold not reached yet: rerun with a larger --steps to continue training")


@main.command("rllib-offline")
@click.argument("dataset", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the RLlib data copy, module and eval.parquet.")
@click.option("--algo", type=click.Choice(["cql", "iql"]), default="cql", show_default=True)
@click.option("--iterations", default=50, show_default=True, help="Training iterations of --updates gradient steps each.")
@click.option("--updates", default=100, show_default=True, help="Gradient updates per iteration.")
@click.option("--episodes", default=100, show_default=True, help="Evaluation episodes (episode i on seed --eval-seed + i).")
@click.option("--eval-seed", default=1000, show_default=True, help="Same as evaluate.seed of the run it sits beside.")
@click.option("--max-episode-steps", type=int, default=None)
@click.option("--num-actors", default=2, show_default=True)
@click.option("--run", "run_path", type=click.Path(file_okay=False), default=None,
              help="Also add the rows to RUN/eval.parquet (after `rayexp evaluate`), so `rayexp report RUN` shows them.")
@click.option("--address", default=None)
@fail_cleanly
def rllib_offline(dataset, out, algo, iterations, updates, episodes, eval_seed, max_episode_steps, num_actors, run_path, address):
    """Train an RLlib offline baseline (CQL or IQL) on an episode store and evaluate it like our models."""
    from rayexp.cluster import init_ray
    from rayexp.config import RayConfig
    from rayexp.data.store import EpisodeStore
    from rayexp.rllib.offline import add_rows_to_run, evaluate_rllib, train_cql

    store = EpisodeStore(dataset)  # a missing or bad store fails before Ray starts
    init_ray(RayConfig(address=address))
    info = train_cql(dataset, out, iterations, algo=algo, iters_per_train=updates)
    ref = (store.meta.ref_min_score, store.meta.ref_max_score) if store.meta.ref_min_score is not None else None
    env_cfg = {"id": store.meta.env_id, "max_episode_steps": max_episode_steps}
    df = evaluate_rllib(info["module"], env_cfg, episodes, eval_seed, num_actors, model=algo, ref_scores=ref)
    df.to_parquet(Path(out) / "eval.parquet", index=False)
    if run_path:
        add_rows_to_run(run_path, df)
    from rayexp.artifacts import markdown_table
    from rayexp.rows import summarize

    click.echo(f"{algo}: {info['updates']} updates in {info['wall_s']:.0f} s")
    click.echo(markdown_table(summarize(df)))


def _format_summary(summary: dict) -> str:
    return "\n".join(f"{k:>14}: {v}" for k, v in summary.items())


def _add_family_commands() -> None:
    """Each registered family's own commands (``rayexp maze ...``, ``rayexp smax ...``, a plugin's)."""
    from rayexp.families import hook, registered

    for family in registered():
        command = hook(family, "commands")
        if command is not None:
            main.add_command(command)


_add_family_commands()

if __name__ == "__main__":
    main()
