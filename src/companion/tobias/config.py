"""Presets for the Tobias experiment: ``quick()`` (CPU, synthetic scenes, seconds) and ``full()``
(CUB-200-2011 and STL-10 on a GPU).

Book section: *Tobias* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ssl.pretrain import PretrainConfig


@dataclass
class LocalizationConfig:
    """Random-CNN boxes on synthetic scenes and on photos, against boxes that ignore the image.

    Scenes: ``n_scenes`` scenes of ``image_size`` px per seed, cut at random from ``canvas``-px scenes
    (:func:`~companion.tobias.scenes.off_centre_scenes`), so objects are not always centred; ``scale``
    is the object radius range relative to the canvas. Seed ``s`` draws the network's weights with
    ``s`` and its own scene set with ``scene_seed + s``, so the seeds are paired samples of the
    random CNN and of the centred box tuned on the same scenes. The network is ``arch`` cut after
    ``stage`` (None: the last stage) with ``layer4`` at stride ``layer4_stride`` (1: the official
    localization ResNets). ``torchvision_seeds`` also runs torchvision's stride-32 network (a grid
    half as fine) and ``framed_seeds`` the scenes exactly as :func:`companion.data.make_scenes`
    frames them (large objects centred, the objects' pixel sizes matched), on the first scene set.

    Photos: the bundled photos ``photos`` with the hand-drawn boxes of
    :func:`companion.tobias.metrics.photo_boxes`, at ``photo_size`` px, random ``photo_arch``
    (``layer4`` at ``layer4_stride``) for each of ``photo_seeds``; None or () skips them.
    """

    n_scenes: int = 200
    image_size: int = 112
    canvas: int = 160
    scale: tuple[float, float] = (0.2, 0.6)
    classes: int = 8
    clutter: int = 6
    scene_seed: int = 0
    arch: str = "resnet18"
    stage: str | None = None
    layer4_stride: int = 1
    init: str = "default"
    seeds: tuple[int, ...] = (0, 1, 2)
    torchvision_seeds: tuple[int, ...] = (0,)
    framed_seeds: tuple[int, ...] = (0,)
    threshold: float = 1.0
    batch_size: int = 64
    photos: tuple[str, ...] | None = ("astronaut", "chelsea", "coffee", "rocket", "camera", "stereo_motorcycle")
    photo_arch: str = "resnet50"
    photo_size: int = 224
    photo_seeds: tuple[int, ...] = (0, 1, 2)


@dataclass
class CUBConfig:
    """Random vs ImageNet-pretrained ResNet-50 CorLoc on the CUB-200-2011 test split (full mode).

    ``models``: ``(name, arch, init, seed, pretrained)``; every image is resized to
    ``image_size`` x ``image_size`` (aspect ratio ignored, boxes rescaled), as the paper's script does.
    ResNets run with ``layer4`` at stride ``layer4_stride`` (1, as the official custom ResNets).
    """

    models: tuple[tuple[str, str, str, int, bool], ...] = (
        ("random_resnet50_seed0", "resnet50", "default", 0, False),
        ("random_resnet50_seed1", "resnet50", "default", 1, False),
        ("random_resnet50_seed2", "resnet50", "default", 2, False),
        ("random_resnet50_uniform", "resnet50", "uniform", 0, False),
        ("pretrained_resnet50", "resnet50", "default", 0, True),
    )
    image_size: int = 224
    layer4_stride: int = 1  # the official localization ResNets: a 14x14 map at 224 px
    batch_size: int = 64
    num_workers: int = 8
    limit: int | None = None  # first N test images only (smoke tests)


@dataclass
class SSLConfig:
    """Self-supervised pretraining with and without the background swap, then kNN / linear evaluation.

    Quick: ``dataset="scenes"`` (``n_train``/``n_test`` scenes of ``image_size`` px whose background
    style is independent of the class). Full: ``dataset="stl10"`` (a seeded ``n_train`` subset of the
    unlabeled split for pretraining; the labeled train/test splits for the probes).
    The cell scores come from a random ``mask_arch`` cut after ``mask_stage`` on images resized to
    ``mask_size`` (None: as they are).
    """

    dataset: str = "scenes"
    n_train: int = 512
    n_test: int = 256
    image_size: int = 64
    classes: int = 4
    scale: tuple[float, float] = (0.35, 0.8)
    data_seed: int = 1
    mask_arch: str = "resnet18"
    mask_stage: str | None = "layer2"
    mask_size: int | None = None
    mask_seed: int = 0
    p: float = 0.3
    grid: int = 4
    seeds: tuple[int, ...] = (0, 1)
    pretrain: PretrainConfig = field(default_factory=lambda: PretrainConfig.quick(
        method="moco", steps=40, method_kwargs={"queue_size": 256, "dim": 64}))
    knn_k: int = 20
    linear_epochs: int = 100  # linear probe epochs on frozen features (0: kNN only)


@dataclass
class Config:
    """What :func:`companion.tobias.experiment.run` runs; ``None`` skips a part."""

    mode: str
    localization: LocalizationConfig | None = None
    cub: CUBConfig | None = None
    ssl: SSLConfig | None = None
    device: str | None = None
    checkpoint_dir: str | None = None  # default: data_root().parent / "checkpoints" / "tobias"

    def __post_init__(self):
        if self.mode not in ("quick", "full"):
            raise ValueError(f"mode must be 'quick' or 'full', got {self.mode!r}")
        if self.localization is None and self.cub is None and self.ssl is None:
            raise ValueError("nothing to run: give at least one of localization, cub and ssl")


def quick() -> Config:
    """CPU seconds: 200 synthetic scenes at 112 px with a random ResNet-18 cut after layer3 (a 7x7 map,
    the grid the paper gets from 224-px images at stride 32), three initialization seeds; MoCo v2 on 512
    scenes at 32 px for 40 steps, with and without the swap, two seeds each."""
    return Config(mode="quick", localization=LocalizationConfig(), ssl=SSLConfig())


def full() -> Config:
    """A GPU run: CUB-200-2011 test CorLoc (random and pretrained ResNet-50 at 224 px); MoCo v2 with a
    ResNet-18 on a 10k subset of STL-10 unlabeled at 96 px for 200 epochs with and without the swap
    (p = 0.3, masks from a random ResNet-50 at 224 px), kNN and linear probes on STL-10 train/test.
    The MoCo settings are the paper's scripts' (SGD lr 0.3, cosine, weight decay 1e-4, batch 256,
    temperature 0.2, 128-d head, key momentum 0.999) except the queue: 4,096 keys, fewer than the
    10,000 images, so an image never meets a stale copy of itself as a negative."""
    pre = PretrainConfig.full(
        method="moco", encoder="resnet18", resolution=96, epochs=200, batch_size=256, lr=0.3, weight_decay=1e-4,
        method_kwargs={"queue_size": 4096, "dim": 128, "momentum": 0.999, "temperature": 0.2},
        checkpoint_every=500,
    )
    ssl_cfg = SSLConfig(
        dataset="stl10", n_train=10_000, n_test=0, image_size=96, classes=10, mask_arch="resnet50",
        mask_stage=None, mask_size=224, seeds=(0,), pretrain=pre, knn_k=200, linear_epochs=100,
    )
    return Config(mode="full", cub=CUBConfig(), ssl=ssl_cfg)
