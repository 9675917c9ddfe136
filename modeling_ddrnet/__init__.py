"""DDRNet (Deep Dual-resolution Networks) as a transformers model: configuration, modeling, image processing,
BatchNorm folding for inference and the converter of the original checkpoints. It needs only torch, transformers,
safetensors, numpy and pillow.

Importing this package registers DDRNet with the Auto classes, so that `AutoConfig`, `AutoModel`,
`AutoModelForSemanticSegmentation`, `AutoImageProcessor` and `pipeline("image-segmentation")` load saved DDRNet
models without `trust_remote_code`.
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForSemanticSegmentation,
)

from .configuration_ddrnet import (
    CITYSCAPES_CLASS_NAMES,
    CITYSCAPES_CLASS_WEIGHTS,
    VARIANTS,
    DDRNetConfig,
    DDRNetConfigError,
)
from .image_processing_ddrnet import DDRNetImageProcessor
from .modeling_ddrnet import (
    DDRNetForSemanticSegmentation,
    DDRNetModel,
    DDRNetModelOutput,
    DDRNetPreTrainedModel,
    DDRNetSemanticSegmenterOutput,
)

AutoConfig.register(DDRNetConfig.model_type, DDRNetConfig, exist_ok=True)
AutoModel.register(DDRNetConfig, DDRNetModel, exist_ok=True)
AutoModelForSemanticSegmentation.register(DDRNetConfig, DDRNetForSemanticSegmentation, exist_ok=True)
AutoImageProcessor.register(DDRNetConfig, slow_image_processor_class=DDRNetImageProcessor, exist_ok=True)

__all__ = [
    "CITYSCAPES_CLASS_NAMES",
    "CITYSCAPES_CLASS_WEIGHTS",
    "VARIANTS",
    "DDRNetConfig",
    "DDRNetConfigError",
    "DDRNetForSemanticSegmentation",
    "DDRNetImageProcessor",
    "DDRNetModel",
    "DDRNetModelOutput",
    "DDRNetPreTrainedModel",
    "DDRNetSemanticSegmenterOutput",
]
