"""User-facing errors: one line that names the bad field or file and says how to fix it."""


class RayexpError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits non-zero."""


class ConfigError(RayexpError):
    pass


class DataError(RayexpError):
    pass
