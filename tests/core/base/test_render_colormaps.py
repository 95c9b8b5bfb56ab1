"""The colormaps beside the paper's and the labelled grid image (exact colours, sizes)."""

import numpy as np
import pytest

from aomcore import apply_colormap, colorbar_image, map_grid_image


def test_alternative_colormaps_end_points():
    assert apply_colormap(np.array([-1.0, 0.0, 1.0]), "coolwarm").tolist() == [[59, 76, 192], [221, 221, 221],
                                                                               [180, 4, 38]]
    assert apply_colormap(np.array([0.0, 1.0]), "magma").tolist() == [[0, 0, 4], [252, 253, 191]]
    assert apply_colormap(np.array([0.0, 0.5, 1.0]), "gray").tolist() == [[0, 0, 0], [128, 128, 128],
                                                                          [255, 255, 255]]
    with pytest.raises(ValueError, match="coolwarm"):
        apply_colormap(np.zeros(2), "jet")


def test_grid_image_square_maps_full_names_and_a_colour_bar():
    maps = np.zeros((2, 3, 4, 4))
    short = map_grid_image(maps, "occurrence", classes=["a", "b", "c"], cell=40, colorbar=False)
    long = map_grid_image(maps, "occurrence", classes=["a", "Ankle boot", "extraordinarily"], cell=40,
                          colorbar=False)
    assert long.width == short.width  # names are wrapped or turned, never widen or truncate a column
    assert long.height > short.height  # the header grows to hold the whole name
    with_bar = map_grid_image(maps, "occurrence", classes=["a", "b", "c"], cell=40)
    assert with_bar.height == short.height + 44
    grid = np.asarray(short)
    # the first map (kernel 0, class 0) is a 40×40 block of the colour of 0
    ys, xs = np.nonzero((grid == apply_colormap(np.zeros(1), "occurrence")[0]).all(axis=-1))
    assert ys.max() - ys.min() + 1 == 2 * 40 + 2 and len(set(xs)) == 3 * 40  # 2 rows × 3 columns of 40×40 maps


def test_colorbar_has_room_for_its_values():
    bar = colorbar_image("selectivity", -1, 1, width=200)
    assert bar.size == (224, 34)


def test_a_grid_of_some_kernels_draws_only_those_rows():
    """A selection of kernels (the filter map's box selection) is drawn as its own rows."""
    import pytest

    from aomcore import InputError

    rng = np.random.default_rng(0)
    maps = rng.random((8, 3, 4, 4))
    whole = map_grid_image(maps, "occurrence", classes=["a", "b", "c"], colorbar=False)
    some = map_grid_image(maps, "occurrence", order=np.array([6, 2]), groups=np.arange(8),
                          flags={"dead": np.zeros(8, bool), "always_on": np.ones(8, bool)},
                          classes=["a", "b", "c"], colorbar=False)
    assert some.height < whole.height and some.width >= whole.width - 20
    cell = 56 // 4 * 4
    assert whole.height - some.height == 6 * (cell + 2)  # six rows fewer, same header
    with pytest.raises(InputError, match="no such kernels"):
        map_grid_image(maps, "occurrence", order=np.array([8]))
