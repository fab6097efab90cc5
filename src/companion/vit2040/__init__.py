"""Training vision transformers with only 2040 images (Cao, Yu, Wu, ECCV 2022).

A ViT is pretrained on the small target dataset itself by *parametric instance discrimination*
(one class per training image, multi-crop, CutMix within crop groups, small resolution), then
fine-tuned (position-embedding interpolation, label smoothing, mixup/CutMix).

Book section: *ViT with 2040 images* (``book/09_vit_2040.md``).
"""

from . import config
from .estimate import run_hours
from .experiment import Result, run
from .augment import CropGroups, crop_augment, cutmix
from .config import ABLATION_STEPS, Ablation, Config, Crops, FinetuneAugment, Stage, ViTShape
from .finetune import Supervised, accuracy
from .model import (DropPathBlock, build_vit, class_token_attention, encoder,
                    interpolate_pos_embedding, record_attention, resize_vit)
from .instance import InstanceDiscrimination, as_float, num_instances, pretrain

__all__ = [
    "config", "Result", "run", "run_hours", "ABLATION_STEPS", "Ablation", "Config", "Crops", "FinetuneAugment",
    "Stage", "ViTShape",
    "CropGroups", "crop_augment", "cutmix",
    "Supervised", "accuracy",
    "DropPathBlock", "build_vit", "class_token_attention", "encoder",
    "interpolate_pos_embedding", "record_attention", "resize_vit",
    "InstanceDiscrimination", "as_float", "num_instances", "pretrain",
]
