"""Model folders: saved atomically as a whole, never over a folder the save did not write."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_config

from ddrnet_toolkit import model_folder
from ddrnet_toolkit.errors import UserInputError
from ddrnet_toolkit.model_folder import save_pretrained_atomically
from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor


@pytest.mark.parametrize("crash_at", ["save_pretrained", "symlink", "replace"])
def test_a_crash_while_saving_leaves_the_previous_model_whole(tmp_path, monkeypatch, crash_at):
    """Weights and eval_results.json always come from the same save, whenever the save is interrupted."""
    torch.manual_seed(0)
    old = DDRNetForSemanticSegmentation(tiny_config()).eval()
    processor = DDRNetImageProcessor()
    target = tmp_path / "best_model"
    save_pretrained_atomically(old, processor, target, {"eval_results.json": {"mean_iou": 0.1}})
    new = DDRNetForSemanticSegmentation(tiny_config()).eval()
    with torch.no_grad():
        new.decode_head.conv2.bias.add_(1.0)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    owner = new if crash_at == "save_pretrained" else model_folder.os
    monkeypatch.setattr(owner, crash_at, crash)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained_atomically(new, processor, target, {"eval_results.json": {"mean_iou": 0.2}})
    monkeypatch.undo()
    loaded = DDRNetForSemanticSegmentation.from_pretrained(target).eval()
    pixel_values = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(pixel_values).logits, old(pixel_values).logits)
    assert json.loads((target / "eval_results.json").read_text()) == {"mean_iou": 0.1}

    # The next save completes and removes the version the interrupted one left behind.
    save_pretrained_atomically(new, processor, target, {"eval_results.json": {"mean_iou": 0.2}})
    assert json.loads((target / "eval_results.json").read_text()) == {"mean_iou": 0.2}
    assert [p.name for p in (tmp_path / ".model_versions").iterdir()] == [target.resolve().name]


def test_atomic_save_never_touches_folders_it_did_not_write(tmp_path):
    user_folder = tmp_path / "best_model.tmp"  # a user's folder with the old staging name
    user_folder.mkdir()
    (user_folder / "notes.txt").write_text("mine")
    real_folder = tmp_path / "best_model"
    real_folder.mkdir()
    model, processor = DDRNetForSemanticSegmentation(tiny_config()), DDRNetImageProcessor()
    with pytest.raises(UserInputError, match="was not written by this project"):
        save_pretrained_atomically(model, processor, real_folder, {})
    save_pretrained_atomically(model, processor, tmp_path / "last_model", {})
    assert (user_folder / "notes.txt").read_text() == "mine" and real_folder.is_dir()
