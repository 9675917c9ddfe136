"""`--class_weights auto`: the stated formula on a toy split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ddrnet_toolkit.data.class_weights import count_label_pixels, weights_from_counts


def test_counts_and_weights_follow_the_stated_formula():
    labels = [np.array([[0, 0, 0, 1], [0, 0, 255, 1]], np.uint8), np.array([[0, 2, 0, 0]], np.uint8)]
    counts = count_label_pixels([{"label": label} for label in labels], num_labels=4, show_progress=False)
    assert counts.tolist() == [8, 2, 1, 0]  # 255 is not a class; class 3 is absent
    raw = [1 / math.log(1.02 + share) for share in (8 / 11, 2 / 11, 1 / 11)]
    expected = [w / (sum(raw) / 3) for w in raw] + [1.0]
    assert weights_from_counts(counts) == pytest.approx(expected, abs=1e-6)
    assert weights_from_counts(counts)[2] > weights_from_counts(counts)[1] > weights_from_counts(counts)[0]


def test_a_split_without_labelled_pixels_is_refused():
    with pytest.raises(ValueError, match="no labelled pixel"):
        weights_from_counts(np.zeros(3))
