"""Change detection: models (`CDModel`: ChangerEx-R18 style, the mid-size `siamdiff` and a tiny variant),
training on generated pairs with bi-temporal augmentations, tiled inference, CVA + Otsu baseline and metrics from
one confusion matrix per set (naive and drifted pair sets: `changeanywhere.derived`).

    from changeanywhere.cd import ChangeFolderDataset, Normalize, load_cd_model, predict
    model = load_cd_model("checkpoints/cd-changeanywhere-dubai")   # or a Hub repo id
    mask = predict(model, before_rgb, after_rgb)                     # HxW bool
    data = ChangeFolderDataset("OUT", transforms=Normalize())        # a generated folder, torchgeo's samples
"""

from ..runtime import DEFAULT_CD_MODEL
from .cva import cva_magnitude, cva_predict
from .data import CDItem, CDTrainData, ChangeFolderDataset, Normalize, find_cd_pairs, read_cd_item
from .inference import FolderResult, error_overlay, evaluate_folder, model_predictor, predict, predict_proba
from .metrics import METRIC_KEYS, BinaryConfusion, all_change_f1, binary_metrics
from .models import ARCHS, CDModel, build_cd_model, load_cd_model
from .tiling import sliding_window, window_starts

__all__ = [
    "ARCHS",
    "DEFAULT_CD_MODEL",
    "METRIC_KEYS",
    "BinaryConfusion",
    "CDItem",
    "CDModel",
    "CDTrainData",
    "ChangeFolderDataset",
    "Normalize",
    "FolderResult",
    "all_change_f1",
    "binary_metrics",
    "build_cd_model",
    "cva_magnitude",
    "cva_predict",
    "error_overlay",
    "evaluate_folder",
    "find_cd_pairs",
    "load_cd_model",
    "model_predictor",
    "predict",
    "predict_proba",
    "read_cd_item",
    "sliding_window",
    "window_starts",
]
