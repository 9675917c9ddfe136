"""Per-class loss weights computed from a training split's pixel frequencies (`--class_weights auto`).

    w_c = 1 / ln(1.02 + p_c),   p_c = pixels labelled c / all labelled pixels of the split,

then scaled so that the weights of the classes present average 1 (Paszke et al. 2016, ENet). The logarithm
bounds the weights (between about 1.4 and 50 before scaling), so a rare class is favoured without letting a
handful of pixels dominate the loss. A class absent from the split gets weight 1: it has no pixels to weigh.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

FORMULA = "w_c = 1 / ln(1.02 + p_c), p_c = share of the split's labelled pixels in class c, scaled to mean 1"


def count_label_pixels(split, num_labels: int, show_progress: bool = True) -> np.ndarray:
    """`(num_labels,)` int64 pixel counts per class over the `label` column of `split` (other values ignored)."""
    counts = np.zeros(num_labels, dtype=np.int64)
    for row in tqdm(split, desc="counting label pixels", disable=not show_progress, leave=False):
        values = np.asarray(row["label"]).ravel()
        counts += np.bincount(values[values < num_labels], minlength=num_labels)[:num_labels]
    return counts


def weights_from_counts(counts: np.ndarray) -> list[float]:
    """The weights of `FORMULA` for `(num_labels,)` pixel counts."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() == 0:
        raise ValueError("The training split holds no labelled pixel: class weights cannot be computed")
    present = counts > 0
    weights = np.ones_like(counts)
    weights[present] = 1.0 / np.log(1.02 + counts[present] / counts.sum())
    weights[present] /= weights[present].mean()
    return [round(float(w), 6) for w in weights]
