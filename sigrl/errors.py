"""The one exception type for mistakes a user can fix."""


class SigrlError(Exception):
    """A user-facing error: the message says what is wrong and what to do about it.

    The CLI prints it as one line on stderr and exits non-zero.
    """
