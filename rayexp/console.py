"""What a person watching a run reads: one progress bar per stage in the driver, one line when a stage ends, and
Ray's internal chatter hidden unless ``--verbose`` (``RAYEXP_VERBOSE=1``).

Hidden by default: Ray's Python warnings (token authentication, the RLlib new-API-stack and ``RLModule(config=...)``
deprecations, ``Install gputil``), everything Ray workers print (``log_to_driver=False``: each Train worker's log
lines, ``PlacementGroupCleaner Failed to query ...``, ``PreemptionWatcher ... object store``) and the driver's own
core-worker log lines. Worker logs stay in Ray's session folder (``/tmp/ray/session_latest/logs``).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import warnings
from typing import Callable, Iterator

VERBOSE_ENV = "RAYEXP_VERBOSE"


def fail_cleanly(fn):
    """A CLI command's user errors (``rayexp.errors.one_line_error``) end as one line and exit code 2; anything
    else is a bug and keeps its traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            from rayexp.errors import one_line_error

            message = one_line_error(e)
            if message is None:
                raise
            import click

            click.echo(f"error: {message}", err=True)
            sys.exit(2)

    return wrapper


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


def set_verbose(on: bool) -> None:
    """Called by the CLI before anything imports tqdm or Ray; Ray workers inherit the environment."""
    if on:
        os.environ[VERBOSE_ENV] = "1"
    if not sys.stderr.isatty():  # progress bars redraw in place on a terminal; in a log file each redraw is text
        os.environ.setdefault("TQDM_DISABLE", "1")
    quiet_warnings()


def quiet_warnings() -> None:
    """Ray's Python loggers and deprecation warnings down to errors, unless verbose."""
    if verbose():
        return
    for name in ("ray", "ray.rllib", "ray.tune", "ray.train", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", module=r"ray(\.|$)")


def echo(line: str) -> None:
    print(line, flush=True)


def duration(seconds: float) -> str:
    """3.2 -> '3.2 s', 75 -> '1 min 15 s', 3700 -> '1 h 1 min'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m} min {s} s"
    return f"{m // 60} h {m % 60} min"


def stage_done(what: str, seconds: float, where=None) -> None:
    """The one line a finished stage prints: what it did, how long it took and where its output went."""
    echo(f"{what} in {duration(seconds)}" + (f" -> {where}" if where is not None else ""))


@contextlib.contextmanager
def mute_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (unless verbose). Ray's C++ core worker writes its log
    lines (e.g. 'Actor ... has constructor arguments in the object store') straight to fd 2, past Python."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def follow(desc: str, total: int, poll: Callable[[], dict | None], every: float = 0.5, unit: str = "step") -> Iterator[None]:
    """A driver-side progress bar for work done elsewhere: a thread calls ``poll()`` every ``every`` seconds and moves
    the bar to its ``step`` (the other keys show as postfix, e.g. the loss)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(every):
            try:
                state = poll()
            except Exception:  # noqa: BLE001 (a progress bar must never fail the work it watches)
                continue
            if state and "step" in state:
                bar.n = min(int(state["step"]), total)
                loss = state.get("loss")
                if isinstance(loss, (int, float)):
                    bar.set_postfix(loss=f"{loss:.3g}", refresh=False)
                bar.refresh()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2 * every + 1)
        bar.close()
