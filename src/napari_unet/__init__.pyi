from .config import Labelling, ModelConfig, Normalization, PredictConfig, SegmentConfig, TrainConfig
from .inference.chunk_labels import label_lazy
from .inference.chunked import predict_lazy, segment_lazy
from .inference.reading import estimate_diameter
from .inference.labels import probabilities_to_labels
from .inference.segment import iter_segment, predict_probabilities, predict_tiles, segment
from .inference.uncertainty import uncertainty
from .metrics import evaluate
from .models import ModelFileError, SegmentationModel, create_model, list_models, load_model, save_model
from .interop.bioimageio import export_bioimageio
from .training.loop import finetune, iter_finetune

__all__ = [
    "Labelling",
    "ModelConfig",
    "ModelFileError",
    "Normalization",
    "PredictConfig",
    "SegmentConfig",
    "SegmentationModel",
    "TrainConfig",
    "create_model",
    "estimate_diameter",
    "evaluate",
    "export_bioimageio",
    "finetune",
    "iter_finetune",
    "iter_segment",
    "label_lazy",
    "list_models",
    "load_model",
    "predict_lazy",
    "predict_probabilities",
    "predict_tiles",
    "probabilities_to_labels",
    "save_model",
    "segment",
    "segment_lazy",
    "uncertainty",
]
