r"""NRS as the head of a CNN: the random-subspace layer on a ResNet's pooled features.

A ResNet-50 ends with global average pooling (a 2,048-d vector $f$) and one linear layer. The NRS
head replaces that layer: $C = 2048\,n_{mul}$ random subspaces of $f$, a grouped convolution in
which each output mixes ``n_per_group`` subspaces, BatchNorm and ReLU, then a linear classifier:

$$\mathrm{logits} = W\, \mathrm{ReLU}\big(\mathrm{BN}(\mathrm{GConv}(f_{S}))\big) + b.$$

The paper's CUB-200 setting: ``n_mul = 2``, ``n_per_group = 64`` (4,096 subspaces in 64 groups),
448-pixel inputs, SGD at lr 2e-3. Training goes through :func:`companion.train.fit` with
checkpoints, so a disconnected run resumes.

Book section: *NRS* "NRS as a CNN head" and "Full run".
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .. import train
from .layer import NRSLayer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class NRSHead(nn.Module):
    """The NRS head on pooled CNN features: ``(B, in_features) -> (B, n_classes)``.

    Book section: *NRS* "NRS as a CNN head".
    """

    def __init__(self, in_features: int, n_classes: int, k: int = 3, n_mul: int = 2, n_per_group: int = 64,
                 seed: int = 0):
        super().__init__()
        self.nrs = NRSLayer(in_features, k, n_mul, n_per_group, seed)
        self.fc = nn.Linear(self.nrs.out_features, n_classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(self.nrs(f))  # (B, C) -> (B, n_classes)


def resnet_nrs(arch: str = "resnet50", n_classes: int = 200, head: str = "nrs", pretrained: bool = False,
               n_mul: int = 2, n_per_group: int = 64, k: int = 3, seed: int = 0) -> nn.Module:
    """A torchvision ResNet whose last layer is the NRS head (``head="nrs"``) or a plain linear layer.

    ``pretrained=True`` loads torchvision's ImageNet weights for the trunk (a download: full mode
    only). The head is seeded by ``seed``. Input ``(B, 3, H, W)``, output ``(B, n_classes)``.

    Book section: *NRS* "NRS as a CNN head".
    """
    from torchvision import models

    if arch not in ("resnet18", "resnet34", "resnet50", "resnet101"):
        raise ValueError(f"arch must be a torchvision ResNet (resnet18/34/50/101), got {arch!r}")
    if head not in ("nrs", "linear"):
        raise ValueError(f"head must be 'nrs' or 'linear', got {head!r}")
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    try:
        net = getattr(models, arch)(weights="IMAGENET1K_V1" if pretrained else None)
    except Exception as e:  # offline, HTTP error: say what to fetch and where torchvision looks for it
        url = models.get_model_weights(arch).IMAGENET1K_V1.url
        raise RuntimeError(
            f"could not load torchvision's ImageNet weights for {arch} ({type(e).__name__}: {e}). Download {url} "
            f"into {torch.hub.get_dir()}/checkpoints/ (torchvision's cache), or run with pretrained=False."
        ) from e
    d = net.fc.in_features  # 2,048 for ResNet-50, 512 for ResNet-18
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net.fc = NRSHead(d, n_classes, k, n_mul, n_per_group, seed) if head == "nrs" else nn.Linear(d, n_classes)
    return net


class CUBImages(Dataset):
    """CUB-200-2011 records (from :func:`companion.data.cub200`) as ``(image, label)`` pairs."""

    def __init__(self, records, transform):
        self.records, self.transform = list(records), transform
        if not self.records:
            raise ValueError("no CUB records: check the split (is_train) and the data folder")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        from PIL import Image

        r = self.records[i]
        with Image.open(r.path) as im:
            image = im.convert("RGB")
        return self.transform(image), r.label


def cub_transforms(image_size: int, train_mode: bool):
    """Resize to ``image_size / 0.875``, then a random (train) or centre (test) crop; flips in training."""
    from torchvision.transforms import v2

    resize = int(round(image_size / 0.875))
    crop = [v2.RandomCrop(image_size), v2.RandomHorizontalFlip()] if train_mode else [v2.CenterCrop(image_size)]
    return v2.Compose([v2.ToImage(), v2.Resize(resize, antialias=True), *crop, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def _ce_step(model: nn.Module, batch) -> torch.Tensor:
    images, labels = batch
    return F.cross_entropy(model(images), labels)


@torch.no_grad()
def evaluate_flip(model: nn.Module, dataset: Dataset, batch_size: int = 64, device: str | None = None,
                  num_workers: int = 0) -> float:
    """Top-1 accuracy (%) averaging the softmax of each centre crop and its mirror image (the paper's test).

    Book section: *NRS* "Full run".
    """
    from torch.utils.data import DataLoader

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev).eval()
    correct = total = 0
    for images, labels in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        images, labels = images.to(dev), labels.to(dev)
        with torch.autocast(dev.type, enabled=dev.type == "cuda"):
            p = model(images).float().softmax(1) + model(images.flip(-1)).float().softmax(1)
        correct += (p.argmax(1) == labels).sum().item()
        total += len(labels)
    return 100.0 * correct / max(1, total)


def train_cub(records, head: str, *, arch: str = "resnet50", pretrained: bool = True, image_size: int = 448,
              epochs: int = 65, batch_size: int = 30, lr: float = 2e-3, weight_decay: float = 1e-4,
              n_mul: int = 2, n_per_group: int = 64, seed: int = 0, num_workers: int = 4,
              checkpoint_dir: str | Path | None = None, device: str | None = None, progress: bool = True,
              max_steps: int | None = None) -> dict:
    """Fine-tune a ResNet with an NRS or a linear head on CUB's training split; test on its test split.

    SGD with momentum 0.9 and weight decay 1e-4 as in the paper; a cosine schedule replaces the
    paper's steps at epochs 20 and 40 (``companion.train.fit`` offers cosine or constant).
    ``max_steps`` cuts training short (smoke tests). Returns the test accuracy and the run's length.

    Book section: *NRS* "Full run".
    """
    train_set = CUBImages([r for r in records if r.is_train], cub_transforms(image_size, True))
    test_set = CUBImages([r for r in records if not r.is_train], cub_transforms(image_size, False))
    n_classes = max(r.label for r in records) + 1
    model = resnet_nrs(arch, n_classes, head, pretrained, n_mul, n_per_group, seed=seed)
    steps_per_epoch = max(1, len(train_set) // batch_size)
    steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    config = train.FitConfig(
        steps=int(steps), batch_size=batch_size, lr=lr, optimizer="sgd", momentum=0.9, weight_decay=weight_decay,
        schedule="cosine", seed=seed, num_workers=num_workers, checkpoint_dir=checkpoint_dir,
        checkpoint_every=steps_per_epoch, progress=progress, device=device,
    )
    result = train.fit(model, train_set, _ce_step, config)
    acc = evaluate_flip(model, test_set, batch_size=max(2 * batch_size, 2), device=device, num_workers=num_workers)
    return {"top1": acc, "steps": result.steps, "train_s": result.seconds, "final_loss": result.last("loss")}
