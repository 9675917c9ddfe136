from __future__ import annotations

import copy
import doctest
import re

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from original_fixture import fixture_input, fixture_state_dict, layouts, load_fixture
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForSemanticSegmentation, pipeline
from transformers.modeling_utils import PreTrainedModel

from modeling_ddrnet import (
    VARIANTS,
    DDRNetConfig,
    DDRNetConfigError,
    DDRNetForSemanticSegmentation,
    DDRNetImageProcessor,
    DDRNetModel,
    configuration_ddrnet,
    image_processing_ddrnet,
    modeling_ddrnet,
)
from modeling_ddrnet.convert_original import convert_state_dict
from modeling_ddrnet.loss_ddrnet import (
    DiceCrossEntropyEdgeLoss,
    OhemCrossEntropyLoss,
    WeightedCrossEntropyLoss,
    label_boundaries,
)

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


def reference_boundaries(labels, kernel_size):
    """Pixel by pixel: another value within the square around the pixel, the labels extended by replication."""
    batch, height, width = labels.shape
    radius = kernel_size // 2
    boundary = torch.zeros(batch, height, width, dtype=torch.bool)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                rows = slice(max(0, y - radius), y + radius + 1)
                cols = slice(max(0, x - radius), x + radius + 1)
                boundary[b, y, x] = bool((labels[b, rows, cols] != labels[b, y, x]).any())
    return boundary


def reference_dice_ce_edge(logits, labels, kernel_size, weight, ignore_index=255):
    """0.5 * CE + 0.5 * CE on boundary pixels + Dice, each written out from its formula in float64."""
    logits = logits.detach().double()
    num_labels = logits.shape[1]
    weight = torch.ones(num_labels, dtype=torch.float64) if weight is None else weight.double()
    log_p = logits.log_softmax(dim=1)
    valid = labels != ignore_index
    boundary = reference_boundaries(labels, kernel_size) & valid
    sums = {"all": [0.0, 0.0], "edge": [0.0, 0.0]}
    intersection, predicted, present = torch.zeros(num_labels), torch.zeros(num_labels), torch.zeros(num_labels)
    for b, y, x in valid.nonzero().tolist():
        c = int(labels[b, y, x])
        term, w = -float(log_p[b, c, y, x]) * float(weight[c]), float(weight[c])
        for key, counts in (("all", True), ("edge", bool(boundary[b, y, x]))):
            if counts:
                sums[key][0] += term
                sums[key][1] += w
        p = log_p[b, :, y, x].exp()
        predicted += p
        intersection[c] += p[c]
        present[c] += 1
    dice = (1 - (2 * intersection + 1) / (predicted + present + 1)).mean()
    return 0.5 * sums["all"][0] / sums["all"][1] + 0.5 * sums["edge"][0] / sums["edge"][1] + float(dice)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_label_boundaries_match_the_pixel_by_pixel_definition(kernel_size):
    torch.manual_seed(kernel_size)
    labels = torch.randint(0, 3, (2, 9, 11))
    labels[0, 3:6, 2:8] = 255
    assert torch.equal(label_boundaries(labels, kernel_size), reference_boundaries(labels, kernel_size))
    assert not label_boundaries(torch.full((1, 6, 6), 4), kernel_size).any()  # one value: no boundary, border none


@pytest.mark.parametrize("with_weights", [False, True])
def test_dice_ce_edge_loss_matches_its_formula(with_weights):
    torch.manual_seed(7)
    logits = torch.randn(2, 5, 12, 10) * 2
    labels = torch.randint(0, 4, (2, 12, 10))  # class 4 absent: its Dice term still counts
    labels[1, :4] = 255
    weight = torch.rand(5) + 0.5 if with_weights else None
    loss = DiceCrossEntropyEdgeLoss(255, None if weight is None else weight.tolist(), 3)(logits, labels)
    assert loss.item() == pytest.approx(reference_dice_ce_edge(logits, labels, 3, weight), rel=1e-5)


def test_dice_ce_edge_loss_ignores_ignored_pixels_and_survives_all_ignored():
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 8, 8, requires_grad=True)
    labels = torch.randint(0, 3, (1, 8, 8))
    labels[0, :, :3] = 255
    changed = logits.detach().clone()
    changed[..., :3] = torch.randn(1, 3, 8, 3) * 10
    loss = DiceCrossEntropyEdgeLoss(edge_kernel_size=3)
    assert loss(logits, labels).item() == pytest.approx(loss(changed, labels).item(), rel=1e-6)
    everything_ignored = loss(logits, torch.full((1, 8, 8), 255))
    assert torch.isfinite(everything_ignored)
    everything_ignored.backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(
    "loss_type,expected_class",
    [
        ("ohem", OhemCrossEntropyLoss),
        ("cross_entropy", WeightedCrossEntropyLoss),
        ("dice_ce_edge", DiceCrossEntropyEdgeLoss),
    ],
)
def test_loss_type_picks_the_loss_and_the_model_adds_the_auxiliary_term(loss_type, expected_class):
    model = DDRNetForSemanticSegmentation(tiny_config(loss_type=loss_type, edge_kernel_size=3))
    assert isinstance(model.loss_fct, expected_class)
    torch.manual_seed(3)
    pixel_values, labels = torch.randn(2, 3, 32, 32), torch.randint(0, 19, (2, 32, 32))
    model.eval()
    for module in model.modules():
        module.training = module is model
    outputs = model(pixel_values, labels=labels)
    if loss_type == "dice_ce_edge":
        upsample = lambda x: F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)  # noqa: E731
        main = reference_dice_ce_edge(upsample(outputs.logits), labels, 3, None)
        aux = reference_dice_ce_edge(upsample(outputs.auxiliary_logits), labels, 3, None)
        assert outputs.loss.item() == pytest.approx(main + 0.4 * aux, rel=1e-5)


def test_older_configs_use_ohem_switch_maps_onto_loss_type():
    assert DDRNetConfig(use_ohem=False).loss_type == "cross_entropy"
    assert DDRNetConfig(use_ohem=True).loss_type == "ohem"
    assert "use_ohem" not in DDRNetConfig(use_ohem=False).to_dict()
    for bad, message in (
        ({"loss_type": "focal"}, "loss_type='focal'; expected one of ohem, cross_entropy, dice_ce_edge"),
        ({"edge_kernel_size": 4}, "edge_kernel_size=4; expected an odd integer in 3..63"),
        ({"use_ohem": "yes"}, "use_ohem='yes'; expected true or false"),
    ):
        with pytest.raises(DDRNetConfigError, match=re.escape(message)):
            DDRNetConfig(**bad)


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


class DDRNetModelTester:
    """Builds a tiny DDRNet config and inputs, and checks output shapes (see transformers' `*ModelTester`s)."""

    def __init__(
        self,
        batch_size: int = 2,
        num_channels: int = 3,
        image_size: tuple[int, int] = (64, 96),
        num_labels: int = 5,
        base_channels: int = 8,
        spp_channels: int = 16,
        head_channels: int = 16,
    ):
        self.batch_size = batch_size
        self.num_channels = num_channels
        self.image_size = image_size
        self.num_labels = num_labels
        self.base_channels = base_channels
        self.spp_channels = spp_channels
        self.head_channels = head_channels

    def get_config(self) -> DDRNetConfig:
        return DDRNetConfig(
            base_channels=self.base_channels,
            spp_channels=self.spp_channels,
            head_channels=self.head_channels,
            num_channels=self.num_channels,
            num_labels=self.num_labels,
            ohem_min_kept=100,
        )

    def prepare_config_and_inputs(self) -> tuple[DDRNetConfig, torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        height, width = self.image_size
        pixel_values = torch.randn(self.batch_size, self.num_channels, height, width, generator=generator)
        labels = torch.randint(0, self.num_labels, (self.batch_size, height, width), generator=generator)
        return self.get_config(), pixel_values, labels

    def prepare_config_and_inputs_for_common(self) -> tuple[DDRNetConfig, dict[str, torch.Tensor]]:
        config, pixel_values, _ = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}

    @property
    def feature_size(self) -> tuple[int, int]:
        height, width = self.image_size
        return -(-height // 8), -(-width // 8)

    def create_and_check_model(self, config, pixel_values, labels) -> None:
        model = DDRNetModel(config).eval()
        with torch.no_grad():
            outputs = model(pixel_values)
        expected = (self.batch_size, 4 * self.base_channels, *self.feature_size)
        assert outputs.last_hidden_state.shape == expected
        assert outputs.auxiliary_hidden_state.shape == (self.batch_size, 2 * self.base_channels, *self.feature_size)

    def create_and_check_for_semantic_segmentation(self, config, pixel_values, labels) -> None:
        model = DDRNetForSemanticSegmentation(config).eval()
        with torch.no_grad():
            outputs = model(pixel_values, labels=labels)
        assert outputs.logits.shape == (self.batch_size, self.num_labels, *self.feature_size)
        assert outputs.loss.ndim == 0 and torch.isfinite(outputs.loss)


@pytest.fixture
def tester() -> DDRNetModelTester:
    return DDRNetModelTester()


def test_model(tester):
    tester.create_and_check_model(*tester.prepare_config_and_inputs())


def test_for_semantic_segmentation(tester):
    tester.create_and_check_for_semantic_segmentation(*tester.prepare_config_and_inputs())


@pytest.mark.parametrize("model_class", [DDRNetModel, DDRNetForSemanticSegmentation])
def test_model_outputs_equivalence(tester, model_class):
    """`return_dict=False` gives exactly the dict's fields, in order, without the unset ones."""
    config, pixel_values, labels = tester.prepare_config_and_inputs()
    torch.manual_seed(0)
    model = model_class(config).train()
    inputs = {"pixel_values": pixel_values, "output_hidden_states": True}
    if model_class is DDRNetForSemanticSegmentation:
        inputs["labels"] = labels
    torch.manual_seed(1)
    as_dict = model(**inputs, return_dict=True)
    torch.manual_seed(1)
    as_tuple = model(**inputs, return_dict=False)
    expected = [value for value in as_dict.values() if value is not None]
    assert len(as_tuple) == len(expected)
    for actual, wanted in zip(as_tuple, expected, strict=True):
        if isinstance(wanted, tuple):
            assert all(torch.equal(a, w) for a, w in zip(actual, wanted, strict=True))
        else:
            assert torch.equal(actual, wanted)
    if model_class is DDRNetForSemanticSegmentation:  # loss, logits, auxiliary logits, hidden states, two losses
        assert len(as_tuple) == 6


def test_hidden_states_count_and_shapes(tester):
    config, inputs = tester.prepare_config_and_inputs_for_common()
    model = DDRNetModel(config).eval()
    with torch.no_grad():
        hidden_states = model(**inputs, output_hidden_states=True).hidden_states
    num_stages = len(config.context_channel_multipliers)
    assert len(hidden_states) == 2 + 2 * num_stages
    height, width = tester.image_size
    base = config.base_channels
    assert hidden_states[0].shape == (tester.batch_size, base, height // 4, width // 4)  # stem + layer1
    assert hidden_states[1].shape == (tester.batch_size, 2 * base, *tester.feature_size)  # branches split
    for stage, multiplier in enumerate(config.context_channel_multipliers):
        context, detail = hidden_states[2 + 2 * stage], hidden_states[3 + 2 * stage]
        stride = {4: 16, 8: 32}[multiplier]
        assert context.shape == (tester.batch_size, base * multiplier, height // stride, width // stride)
        assert detail.shape == (tester.batch_size, 2 * base, *tester.feature_size)
    config.output_hidden_states = True  # the config's default applies when the argument is left out
    with torch.no_grad():
        assert len(DDRNetModel(config).eval()(**inputs).hidden_states) == 2 + 2 * num_stages


def test_save_load(tester, tmp_path):
    config, inputs = tester.prepare_config_and_inputs_for_common()
    model = DDRNetForSemanticSegmentation(config).eval()
    model.save_pretrained(tmp_path)
    loaded = DDRNetForSemanticSegmentation.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)
    saved, original = loaded.config.to_dict(), model.config.to_dict()
    saved.pop("_name_or_path"), original.pop("_name_or_path")
    assert saved == original


def test_load_base_model_from_head_checkpoint_and_back(tester, tmp_path):
    config, inputs = tester.prepare_config_and_inputs_for_common()
    head_model = DDRNetForSemanticSegmentation(config).eval()
    head_model.save_pretrained(tmp_path / "head")
    base, info = DDRNetModel.from_pretrained(tmp_path / "head", output_loading_info=True)
    assert not info["missing_keys"]
    for name, tensor in base.state_dict().items():
        assert torch.equal(tensor, head_model.ddrnet.state_dict()[name]), name

    base.save_pretrained(tmp_path / "base")
    with_heads, info = DDRNetForSemanticSegmentation.from_pretrained(tmp_path / "base", output_loading_info=True)
    assert info["missing_keys"] and all(key.startswith(("decode_head.", "aux_head.")) for key in info["missing_keys"])
    for name, tensor in with_heads.ddrnet.state_dict().items():
        assert torch.equal(tensor, base.state_dict()[name]), name
    with torch.no_grad():
        assert torch.isfinite(with_heads.eval()(**inputs).logits).all()


def test_initialization_is_deterministic_and_follows_init_weights(tester):
    config = tester.get_config()
    torch.manual_seed(0)
    first = DDRNetForSemanticSegmentation(config)
    torch.manual_seed(0)
    second = DDRNetForSemanticSegmentation(config)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for module in first.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
        elif isinstance(module, torch.nn.Conv2d) and module.bias is not None:
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
    assert isinstance(first, PreTrainedModel)


def test_batching_equivalence(tester):
    """Each image's output is the same alone and in a batch (eval mode: BatchNorm uses running statistics)."""
    config, pixel_values, _ = tester.prepare_config_and_inputs()
    model = DDRNetForSemanticSegmentation(config).eval()
    with torch.no_grad():
        batched = model(pixel_values).logits
        single = torch.cat([model(image[None]).logits for image in pixel_values])
    # Convolution kernels may pick other algorithms per batch size: equal up to float rounding.
    torch.testing.assert_close(batched, single, atol=1e-4 * batched.abs().max().item(), rtol=1e-4)


def test_training_step_updates_every_parameter(tester):
    config, pixel_values, labels = tester.prepare_config_and_inputs()
    model = DDRNetForSemanticSegmentation(config).train()
    before = copy.deepcopy(model.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(pixel_values, labels=labels).loss.backward()
    optimizer.step()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, before[name])]
    assert not unchanged


def test_torch_compile_fullgraph_has_no_graph_break(tester):
    config, inputs = tester.prepare_config_and_inputs_for_common()
    model = DDRNetForSemanticSegmentation(config).eval()
    # fullgraph=True raises on any graph break; the eager backend checks tracing without paying for code generation.
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(**inputs).logits, model(**inputs).logits)


def test_torch_export(tester):
    config, inputs = tester.prepare_config_and_inputs_for_common()
    model = DDRNetForSemanticSegmentation(config).eval()
    exported = torch.export.export(model, args=(), kwargs=inputs)
    with torch.no_grad():
        expected = model(**inputs).logits
        actual = exported.module()(**inputs).logits
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_converted_model_computes_what_the_original_computed(variant):
    facts = load_fixture()[variant]
    original = fixture_state_dict(facts["segmentation_keys"])
    expected = torch.tensor(facts["logits"]).view(facts["logits_shape"])
    expected_aux = torch.tensor(facts["auxiliary_logits"]).view(facts["logits_shape"])
    for name, checkpoint in layouts(original).items():
        model, report = convert_state_dict(checkpoint, DDRNetConfig.from_variant(variant))
        assert len(report.loaded) == len(original), name
        assert report.initialized == [], name
        model.eval()
        with torch.no_grad():
            features = model.ddrnet(fixture_input())
            logits = model.decode_head(features.last_hidden_state)
            aux_logits = model.aux_head(features.auxiliary_hidden_state)
        scale = expected.abs().max()
        torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5 * scale, msg=name)
        torch.testing.assert_close(aux_logits, expected_aux, rtol=1e-4, atol=1e-5 * scale, msg=name)


class MarkdownDocTestParser(doctest.DocTestParser):
    """Doctests inside transformers-style Markdown code fences: the closing fence is not expected output."""

    def parse(self, string: str, name: str = "<string>"):
        return super().parse(re.sub(r"^\s*```.*$", "", string, flags=re.MULTILINE), name)


@pytest.mark.parametrize(
    "module", [configuration_ddrnet, modeling_ddrnet, image_processing_ddrnet], ids=lambda m: m.__name__
)
def test_docstring_examples_run(module):
    finder = doctest.DocTestFinder(parser=MarkdownDocTestParser())
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = [test for test in finder.find(module) if test.examples]
    assert examples, f"{module.__name__} has no runnable example"
    for test in examples:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
