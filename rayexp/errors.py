"""User-facing errors: one line that names the bad field or file and says how to fix it."""
from __future__ import annotations

import errno

from envs.errors import EnvError


class RayexpError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits non-zero."""


class ConfigError(RayexpError):
    """A config key or value that is not allowed."""


class DataError(RayexpError):
    """A dataset file that is missing, corrupt or does not match its metadata."""


def one_line_error(e: BaseException) -> str | None:
    """The one line to print for a user-facing failure, or None for a bug (whose traceback should show). Looks
    through Ray's wrappers (an actor's or Train worker's exception) for a RayexpError or a file-system error."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        cause = getattr(e, "cause", None)  # ray.exceptions.RayTaskError/RayActorError keep the remote exception here
        if isinstance(e, (RayexpError, EnvError)) and not isinstance(cause, BaseException):
            return str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return (f"no space left on the device holding {e.filename or 'the run folder'}; free some space or choose "
                    "another --run-dir, then rerun (finished work is kept)")
        if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EROFS, errno.EPERM, errno.ENOTDIR):
            return f"cannot write {e.filename or ''} ({e.strerror}); choose another --run-dir"
        if "No space left on device" in str(e):  # a worker's OSError that Ray passed on as text
            return ("no space left on device (seen in a Ray worker); free some space or choose another --run-dir, "
                    "then rerun (finished work is kept)")
        inner = [*getattr(e, "worker_failures", {}).values(), getattr(e, "controller_failure", None)]  # Ray Train
        for line in (one_line_error(x) for x in inner if isinstance(x, BaseException)):
            if line:
                return line
        e = cause if isinstance(cause, BaseException) else (e.__cause__ or e.__context__)
    return None


def first_error(e) -> str:
    """The first problem of a pydantic ``ValidationError`` as ``dotted.key: message``."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{loc}: {msg}" if loc else msg
