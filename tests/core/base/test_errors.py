"""InputError: one line, bounded, whatever a file held."""

from aomcore import InputError


def test_message_names_expected_and_found():
    assert str(InputError("unknown split", expected="train or test", found="'val'")) == \
        "unknown split: expected train or test, found 'val'"


def test_every_part_is_one_bounded_line():
    err = InputError("bad\nfield\r", expected="a\tnumber", found="x" * 3_000_000 + "\n\x00tail")
    text = str(err)
    assert "\n" not in text and "\r" not in text and "\x00" not in text and "\t" not in text
    assert len(text) < 3 * InputError.PART_LIMIT
    assert text.startswith("bad field : expected a number, found xxx")
    assert "(3,000,006 characters)" in text
    assert err.found.endswith("characters)") and len(err.found) <= InputError.PART_LIMIT
