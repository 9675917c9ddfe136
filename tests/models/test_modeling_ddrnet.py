from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForSemanticSegmentation, pipeline

from modeling_ddrnet import (
    VARIANTS,
    DDRNetConfig,
    DDRNetConfigError,
    DDRNetForSemanticSegmentation,
    DDRNetImageProcessor,
    DDRNetModel,
)
from modeling_ddrnet.loss_ddrnet import OhemCrossEntropyLoss

# Parameter counts of the original networks (millions), with and without the auxiliary head.
ORIGINAL_PARAMETERS = {
    "ddrnet-23-slim": (5.73, 5.70),
    "ddrnet-23": (20.30, 20.15),
    "ddrnet-39": (32.66, 32.36),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_parameter_counts_match_the_original(variant):
    for use_aux, expected in zip((True, False), ORIGINAL_PARAMETERS[variant], strict=True):
        model = DDRNetForSemanticSegmentation(DDRNetConfig.from_variant(variant, use_auxiliary_head=use_aux))
        count = sum(p.numel() for p in model.parameters()) / 1e6
        assert abs(count - expected) / expected < 0.005, (variant, use_aux, count)


def test_unknown_variant_and_invalid_values_list_the_choices():
    with pytest.raises(ValueError, match="ddrnet-23-slim, ddrnet-23, ddrnet-39"):
        DDRNetConfig.from_variant("ddrnet-50")
    with pytest.raises(ValueError, match="context_channel_multipliers"):
        DDRNetConfig(context_channel_multipliers=[4, 16])
    with pytest.raises(ValueError, match="detail_depths"):
        DDRNetConfig(detail_depths=[2])
    with pytest.raises(ValueError, match="cityscapes"):
        DDRNetConfig(class_weights="imagenet")
    assert DDRNetConfig(class_weights="cityscapes").class_weights[0] == pytest.approx(0.8373)


def test_default_labels_are_cityscapes():
    config = DDRNetConfig()
    assert config.num_labels == 19
    assert config.id2label[0] == "road" and config.id2label[18] == "bicycle"
    assert config.label2id["car"] == 13


@pytest.mark.parametrize("height,width", [(64, 128), (250, 370), (33, 47)])
def test_forward_shapes_for_any_input_size(tiny_model, height, width):
    tiny_model.eval()
    with torch.no_grad():
        outputs = tiny_model(torch.randn(2, 3, height, width), output_hidden_states=True)
    expected = (2, 19, -(-height // 8), -(-width // 8))
    assert outputs.logits.shape == expected
    assert outputs.auxiliary_logits is None  # the auxiliary head runs in training only
    # stem, split, then context and detail of each of the two bilateral stages
    assert len(outputs.hidden_states) == 6


def test_training_step_gives_finite_loss_and_gradients(tiny_model):
    tiny_model.train()
    labels = torch.randint(0, 19, (2, 250, 370))
    labels[:, :10] = 255
    outputs = tiny_model(torch.randn(2, 3, 250, 370), labels=labels)
    assert outputs.auxiliary_logits.shape == outputs.logits.shape == (2, 19, 32, 47)
    assert torch.isfinite(outputs.loss)
    outputs.loss.backward()
    grads = [p.grad for p in tiny_model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_total_loss_is_main_plus_weighted_auxiliary(tiny_model):
    tiny_model.train()
    torch.manual_seed(1)
    pixel_values, labels = torch.randn(2, 3, 64, 64), torch.randint(0, 19, (2, 64, 64))
    tiny_model.eval()  # freeze batch-norm statistics so that both passes see the same network
    for module in tiny_model.modules():
        module.training = module is tiny_model
    outputs = tiny_model(pixel_values, labels=labels)
    main = tiny_model.compute_loss(outputs.logits, labels)
    aux = tiny_model.compute_loss(outputs.auxiliary_logits, labels)
    torch.testing.assert_close(outputs.loss, main + 0.4 * aux)
    torch.testing.assert_close(outputs.main_loss, main)
    torch.testing.assert_close(outputs.auxiliary_loss, aux)


def reference_ohem(logits, labels, threshold, min_kept, ignore_index, weight):
    """The original algorithm, written with a full sort."""
    pixel_losses = F.cross_entropy(logits, labels, weight=weight, ignore_index=ignore_index, reduction="none")
    pixel_losses = pixel_losses.flatten()
    mask = labels.flatten() != ignore_index
    probs = F.softmax(logits, dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    probs = probs.gather(1, labels.flatten().clamp(max=logits.shape[1] - 1)[:, None]).squeeze(1)[mask]
    probs, order = probs.sort()
    min_value = probs[min(min_kept, probs.numel() - 1)]
    keep_threshold = max(min_value.item(), threshold)
    kept = pixel_losses[mask][order][probs < keep_threshold]
    return kept.mean()


@pytest.mark.parametrize("min_kept", [10, 500, 5000])
@pytest.mark.parametrize("threshold", [0.05, 0.9])
def test_ohem_matches_the_sorting_reference(min_kept, threshold):
    torch.manual_seed(min_kept)
    logits = torch.randn(2, 19, 24, 32) * 3
    labels = torch.randint(0, 19, (2, 24, 32))
    labels[0, :5] = 255
    weight = torch.rand(19) + 0.5
    loss = OhemCrossEntropyLoss(threshold, min_kept, 255, weight.tolist())(logits, labels)
    expected = reference_ohem(logits, labels, threshold, min_kept, 255, weight)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_ohem_with_every_pixel_ignored_is_zero():
    logits = torch.randn(1, 19, 8, 8, requires_grad=True)
    loss = OhemCrossEntropyLoss(0.9, 100)(logits, torch.full((1, 8, 8), 255))
    assert loss.item() == 0.0
    loss.backward()


def test_loaded_model_computes_the_loss_with_its_class_weights(tmp_path):
    # A threshold of 1 keeps every pixel, so the OHEM loss is the mean of the weighted pixel losses.
    model = DDRNetForSemanticSegmentation(tiny_config(class_weights="cityscapes", ohem_threshold=1.0)).eval()
    model.save_pretrained(tmp_path)
    loaded = DDRNetForSemanticSegmentation.from_pretrained(tmp_path).eval()
    overridden = DDRNetForSemanticSegmentation.from_pretrained(tmp_path, class_weights=[2.0] * 19).eval()
    pixel_values, labels = torch.randn(1, 3, 32, 32), torch.randint(0, 19, (1, 32, 32))
    with torch.no_grad():
        expected = model(pixel_values, labels=labels).loss
        torch.testing.assert_close(loaded(pixel_values, labels=labels).loss, expected)
        logits = loaded(pixel_values).logits
        upsampled = F.interpolate(logits, size=(32, 32), mode="bilinear", align_corners=False)
        plain = F.cross_entropy(upsampled, labels, reduction="none").mean()
        torch.testing.assert_close(overridden(pixel_values, labels=labels).loss, 2 * plain)


def test_save_and_load_round_trip_is_bitwise(tmp_path, tiny_model):
    tiny_model.eval()
    pixel_values = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        before = tiny_model(pixel_values).logits
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    loaded = DDRNetForSemanticSegmentation.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        after = loaded(pixel_values).logits
    assert torch.equal(before, after)


def test_auto_classes_and_pipeline_work_offline(tmp_path, tiny_model):
    from PIL import Image

    tiny_model.save_pretrained(tmp_path)
    DDRNetImageProcessor().save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), DDRNetConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path), DDRNetModel)
    assert isinstance(AutoModelForSemanticSegmentation.from_pretrained(tmp_path), DDRNetForSemanticSegmentation)
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), DDRNetImageProcessor)
    segmenter = pipeline("image-segmentation", model=str(tmp_path))
    results = segmenter(Image.new("RGB", (100, 60), (128, 64, 128)))
    assert results and all(r["mask"].size == (100, 60) for r in results)
    assert {r["label"] for r in results} <= set(DDRNetConfig().id2label.values())


def test_image_processor_normalizes_and_post_processes(tiny_model):
    import numpy as np

    processor = DDRNetImageProcessor()
    image = np.full((40, 60, 3), 255, dtype=np.uint8)
    label = np.full((40, 60), 7, dtype=np.uint8)
    batch = processor(image, segmentation_maps=label, return_tensors="pt")
    assert batch["pixel_values"].shape == (1, 3, 40, 60)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(batch["pixel_values"][0, :, 0, 0], expected)
    assert batch["labels"].dtype == torch.int64 and batch["labels"].shape == (1, 40, 60)

    tiny_model.eval()
    with torch.no_grad():
        outputs = tiny_model(batch["pixel_values"])
    maps = processor.post_process_semantic_segmentation(outputs, target_sizes=[(80, 120)])
    assert maps[0].shape == (80, 120) and maps[0].max() < 19
    assert processor.post_process_semantic_segmentation(outputs)[0].shape == (5, 8)
    with pytest.raises(ValueError, match="one per image"):
        processor.post_process_semantic_segmentation(outputs, target_sizes=[(1, 1), (2, 2)])


def test_resize_option_resizes_images_and_labels():
    import numpy as np

    processor = DDRNetImageProcessor(do_resize=True, size={"height": 32, "width": 64})
    batch = processor(np.zeros((40, 60, 3), np.uint8), segmentation_maps=np.ones((40, 60), np.uint8))
    assert batch["pixel_values"][0].shape == (3, 32, 64)
    assert batch["labels"][0].shape == (32, 64) and set(np.unique(batch["labels"][0])) == {1}


def test_tiny_config_is_a_valid_variant_shape():
    config = tiny_config()
    assert config.context_channel_multipliers == [4, 8]


def test_fine_tuning_a_trained_checkpoint_to_another_number_of_labels(tmp_path):
    trained = DDRNetForSemanticSegmentation(tiny_config(class_weights="cityscapes"))
    trained.save_pretrained(tmp_path)
    model = DDRNetForSemanticSegmentation.from_pretrained(tmp_path, num_labels=5, ignore_mismatched_sizes=True)
    assert model.config.num_labels == 5 and model.config.class_weights is None
    assert model.config.id2label == {i: f"LABEL_{i}" for i in range(5)}
    assert model.decode_head.conv2.out_channels == 5
    assert torch.equal(model.ddrnet.stem.conv1.weight, trained.ddrnet.stem.conv1.weight)
    loss = model.train()(torch.randn(2, 3, 32, 32), labels=torch.randint(0, 5, (2, 32, 32))).loss
    assert torch.isfinite(loss)
    names = {i: name for i, name in enumerate("abcde")}
    renamed = DDRNetForSemanticSegmentation.from_pretrained(tmp_path, id2label=names, ignore_mismatched_sizes=True)
    assert renamed.config.id2label == names and renamed.config.num_labels == 5


@pytest.mark.parametrize(
    "field,value",
    [
        ("num_labels", 0),
        ("batch_norm_eps", -1.0),
        ("auxiliary_loss_weight", float("nan")),
        ("context_depths", []),
        ("class_weights", [float("nan")] * 19),
    ],
)
def test_invalid_config_values_are_refused_naming_the_field(field, value):
    with pytest.raises(DDRNetConfigError, match=field):
        DDRNetConfig(**{field: value})


def test_model_package_imports_and_runs_without_the_training_dependencies():
    """`modeling_ddrnet` needs only torch, transformers, safetensors, numpy and pillow."""
    import subprocess
    import sys

    code = """
import sys, tempfile
for name in ("accelerate", "datasets", "evaluate", "tensorboard", "cityscapesscripts", "ddrnet_toolkit",
             "dataset_builders"):
    sys.modules[name] = None  # any import of these now fails
import torch
from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation, DDRNetImageProcessor
model = DDRNetForSemanticSegmentation(DDRNetConfig(base_channels=8, spp_channels=16, head_channels=16)).eval()
inputs = DDRNetImageProcessor()(torch.randint(0, 256, (1, 3, 32, 48), dtype=torch.uint8))
with torch.no_grad():
    logits = model(**inputs).logits
folder = tempfile.mkdtemp()
model.save_pretrained(folder)
assert torch.equal(DDRNetForSemanticSegmentation.from_pretrained(folder).eval()(**inputs).logits, logits)
print(tuple(logits.shape))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("(1, 19, 4, 6)")
