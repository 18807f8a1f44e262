"""The one base class for mistakes a user can fix: bad options, files, data or configs.

The CLI prints these as a single ``error: ...`` line and exits non-zero; anything else is
a bug and keeps its traceback.  ``docs/errors.md`` lists the messages and their tests.
"""
from __future__ import annotations

import errno

#: errno values that mean "the disk (or quota) is full": a fault the user fixes, not a bug
DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class UserError(ValueError):
    """A problem with the user's input; the message names the file or option and the fix."""


class ConfigError(UserError):
    """A config file or value is wrong (one-line message naming the file or key)."""


class MethodError(UserError):
    """A method cannot be built or run with the given settings (one-line message)."""


class MethodSettingsError(ConfigError, MethodError):
    """A method's settings (its YAML or overrides) are wrong: names the file and key path."""


class DiskFullError(UserError):
    """A write failed because the device is full; nothing half-written was kept."""


class RunLockedError(UserError):
    """Another live ``bench run`` holds the run directory's lock."""


def os_error_message(exc: OSError, action: str = "writing") -> str:
    """One line for an OSError a user can cause (full disk, permissions, read-only disk)."""
    where = exc.filename or "a file"
    if exc.errno in DISK_FULL:
        return f"no space left on the device while {action} {where}; free some space and rerun (finished results are kept, nothing half-written was left)"
    reason = exc.strerror or str(exc)
    return f"{reason} while {action} {where}"
