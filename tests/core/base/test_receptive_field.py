"""Receptive-field boxes: exact for hand-set geometries."""

from collections import OrderedDict

import numpy as np
import pytest
from torch import nn

from aomcore import InputError
from aomcore.base.models import deepeyes_mnist
from aomcore.base.receptive_field import layer_chain, receptive_box, receptive_boxes


def test_one_conv_box_from_stride_padding_kernel():
    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, kernel_size=3, stride=2, padding=1))]))
    chain = layer_chain(model, "conv")
    # output (row 2, col 0) sees input rows 2·2 − 1 … 2·2 − 1 + 2 = 3…5, cols −1…1 (col −1 is padding)
    assert receptive_box(chain, 2, 0) == (3, -1, 6, 2)


def test_dilation_and_rectangular_kernels():
    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 1, kernel_size=(3, 5), stride=(1, 2),
                                                          padding=(0, 2), dilation=(2, 1)))]))
    # rows: 4 … 4 + 2·2 = 8; cols: 3·2 − 2 … 3·2 − 2 + 4 = 4 … 8
    assert receptive_box(layer_chain(model, "conv"), 4, 3) == (4, 4, 9, 9)


def test_a_deeper_layer_composes_through_the_pool():
    model = deepeyes_mnist()
    chain = layer_chain(model, "conv2")
    assert [op.name for op in chain] == ["conv1", "pool1", "conv2"]
    # conv2 (r, c) ← pool rows r…r+4 ← conv1 rows 2r…2r+9 ← image rows 2r…2r+13
    assert receptive_box(chain, 0, 0) == (0, 0, 14, 14)
    assert receptive_box(chain, 7, 3) == (14, 6, 28, 20)
    boxes, what = receptive_boxes(model, "conv2", np.array([0, 7 * 8 + 3]), (8, 8), (28, 28))
    assert boxes == [(0, 0, 14, 14), (14, 6, 28, 20)] and "14×14" in what


def test_an_fc_layer_sees_the_whole_image():
    boxes, what = receptive_boxes(deepeyes_mnist(), "fc1", np.array([0]), (1, 1), (28, 28))
    assert boxes == [(0, 0, 28, 28)] and "whole image" in what


def test_unknown_layer():
    with pytest.raises(InputError):
        layer_chain(deepeyes_mnist(), "nope")
