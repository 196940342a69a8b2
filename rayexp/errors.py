"""User-facing errors: one line that names the bad field or file and says how to fix it."""


class RayexpError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits non-zero."""


class ConfigError(RayexpError):
    """A config key or value that is not allowed."""


class DataError(RayexpError):
    """A dataset file that is missing, corrupt or does not match its metadata."""
