"""User-facing errors: raised for bad input, printed as one line without a traceback."""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in the user's configuration or data, reported as one line.

    The message names the key, the value given and what is allowed, e.g.
    ``"way=0: must be an integer >= 1"``.
    """
