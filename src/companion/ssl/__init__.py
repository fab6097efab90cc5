"""The shared self-supervised learning toolkit: two-view augmentations (CPU and batched on the device),
encoders, projector/predictor heads, SimSiam / BYOL / MoCo v2 / SimCLR, EMA teachers, kNN and linear
evaluation, and one ``pretrain`` entry point on top of :func:`companion.train.fit`.

Book sections: *Tobias* "Background swap inside MoCo v2", *S3L*, *SSQL*, *US3L*, *Efficient SSL*,
and the ViT-with-2040-images chapter.
"""

from . import augment, data, ema, encoders, evaluate, heads, losses, methods
from .augment import GPUAugment, MultiCrop, TwoViews, ssl_augment
from .data import TwoViewDataset
from .ema import cosine_momentum, ema_update_
from .encoders import TinyCNN, build_encoder, resnet, vit_encoder
from .evaluate import embedding_std, extract_features, knn_accuracy, knn_predict, linear_probe
from .heads import mlp, predictor, projector
from .losses import byol_loss, info_nce, negative_cosine, nt_xent, simsiam_loss
from .methods import BYOL, METHODS, SimCLR, SimSiam, MoCo
from . import pretrain  # a callable module: ssl.pretrain(...) runs pretrain.pretrain(...)
from .pretrain import PretrainConfig
from . import bench  # the shared small-scale benchmark every SSL chapter's quick and study presets use
from .bench import BenchData, PairViews, bench_config, bench_data, bench_encoder, bench_evaluate, bench_views
from . import estimate
from .experiment import run_hours

__all__ = [
    "augment", "data", "ema", "pretrain", "encoders", "evaluate", "heads", "losses", "methods",
    "GPUAugment", "MultiCrop", "TwoViews", "ssl_augment", "TwoViewDataset", "cosine_momentum", "ema_update_",
    "TinyCNN", "build_encoder", "resnet", "vit_encoder", "embedding_std", "extract_features", "knn_accuracy",
    "knn_predict", "linear_probe", "mlp", "predictor", "projector", "byol_loss", "info_nce", "negative_cosine",
    "nt_xent", "simsiam_loss", "BYOL", "METHODS", "SimCLR", "SimSiam", "MoCo", "PretrainConfig",
    "bench", "BenchData", "PairViews", "bench_config", "bench_data", "bench_encoder", "bench_evaluate", "bench_views",
    "estimate", "run_hours",
]
