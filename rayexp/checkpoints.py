"""Reading checkpoint files safely, once, in the driver: one-line errors for missing, truncated, foreign or unsafe files,
and a check that a file holds the method its stage is configured with (a teacher's file in a student's place)."""
from __future__ import annotations

import logging
import pickle
import sys
import zipfile
from pathlib import Path

from rayexp.errors import RayexpError

log = logging.getLogger("rayexp")
MODEL_KEYS = ("method", "spec", "state_dict")


def read_checkpoint(path: str | Path, keys: tuple[str, ...] = MODEL_KEYS) -> dict:
    """``torch.load(path, weights_only=True)`` of a dict holding ``keys``; any failure is a one-line RayexpError
    (never torch's advice to load with ``weights_only=False``: an unsafe pickle is refused unread)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise RayexpError(f"checkpoint {path} does not exist; train that stage first (`rayexp train`)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise RayexpError(f"checkpoint {path} holds objects other than tensors and plain values, so it was refused "
                          "unread; it is no rayexp checkpoint: delete it and retrain that stage") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RayexpError(f"checkpoint {path} is truncated or corrupt ({first[:120]}); delete it and retrain that stage") from None
    missing = [k for k in keys if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise RayexpError(f"{path} is no rayexp model checkpoint (lacks {', '.join(missing)}); retrain that stage")
    return ckpt


def checkpoint_method(path: str | Path) -> str:
    """The method name recorded in a ``models/<stage>.pt`` file."""
    method = read_checkpoint(path)["method"]
    return method.get("name", "?") if isinstance(method, dict) else "?"


def valid_train_checkpoint(directory: Path) -> int | None:
    """The step of a Ray Train checkpoint folder (``step.txt`` + ``state.pt``), or None (with a warning) when a
    file is missing, empty or unreadable, e.g. cut short by a full disk."""
    try:
        step = int((directory / "step.txt").read_text().strip())
        read_checkpoint(directory / "state.pt", keys=("step", "model", "optimizer"))
    except (OSError, ValueError, RayexpError) as e:
        log.warning("skipping unreadable training checkpoint %s (%s)", directory, str(e).splitlines()[0] if str(e) else e)
        print(f"warning: skipping unreadable training checkpoint {directory}", file=sys.stderr, flush=True)
        return None
    return step
