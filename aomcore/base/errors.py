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

    Each part is put on one line (control characters become spaces) and capped at
    :attr:`PART_LIMIT` characters, so every message fits the one ``error:`` line the CLI
    prints and the one message a page shows, whatever a file held.
    """

    #: The most characters one part (message, expected, found) keeps; the rest is elided.
    PART_LIMIT = 400

    def __init__(self, message: str, expected: str | None = None, found: str | None = None):
        message, expected, found = (None if p is None else _one_line(p, self.PART_LIMIT)
                                    for p in (message, expected, found))
        self.message, self.expected, self.found = message, expected, found
        parts = [message]
        if expected is not None:
            parts.append(f"expected {expected}")
        if found is not None:
            parts.append(f"found {found}")
        super().__init__(parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else ""))


def _one_line(text: object, limit: int) -> str:
    """``text`` on one line (newlines and other control characters shown as spaces), at most
    ``limit`` characters: an error line from a file's contents can be megabytes long."""
    text = "".join(c if c.isprintable() else " " for c in str(text))
    return text if len(text) <= limit else f"{text[:limit - 30]}… ({len(text):,} characters)"


class Cancelled(Exception):
    """Raised by :func:`train` when its cancel event is set; the model is left as it was."""
