"""The one exception type for mistakes a user can fix.

The CLI turns a TinycnnError into a single line on stderr and a non-zero exit code;
anything else is a bug and keeps its traceback.
"""


class TinycnnError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""
