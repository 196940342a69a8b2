"""The environments' own user errors. ``envs`` imports nothing of rayexp; rayexp's CLI prints these as one line
like its own (``rayexp.errors.one_line_error``)."""


class EnvError(ValueError):
    """A bad environment id, split or keyword argument, with the fix in its message."""


class UnknownEnvError(EnvError):
    """An env id that is neither a gymnasium id nor a registered family."""
