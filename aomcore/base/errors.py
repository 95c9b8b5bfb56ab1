"""The one exception type for bad input: it says what was expected and what was found."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from a user (file, dataset, option), with a message fit to show as is.

    Parameters
    ----------
    message : str
        What is wrong, in one short clause.
    expected, found : str, optional
        What the input should have been, and what it was.

    Examples
    --------
    >>> str(InputError("unknown split", expected="train or test", found="'val'"))
    "unknown split: expected train or test, found 'val'"
    """

    def __init__(self, message: str, expected: str | None = None, found: str | None = None):
        self.message, self.expected, self.found = message, expected, found
        parts = [message]
        if expected is not None:
            parts.append(f"expected {expected}")
        if found is not None:
            parts.append(f"found {found}")
        super().__init__(parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else ""))


class Cancelled(Exception):
    """Raised by :func:`train` when its cancel event is set; the model is left as it was."""
