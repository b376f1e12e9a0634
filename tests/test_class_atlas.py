import numpy as np
import pytest

from activation_atlas.algorithms.class_atlas import class_slug, resolve_class, select_for_class


def test_selection_is_own_top_class_plus_the_most_attributed():
    attribution = np.array(
        [
            [5.0, 1.0],  # top class 0
            [1.0, 4.0],  # top class 1, 1.0 to class 0
            [0.0, 9.0],  # top class 1, 0.0 to class 0
            [3.0, 2.0],  # top class 0
            [2.5, 8.0],
        ]
    )  # top class 1, 2.5 to class 0
    assert select_for_class(attribution, None, 0, top_n=1).tolist() == [0, 3]
    assert select_for_class(attribution, None, 0, top_n=3).tolist() == [0, 3, 4]
    assert select_for_class(attribution, None, 1, top_n=0).tolist() == [1, 2, 4]


def test_selection_with_top_k_storage_only_ranks_where_the_class_was_stored():
    attribution = np.array([[5.0, 1.0], [4.0, 3.0], [9.0, 8.0]])
    classes = np.array([[2, 0], [1, 2], [0, 1]])
    # class 2: top class of row 0; stored for row 1 (3.0); not stored for row 2.
    assert select_for_class(attribution, classes, 2, top_n=5).tolist() == [0, 1]


def test_classes_resolve_by_name_or_index_and_unknown_ones_are_explained():
    names = ["dummy", "kit fox", "English setter"]
    assert resolve_class("kit fox", names) == 1 and resolve_class(2, names) == 2 and resolve_class("2", names) == 2
    with pytest.raises(ValueError, match="unknown class 'fox'; names containing it: kit fox"):
        resolve_class("fox", names)
    with pytest.raises(ValueError, match="class index 7 is out of range: the model has 3 classes"):
        resolve_class(7, names)
    assert class_slug("kit fox") == "kit_fox" and class_slug("4") == "4"


def test_comparison_x_is_the_normalised_attribution_difference():
    from activation_atlas.algorithms.class_atlas import comparison_layout, comparison_x

    attribution = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0], [1.0, 1.0, 9.0], [0.0, 4.0, 1.0]])
    x = comparison_x(attribution, None, 0, 1)
    assert np.allclose(x, [2 / 4, -2 / 4, 0.0, -4 / 4])
    assert np.allclose(comparison_x(attribution, None, 1, 0), -x)
    xy = comparison_layout(x, np.array([0.0, 0.5, 1.0, 0.25]))
    assert np.allclose(xy[:, 0], [0.75, 0.25, 0.5, 0.0]) and np.allclose(xy[:, 1], [0.0, 0.5, 1.0, 0.25])


def test_comparison_with_top_k_storage_counts_a_missing_class_at_the_rows_lowest_stored_value():
    from activation_atlas.algorithms.class_atlas import comparison_x

    attribution = np.array([[5.0, 1.0], [4.0, 2.0]])
    classes = np.array([[0, 2], [1, 0]])  # row 0 stores classes 0 and 2, row 1 classes 1 and 0
    # Class 1 for row 0 is not stored: counted as 1.0 (its lowest stored value).
    assert np.allclose(comparison_x(attribution, classes, 0, 1), [(5 - 1) / 4, (2 - 4) / 4])


def test_comparison_selection_is_the_union_of_both_class_selections():
    from activation_atlas.algorithms.class_atlas import select_for_comparison

    rng = np.random.default_rng(0)
    attribution = rng.normal(size=(50, 4))
    both = select_for_comparison(attribution, None, 0, 3, top_n=5)
    expected = np.union1d(select_for_class(attribution, None, 0, 5), select_for_class(attribution, None, 3, 5))
    assert np.array_equal(both, expected) and len(both) > len(select_for_class(attribution, None, 0, 5))
