"""Edit records are validated, never coerced: 1.7 is not kernel 1, "5" is not 5 (issue #15)."""

import json

import numpy as np
import pytest

from aomcore import Edit, InputError, load_edits, parse_edit
from aomcore.base.editing import kernel_ranges


@pytest.mark.parametrize("text,kind,message", [
    ("conv1:1.7", "remove", "bad --remove value"),
    ("conv1:1_0", "reinit", "bad --reinit value"),
    ("conv1:-1", "remove", "bad --remove value"),
    ("conv1:+2.5", "widen", "bad --widen value"),
    ("conv1:5-2", "remove", "ranges ascending"),
    ("conv1:0-5-9", "remove", "bad --remove value"),
    ("conv1:0-99999999999", "remove", "at most 1,000,000 kernel indices"),
])
def test_parse_edit_takes_whole_numbers_only(text, kind, message):
    with pytest.raises(InputError, match=message):
        parse_edit(text, kind)


def test_parse_edit_and_numpy_indices():
    assert parse_edit("conv1: 3, 5", "remove").kernels == (3, 5)
    assert parse_edit("conv1:+4", "widen").n == 4
    assert Edit("remove", "conv1", np.array([2, 7])).kernels == (2, 7)
    assert Edit("remove", "conv1", (np.int64(2),)).kernels == (2,)


def test_kernel_ranges_print_what_parse_edit_reads():
    assert kernel_ranges([8, 0, 1, 2, 3, 5, 7]) == "0-3,5,7-8" and kernel_ranges([]) == "" and kernel_ranges([4]) == "4"
    kept = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 30, 31]
    text = kernel_ranges(kept)
    assert text == "0-19,21-23,30-31" and parse_edit(f"conv1:{text}", "remove").kernels == tuple(kept)
    assert "0-19,21-23,30-31" in Edit("remove", "conv1", kept).describe()


@pytest.mark.parametrize("record,message", [
    ({"kind": "remove", "layer": "conv1", "kernels": [1.7]}, "kernel indices must be integers"),
    ({"kind": "remove", "layer": "conv1", "kernels": [True]}, "kernel indices must be integers"),
    ({"kind": "remove", "layer": "conv1", "kernels": "abc"}, "bad edit field 'kernels'"),
    ({"kind": "widen", "layer": "conv1", "n": "5"}, "bad edit field 'n': expected an integer, found '5'"),
    ({"kind": "widen", "layer": "conv1", "n": 2, "seed": 0.5}, "bad edit field 'seed'"),
    ({"kind": "insert", "layer": ["conv1"]}, "bad edit field 'layer'"),
    ({"kind": "insert"}, "malformed edit record"),
    ({"kind": "shrink", "layer": "conv1"}, "unknown edit"),
])
def test_bad_records_are_clear(record, message):
    with pytest.raises(InputError, match=message):
        load_edits(json.dumps([record]))


@pytest.mark.parametrize("text,message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("[[[1]]]", "malformed edit record"),
    ('{"edit": []}', "edit list is malformed"),
    ('{"edits": 3}', "edit list is malformed"),
])
def test_bad_lists_are_clear(text, message):
    with pytest.raises(InputError, match=message):
        load_edits(text)
