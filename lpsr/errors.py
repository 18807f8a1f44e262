"""The one base class for mistakes a user can fix: bad options, files, data or configs.

The CLI prints these as a single ``error: ...`` line and exits non-zero; anything else is
a bug and keeps its traceback.
"""


class UserError(ValueError):
    """A problem with the user's input; the message names the file or option and the fix."""
