"""The checks transformers' common model tests make, for DDRNet, with a `DDRNetModelTester` in transformers' style."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers.modeling_utils import PreTrainedModel

from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation, DDRNetModel


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
