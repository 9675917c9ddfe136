from __future__ import annotations

import json
import re

import numpy as np
import pytest

from dataset_builders.cityscapes.labels import CLASS_NAMES, PALETTE
from dataset_builders.errors import DatasetError
from dataset_builders.label_space import LabelSpace, default_palette


def labels_file(tmp_path, content, name="labels.json"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def stored(*values):
    return np.array([values], dtype=np.uint8)


def test_plain_id2label_file_gives_identity_lookup_and_default_colours(tmp_path):
    space = LabelSpace.from_labels_file(labels_file(tmp_path, {"1": "car", "0": "road", "2": "person"}))
    assert space.names == ("road", "car", "person") and space.num_labels == 3
    assert space.id2label == {0: "road", 1: "car", 2: "person"} and space.ignore_index == 255
    np.testing.assert_array_equal(space.encode(stored(0, 1, 2, 255)), stored(0, 1, 2, 255))
    assert space.invalid_values(stored(0, 3, 7, 7, 255)) == [3, 7]
    assert space.allowed_values == [0, 1, 2, 255]
    # Default colours: VOC colours 1..N, distinct, none black; ignore and unused rows black.
    np.testing.assert_array_equal(space.palette[:3], default_palette()[:3])
    assert space.palette[:3].tolist() == [[128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert not space.palette[3:].any()
    palette = default_palette()[:255]
    assert len({tuple(colour) for colour in palette.tolist()}) == 255 and palette.any(axis=1).all()
    assert space.palette.dtype == np.uint8 and space.lookup.dtype == np.int16
    assert space.to_labels_file() == {
        "id2label": {"0": "road", "1": "car", "2": "person"},
        "colors": [[128, 0, 0], [0, 128, 0], [128, 128, 0]],
        "ignore_index": 255,
    }
    again = LabelSpace.from_dict(space.to_labels_file())
    assert again.names == space.names and np.array_equal(again.palette, space.palette)


def test_full_form_with_colours_ignore_index_and_label_map(tmp_path):
    path = labels_file(
        tmp_path,
        {
            "id2label": {"0": "road", "1": "car"},
            "colors": [[1, 2, 3], [4, 5, 6]],
            "ignore_index": 250,
            "label_map": {"7": 0, "26": 1, "0": 250},
        },
    )
    space = LabelSpace.from_labels_file(path)
    assert space.palette[:2].tolist() == [[1, 2, 3], [4, 5, 6]] and not space.palette[250].any()
    np.testing.assert_array_equal(space.encode(stored(7, 26, 0, 250)), stored(0, 1, 250, 250))
    assert space.invalid_values(stored(1, 7, 255)) == [1, 255]  # only the mapped values and ignore_index
    no_map = LabelSpace.from_labels_file(
        labels_file(tmp_path, {"id2label": {"0": "road", "1": "car"}, "ignore_index": 250}, "b.json")
    )
    np.testing.assert_array_equal(no_map.encode(stored(0, 1, 250)), stored(0, 1, 250))
    assert no_map.invalid_values(stored(2, 255)) == [2, 255]


def test_reduce_labels_shifts_classes_and_ignores_zero(tmp_path):
    path = labels_file(tmp_path, {"0": "wall", "1": "floor"})
    space = LabelSpace.from_labels_file(path, reduce_labels=True)
    np.testing.assert_array_equal(space.encode(stored(0, 1, 2, 255)), stored(255, 0, 1, 255))
    assert space.invalid_values(stored(0, 3)) == [3]
    assert space.fingerprint != LabelSpace.from_labels_file(path).fingerprint


def test_cityscapes_label_space_is_the_train_id_table():
    space = LabelSpace.cityscapes()
    assert space.names == CLASS_NAMES and space.num_labels == 19 and space.ignore_index == 255
    np.testing.assert_array_equal(space.palette, PALETTE)
    assert space.allowed_values == [*range(19), 255]
    train_ids = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert space.invalid_values(train_ids) == list(range(19, 255))


def test_encode_names_the_culprit_and_refuses_wrong_arrays(tmp_path):
    path = labels_file(tmp_path, {"0": "a", "1": "b"})
    space = LabelSpace.from_labels_file(path)
    message = re.escape(f"x.lst:3: label y.png: holds values [2, 9] not allowed by {path} (allowed: 0..1, 255)")
    with pytest.raises(DatasetError, match=message):
        space.encode(stored(0, 2, 9, 9), "x.lst:3: label y.png")
    with pytest.raises(DatasetError, match=r"expected an \(H, W\) uint8 label, got int32"):
        space.encode(np.zeros((2, 2), np.int32))
    with pytest.raises(DatasetError, match=r"got uint8 of shape \(2, 2, 3\)"):
        space.encode(np.zeros((2, 2, 3), np.uint8))


def test_the_space_is_immutable(tmp_path):
    space = LabelSpace.from_labels_file(labels_file(tmp_path, {"0": "a"}))
    with pytest.raises(ValueError, match="read-only"):
        space.lookup[0] = 5
    with pytest.raises(ValueError, match="read-only"):
        space.palette[0] = 5


TWO = {"0": "a", "1": "b"}


@pytest.mark.parametrize(
    ("content", "reduce_labels", "message"),
    [
        (b'{"0": "a",\n  "1": }', False, r"labels\.json:2:8: not valid JSON: Expecting value"),
        (b"\xff\xfe{}", False, r"labels\.json: not UTF-8 text"),
        (["a", "b"], False, r"labels\.json: expected a JSON object, got list"),
        ({}, False, r"labels\.json: expected a non-empty object of class id -> name"),
        ({"0": "a", "colors": []}, False, r"labels\.json: key 'colors' is not an integer 0\.\.255 \(a labels file is"),
        ({"0": "a", "01": "b"}, False, r"labels\.json: key '01' is not an integer"),
        (
            {"0": "a", "2": "b", "5": "c"},
            False,
            r"labels\.json: the 3 class ids must be 0\.\.2 without gaps; missing \[1\], beyond \[5\]",
        ),
        ({"0": "a", "1": 5}, False, r"labels\.json: key '1': the name must be a non-empty string, got 5"),
        ({"0": "a", "1": "a"}, False, r"labels\.json: class names must be unique; repeated: \['a'\]"),
        ({"id2label": []}, False, r"labels\.json: id2label: expected a non-empty object"),
        ({"id2label": {"0": "a", "x": "b"}}, False, r"labels\.json: id2label: key 'x' is not an integer 0\.\.255$"),
        ({"id2label": TWO, "colours": []}, False, r"labels\.json: unknown keys \['colours'\]"),
        ({"id2label": TWO, "colors": [[0, 0, 0]]}, False, r"labels\.json: colors must be a list of 2 .* got 1 entries"),
        ({"id2label": TWO, "colors": {"0": 1}}, False, r"labels\.json: colors must be a list of 2 .* got dict"),
        (
            {"id2label": TWO, "colors": [[0, 0, 0], [0, 300, 0]]},
            False,
            r"labels\.json: colors\[1\] must be \[r, g, b\]",
        ),
        ({"id2label": TWO, "colors": [[0, 0, 0], [0, 0]]}, False, r"labels\.json: colors\[1\] must be"),
        ({"id2label": TWO, "colors": [[0, 0, 0], [0, True, 0]]}, False, r"labels\.json: colors\[1\] must be"),
        (
            {"id2label": TWO, "ignore_index": 256},
            False,
            r"labels\.json: ignore_index must be an integer 0\.\.255, got 256",
        ),
        ({"id2label": TWO, "ignore_index": "255"}, False, r"labels\.json: ignore_index must be an integer"),
        ({"id2label": TWO, "ignore_index": True}, False, r"labels\.json: ignore_index must be an integer"),
        (
            {"id2label": TWO, "ignore_index": 1},
            False,
            r"labels\.json: ignore_index 1 is a class id \(classes are 0\.\.1\)",
        ),
        ({"id2label": TWO, "label_map": []}, False, r"labels\.json: label_map must be a non-empty object"),
        ({"id2label": TWO, "label_map": {"256": 0}}, False, r"labels\.json: label_map: key '256' is not an integer"),
        (
            {"id2label": TWO, "label_map": {"7": 2}},
            False,
            r"labels\.json: label_map: key '7' maps to 2, which is neither",
        ),
        ({"id2label": TWO, "label_map": {"7": None}}, False, r"labels\.json: label_map: key '7' maps to None"),
        (
            {"id2label": TWO, "label_map": {"7": 0}},
            True,
            r"labels\.json: label_map and reduce_labels cannot be combined",
        ),
        ({"id2label": TWO, "ignore_index": 2}, True, r"labels\.json: ignore_index 2 is in 1\.\.2, the stored values"),
    ],
)
def test_bad_labels_file_names_the_file_and_key(tmp_path, content, reduce_labels, message):
    path = labels_file(tmp_path, content)
    with pytest.raises(DatasetError, match=message) as caught:
        LabelSpace.from_labels_file(path, reduce_labels=reduce_labels)
    assert str(caught.value).startswith(str(path))


def test_missing_or_unreadable_labels_file(tmp_path):
    with pytest.raises(DatasetError, match=r"labels file not found: .*nowhere\.json"):
        LabelSpace.from_labels_file(tmp_path / "nowhere.json")
    with pytest.raises(DatasetError, match=r"cannot read labels file"):
        LabelSpace.from_labels_file(tmp_path)
