"""Ray glue for driver-side progress: Ray Train's controller hands every worker report to ``ReportProgress``, which
posts rank 0's metrics to a small ``ProgressBoard`` actor; the driver's bar (``rayexp.console.follow``) polls it.
Workers print nothing: the bar is fed by what they report, not by their stdout."""
from __future__ import annotations

from typing import Any

import ray
from ray.train.v2.api.callback import UserCallback


@ray.remote(num_cpus=0)
class ProgressBoard:
    """The latest report per key (a stage name)."""

    def __init__(self):
        self.latest: dict[str, dict[str, Any]] = {}

    def put(self, key: str, metrics: dict[str, Any]) -> None:
        self.latest[key] = metrics

    def get(self, key: str) -> dict[str, Any] | None:
        return self.latest.get(key)


class ReportProgress(UserCallback):
    """Runs on the Ray Train controller after every ``ray.train.report`` of all workers."""

    def __init__(self, board, key: str):
        self.board, self.key = board, key

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        if metrics:
            self.board.put.remote(self.key, metrics[0])


def board_poller(board, key: str):
    """A ``poll()`` for ``rayexp.console.follow``."""
    return lambda: ray.get(board.get.remote(key), timeout=5)
