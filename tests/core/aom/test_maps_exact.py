"""Eqs. 1-4 on a hand-weighted model where every expected value is an exact number."""

import numpy as np
import pytest
import torch

from aomcore import InputError, OccurrenceCounter, aom, compute_maps, csm, odm, selectivity
from tests.conftest import DEVICES

from ..helpers import pixel_model, tiny_dataset

# class 0: two images, class 1: one image (2x2 pixels)
IMAGES = [[[1, 0], [0, 0]], [[1, 1], [0, 0]], [[0, 0], [0, 1]]]
LABELS = [0, 0, 1]

# k0 = relu(pixel) > 0 where the pixel is 1; k1 = relu(0.5 - pixel) > 0 where it is 0;
# k2 = relu(0) = 0 exactly, which must NOT count (the threshold is strict).
EXPECTED_AOM = np.array([
    [[[1, 0.5], [0, 0]], [[0, 0], [0, 1]]],
    [[[0, 0.5], [1, 1]], [[1, 1], [1, 0]]],
    [[[0, 0], [0, 0]], [[0, 0], [0, 0]]],
])


@pytest.mark.parametrize("device", DEVICES)
def test_aom_exact(device):
    maps = compute_maps(pixel_model(), tiny_dataset(IMAGES, LABELS), ["conv"], device=device, batch_size=2)
    m = maps["conv"]
    assert m.tap == "relu"
    assert m.counts.dtype == np.int64
    np.testing.assert_array_equal(m.class_sizes, [2, 1])
    np.testing.assert_array_equal(m.counts, EXPECTED_AOM * np.array([2, 1])[None, :, None, None])
    np.testing.assert_array_equal(m.aom, EXPECTED_AOM)


def test_odm_exact():
    d = odm(EXPECTED_AOM)
    np.testing.assert_allclose(d, [[0, 7 / 8, 2.5 / 8], [7 / 8, 0, 5.5 / 8], [2.5 / 8, 5.5 / 8, 0]], atol=1e-15)


def test_csm_and_selectivity_exact():
    s = csm(EXPECTED_AOM)
    np.testing.assert_array_equal(s[0, 0], [[1, 0.5], [0, -1]])
    np.testing.assert_array_equal(s[0, 1], -s[0, 0])
    np.testing.assert_array_equal(s[1, 0], [[-1, -0.5], [0, 1]])
    np.testing.assert_array_equal(s[2], 0)
    # avg S: k0 = (+0.125, -0.125), k1 = (-0.125, +0.125); two ordered pairs each |0.25|
    np.testing.assert_allclose(selectivity(s), [0.5, 0.5, 0.0], atol=1e-15)


def test_csm_three_classes_divides_by_c_minus_1():
    m = np.zeros((1, 3, 1, 1))
    m[0, :, 0, 0] = [1.0, 0.5, 0.0]
    s = csm(m)[0, :, 0, 0]
    np.testing.assert_allclose(s, [(0.5 + 1) / 2, (-0.5 + 0.5) / 2, (-1 - 0.5) / 2])
    # avg S = (0.75, 0, -0.75): ordered pairs 2 * (0.75 + 1.5 + 0.75) = 6
    np.testing.assert_allclose(selectivity(csm(m)), [6.0])


def test_threshold_is_configurable_and_strict():
    ds = tiny_dataset(IMAGES, LABELS)
    m = compute_maps(pixel_model(), ds, ["conv"], threshold=0.5)["conv"]
    # k0 = 1 on lit pixels > 0.5 counts; k1 = 0.5 on dark pixels is not > 0.5
    np.testing.assert_array_equal(m.aom[0], EXPECTED_AOM[0])
    np.testing.assert_array_equal(m.aom[1], 0)


def test_fc_neurons_are_kernels_with_one_position():
    counter = OccurrenceCounter(num_classes=2)
    counter.update(torch.tensor([[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]]), torch.tensor([0, 0, 1]))
    counts, sizes = counter.result()
    assert counts.shape == (2, 2, 1, 1)
    np.testing.assert_array_equal(counts[:, :, 0, 0], [[2, 0], [0, 1]])
    np.testing.assert_array_equal(sizes, [2, 1])


def test_empty_class_and_single_class_are_clear_errors():
    with pytest.raises(InputError, match="no images of class '1'"):
        aom(np.zeros((1, 3, 1, 1)), np.array([2, 0, 1]))
    with pytest.raises(InputError, match="at least two classes"):
        aom(np.zeros((1, 1, 1, 1)), np.array([5]))


def test_threshold_must_be_a_number():
    with pytest.raises(InputError, match="threshold must be a number"):
        compute_maps(pixel_model(), tiny_dataset(IMAGES, LABELS), ["conv"], threshold="abc")
