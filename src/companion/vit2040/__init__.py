"""Training vision transformers with only 2040 images (Cao, Yu, Wu, ECCV 2022).

A ViT is pretrained on the small target dataset itself by *parametric instance discrimination*
(one class per training image, multi-crop, CutMix within crop groups, small resolution), then
fine-tuned (position-embedding interpolation, label smoothing, mixup/CutMix).

Book section: *ViT with 2040 images* (``book/09_vit_2040.md``).
"""

from . import config
from .augment import cutmix, multi_crop, random_resized_boxes, random_resized_crops
from .config import ABLATION_STEPS, Ablation, Config, Crops, Stage, ViTShape
from .finetune import Supervised, accuracy
from .model import (DropPathBlock, build_vit, class_token_attention, class_token_features,
                    interpolate_pos_embedding, record_attention, resize_vit)
from .pretrain import InstanceDiscrimination, num_instances, pretrain

__all__ = [
    "config", "ABLATION_STEPS", "Ablation", "Config", "Crops", "Stage", "ViTShape",
    "cutmix", "multi_crop", "random_resized_boxes", "random_resized_crops",
    "Supervised", "accuracy",
    "DropPathBlock", "build_vit", "class_token_attention", "class_token_features",
    "interpolate_pos_embedding", "record_attention", "resize_vit",
    "InstanceDiscrimination", "num_instances", "pretrain",
]
