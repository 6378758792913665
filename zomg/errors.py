"""The one place where zomg's error classes and exit codes are decided.

Every failure a user can cause or meet is a ZomgError subclass carrying two
things: the process exit code and a coarse ``error_class``. Telemetry reads only
the class, never the message, so messages are free to name the user's input.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# What a shell answers for a command it cannot run; `zomg exec` follows env(1).
EXIT_CANNOT_EXECUTE = 126
EXIT_COMMAND_NOT_FOUND = 127

# Each class below names its ``error_class``: one of the values the telemetry schema allows
# (zomg.telemetry.schema.ERROR_CLASSES, their one home; tests/test_schema.py checks every class here).
# error_classes() says which ones zomg's failures carry.


class ZomgError(Exception):
    """A failure with a one-line message meant for the user."""

    exit_code = EXIT_ERROR
    error_class = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ZomgError):
    exit_code = EXIT_USAGE
    error_class = "usage"


class ConfigError(ZomgError):
    error_class = "config"


class NotFoundError(ZomgError):
    error_class = "not_found"


class PermissionDeniedError(ZomgError):
    error_class = "permission"


class ConflictError(ZomgError):
    error_class = "conflict"


class NetworkError(ZomgError):
    error_class = "network"


class OperationTimeoutError(ZomgError):
    error_class = "timeout"


class SubprocessError(ZomgError):
    error_class = "subprocess"


class CommandNotFoundError(SubprocessError):
    exit_code = EXIT_COMMAND_NOT_FOUND
    error_class = "not_found"


class CommandNotExecutableError(SubprocessError):
    exit_code = EXIT_CANNOT_EXECUTE
    error_class = "permission"


def from_os_error(exc: OSError, what: str) -> ZomgError:
    """Turn an OSError met while touching ``what`` into the matching ZomgError."""
    import errno

    reason = exc.strerror or str(exc)
    message = f"{what}: {reason}"
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDeniedError(message)
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(message)
    if isinstance(exc, FileExistsError):
        return ConflictError(message)
    return ConfigError(message)


def error_classes() -> set[str]:
    """The ``error_class`` of every ZomgError class defined: what a failed command may be recorded as.

    Read off the classes, so the values have no list here: telemetry's event builder checks against it
    without loading the schema, which allows each of them (tests/test_schema.py).
    """
    found, todo = set(), [ZomgError]
    while todo:
        kind = todo.pop()
        found.add(kind.error_class)
        todo.extend(kind.__subclasses__())
    return found
