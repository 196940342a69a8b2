"""Run a plain function over many inputs in parallel Ray tasks, with a progress bar.

Results come back in input order, so the numbers do not depend on how many workers ran them.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from tqdm.auto import tqdm


def ray_map(fn: Callable[..., Any], kwargs_list: Sequence[dict[str, Any]], desc: str = "", num_cpus: float = 1) -> list[Any]:
    """``[fn(**kw) for kw in kwargs_list]``, each call a Ray task (Ray must be initialised)."""
    import ray

    remote = ray.remote(num_cpus=num_cpus)(fn)
    refs = [remote.remote(**kw) for kw in kwargs_list]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    pending = list(refs)
    with tqdm(total=len(refs), desc=desc or getattr(fn, "__name__", "tasks"), leave=False) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                results[index[ref]] = ray.get(ref)
                bar.update(1)
    return results
