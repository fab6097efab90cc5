r"""The vision transformer: torchvision's ``VisionTransformer`` plus what the paper's DeiT adds.

torchvision's ViT (``torchvision.models.VisionTransformer``) has no drop-path (stochastic depth), so
:class:`DropPathBlock` subclasses its ``EncoderBlock`` and wraps both residual branches in
``torchvision.ops.StochasticDepth``. Everything else (patch embedding, class token, position
embedding, pre-norm blocks, head) is torchvision's.

Book section: *ViT with 2040 images* "A ViT from torchvision".
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn
from torchvision.models.vision_transformer import EncoderBlock, VisionTransformer, interpolate_embeddings
from torchvision.ops import StochasticDepth

from ..tensors import as_model_input, as_tensor
from .config import ViTShape


def check_batch(images: torch.Tensor) -> torch.Tensor:
    """A clear error unless ``images`` is a non-empty, finite float ``(N, C, H, W)`` tensor (float64 is
    returned as float32; see :mod:`companion.tensors`)."""
    return as_tensor(images, "images", ndim=4, shape_hint="(N, C, H, W)")


def _check_forward_input(model: nn.Module, args: tuple) -> tuple:
    # forward pre-hook of every ViT built here: the same input policy as the other encoders
    return (as_model_input(args[0], model, "images", ndim=4, shape_hint="(N, C, H, W)"), *args[1:])


class DropPathBlock(EncoderBlock):
    r"""A torchvision ``EncoderBlock`` with drop-path on both residual branches.

    $$x' = x + \mathrm{DP}\big(\mathrm{MSA}(\mathrm{LN}(x))\big),\qquad
      y = x' + \mathrm{DP}\big(\mathrm{MLP}(\mathrm{LN}(x'))\big)$$

    where $\mathrm{DP}$ zeroes a branch for a whole sample with probability $p$ (and scales the
    survivors by $1/(1-p)$) while training, and is the identity in evaluation.

    Book section: *ViT with 2040 images* "A ViT from torchvision".
    """

    def __init__(self, num_heads: int, hidden_dim: int, mlp_dim: int, drop_path: float):
        super().__init__(num_heads, hidden_dim, mlp_dim, dropout=0.0, attention_dropout=0.0)
        self.drop_path = StochasticDepth(drop_path, mode="row")

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # (N, T, D) -> (N, T, D)
        x = self.ln_1(input)
        # need_weights=False as in torchvision; record_attention() flips it with a hook
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = input + self.drop_path(self.dropout(x))
        return x + self.drop_path(self.mlp(self.ln_2(x)))


def build_vit(shape: ViTShape, num_classes: int, image_size: int | None = None) -> VisionTransformer:
    """A torchvision ``VisionTransformer`` of ``shape`` with drop-path and ``in_channels`` inputs.

    ``image_size`` overrides ``shape.image_size`` (pretraining at a small resolution). Drop-path
    rates grow linearly with depth from 0 to ``shape.drop_path``, as in DeiT.

    Book section: *ViT with 2040 images* "A ViT from torchvision".
    """
    size = shape.image_size if image_size is None else image_size
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if size % shape.patch_size:
        raise ValueError(f"image_size {size} is not a multiple of patch_size {shape.patch_size}")
    model = VisionTransformer(
        image_size=size, patch_size=shape.patch_size, num_layers=shape.layers, num_heads=shape.heads,
        hidden_dim=shape.dim, mlp_dim=shape.mlp_dim, num_classes=num_classes,
    )
    rates = torch.linspace(0, shape.drop_path, shape.layers).tolist()
    for i, name in enumerate(list(model.encoder.layers._modules)):
        model.encoder.layers._modules[name] = DropPathBlock(shape.heads, shape.dim, shape.mlp_dim, rates[i])
    if shape.in_channels != 3:
        # torchvision's stem is fixed to RGB; same init (trunc. normal, std sqrt(1/fan_in)), other channel count
        conv = nn.Conv2d(shape.in_channels, shape.dim, kernel_size=shape.patch_size, stride=shape.patch_size)
        nn.init.trunc_normal_(conv.weight, std=(1 / (shape.in_channels * shape.patch_size**2)) ** 0.5)
        nn.init.zeros_(conv.bias)
        model.conv_proj = conv
    model.register_forward_pre_hook(_check_forward_input)
    return model


def check_images(model: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """Clear errors for images the ViT cannot take (wrong rank, dtype, channels or size).

    Book section: *ViT with 2040 images* "A ViT from torchvision".
    """
    images = check_batch(images)
    channels = model.conv_proj.in_channels
    if images.shape[1] != channels:
        raise ValueError(f"the ViT takes {channels}-channel images, got {images.shape[1]} channels")
    if images.shape[-2:] != (model.image_size, model.image_size):
        raise ValueError(f"the ViT takes {model.image_size}x{model.image_size} images, got "
                         f"{images.shape[-2]}x{images.shape[-1]}; resize them or use resize_vit()")
    return images


def interpolate_pos_embedding(pos_embedding: torch.Tensor, new_grid: int) -> torch.Tensor:
    r"""Bicubically resize the patch part of a ``(1, 1 + g^2, D)`` position embedding to ``new_grid``.

    The class-token row is kept as is; the $g\times g$ grid of patch embeddings is treated as a
    $D$-channel image and resized (bicubic, corners aligned) to $g'\times g'$, so a model pretrained at
    112 px ($g=7$ for 16-px patches) can be fine-tuned at 224 px ($g'=14$). At the same grid the
    embedding is returned unchanged. This calls torchvision's ``interpolate_embeddings``.

    Book section: *ViT with 2040 images* "Small resolution, then position-embedding interpolation".
    """
    if pos_embedding.ndim != 3 or pos_embedding.shape[0] != 1:
        raise ValueError(f"pos_embedding must be (1, 1 + g*g, D), got {tuple(pos_embedding.shape)}")
    grid = round((pos_embedding.shape[1] - 1) ** 0.5)
    if grid * grid != pos_embedding.shape[1] - 1:
        raise ValueError(f"pos_embedding has {pos_embedding.shape[1] - 1} patch rows, not a square grid")
    if not isinstance(new_grid, int) or new_grid < 1:
        raise ValueError(f"new_grid must be a positive integer, got {new_grid!r}")
    # interpolate_embeddings works on a state dict and wants image and patch size: use patch size 1
    state = {"encoder.pos_embedding": pos_embedding}
    return interpolate_embeddings(new_grid, 1, state)["encoder.pos_embedding"]


def resize_vit(model: VisionTransformer, image_size: int, num_classes: int) -> VisionTransformer:
    """A copy of ``model`` for ``image_size`` inputs with a fresh ``num_classes`` head.

    The position embedding is interpolated (:func:`interpolate_pos_embedding`); the instance head
    of pretraining is dropped, as in the paper's fine-tuning.

    Book section: *ViT with 2040 images* "Small resolution, then position-embedding interpolation".
    """
    if image_size % model.patch_size:
        raise ValueError(f"image_size {image_size} is not a multiple of patch_size {model.patch_size}")
    new = copy.deepcopy(model).cpu()
    grid = image_size // model.patch_size
    new.encoder.pos_embedding = nn.Parameter(interpolate_pos_embedding(new.encoder.pos_embedding.detach(), grid))
    new.image_size = image_size
    new.seq_length = grid * grid + 1
    head = nn.Linear(model.hidden_dim, num_classes)
    nn.init.zeros_(head.weight)  # torchvision's head init
    nn.init.zeros_(head.bias)
    new.heads = nn.Sequential(head)
    new.num_classes = num_classes
    return new.to(next(model.parameters()).device)


def encoder(model: VisionTransformer) -> VisionTransformer:
    """A copy of ``model`` whose head is the identity: ``(N, C, H, W)`` -> ``(N, D)`` class tokens.

    The class token after the last LayerNorm is the image's feature, for kNN evaluation.

    Book section: *ViT with 2040 images* "Quick run" (kNN of the class token).
    """
    enc = copy.deepcopy(model)
    enc.heads = nn.Identity()
    return enc


@contextlib.contextmanager
def record_attention(model: VisionTransformer) -> Iterator[list[torch.Tensor]]:
    """Record every layer's attention weights during forward passes inside the ``with`` block.

    torchvision's blocks call ``nn.MultiheadAttention`` with ``need_weights=False``. A forward
    *pre*-hook (``with_kwargs=True``) rewrites that call to ``need_weights=True,
    average_attn_weights=False``; a forward hook then stores the second output, one
    ``(N, heads, T, T)`` tensor per layer and forward pass, into the list this yields.

    Book section: *ViT with 2040 images* "Where does the class token look?".
    """
    weights: list[torch.Tensor] = []

    def ask(module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def keep(module, args, output):
        weights.append(output[1].detach())

    handles = []
    for block in model.encoder.layers:
        handles.append(block.self_attention.register_forward_pre_hook(ask, with_kwargs=True))
        handles.append(block.self_attention.register_forward_hook(keep))
    try:
        yield weights
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def class_token_attention(model: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    r"""``(N, C, H, W)`` -> ``(L, N, heads, g, g)``: how much the class token attends to each patch.

    Row 0 of each layer's attention matrix $A=\mathrm{softmax}(QK^\top/\sqrt{d})$, without its
    class-to-class entry, reshaped to the $g\times g$ patch grid.

    Book section: *ViT with 2040 images* "Where does the class token look?".
    """
    images = check_images(model, images)
    was_training = model.training
    model.eval()
    with record_attention(model) as weights:
        model(images)
    model.train(was_training)
    grid = model.image_size // model.patch_size
    att = torch.stack(weights)  # (L, N, heads, T, T)
    return att[..., 0, 1:].reshape(*att.shape[:3], grid, grid)
