"""Presets for the Tobias experiment: ``quick()`` (CPU, synthetic scenes and photos, seconds),
``study()`` (the same with enough seeds for intervals, CPU minutes), ``full()`` (CUB-200-2011 and
STL-10 on a GPU) and ``colab()`` (the full preset with half the MoCo v2 epochs, for a Colab session).

Book section: *Tobias* "Quick run", "Claims, intervals and verdicts" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from .. import validation as v
from ..backbones import INITS, STAGES
from ..ssl.pretrain import PretrainConfig
from ..validation import check, invalid


@cache
def _photo_names() -> tuple[str, ...]:
    """The bundled photos that have a hand-drawn box (``companion/data/photo_boxes.json``)."""
    import json
    from importlib import resources

    return tuple(json.loads(resources.files("companion.data").joinpath("photo_boxes.json").read_text())["boxes"])


def _check_stage(cfg, stage_field: str, arch: str) -> None:
    stage = getattr(cfg, stage_field)
    if stage is not None and stage not in STAGES[arch]:
        invalid(cfg, stage_field, f"be None (the last stage) or a stage of {arch}: one of {tuple(STAGES[arch])}")


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

    def __post_init__(self):
        check(
            self, n_scenes=v.positive_int, image_size=v.positive_int, canvas=v.positive_int,
            scale=v.pair(v.number(0, 1, low_open=True)), classes=v.positive_int, clutter=v.non_negative_int,
            scene_seed=v.seed, arch=v.one_of(*STAGES), stage=v.optional(v.text()), layer4_stride=v.one_of(1, 2),
            init=v.one_of(*INITS), seeds=v.seeds, torchvision_seeds=v.seeds_or_empty, framed_seeds=v.seeds_or_empty,
            threshold=v.positive, batch_size=v.positive_int,
            photos=v.optional(v.sequence(v.one_of(*_photo_names()), non_empty=False, distinct=True)),
            photo_arch=v.one_of(*STAGES), photo_size=v.positive_int, photo_seeds=v.seeds_or_empty,
        )
        if self.canvas < self.image_size:
            invalid(self, "canvas", f"be >= image_size = {self.image_size} (the scenes are cut from it)")
        _check_stage(self, "stage", self.arch)


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

    def __post_init__(self):
        model = v.all_of(v.sequence(length=5), v.Rule(_model_row, "be (name, arch, init, seed, pretrained)"))
        check(self, models=v.sequence(model), image_size=v.positive_int, layer4_stride=v.one_of(1, 2),
              batch_size=v.positive_int, num_workers=v.non_negative_int, limit=v.optional(v.positive_int))
        names = [m[0] for m in self.models]
        if len(set(names)) != len(names):
            invalid(self, "models", "have distinct names (the first item of each row)")
        if any(pretrained and init != "default" for _, _, init, _, pretrained in self.models):
            invalid(self, "models", "use init 'default' in rows with pretrained=True (pretrained weights are not drawn)")


def _model_row(row):
    """``(name, arch, init, seed, pretrained)`` of :class:`CUBConfig`: the first failing item's error."""
    rules = (v.text(), v.one_of(*STAGES), v.one_of(*INITS), v.seed, v.flag())
    return next((bad for r, x in zip(rules, row) if (bad := r(x)) is not None), None)


#: MoCo v2 steps of batch 64 on the digit scenes: the quick run's (CPU budget) and the study's.
QUICK_STEPS, STUDY_STEPS = 250, 600


def _digits_pretrain(steps: int) -> PretrainConfig:
    """MoCo v2 on the digit scenes with the shared benchmark's recipe (:mod:`companion.ssl.bench`:
    SGD lr 0.05, batch 64, weight decay 5e-4, a 512-key queue, 64-d head, temperature 0.2, crops of
    50-100 %, no flip, no blur), a TinyCNN of width 8 on the grey 16-px scenes, one CPU thread."""
    from ..ssl import bench

    return bench.bench_config("moco", steps=steps, resolution=16, encoder_kwargs={"width": bench.WIDTH})


@dataclass
class SSLConfig:
    """Self-supervised pretraining with and without the background swap, then kNN / linear evaluation.

    Quick and study: ``dataset="digits"``, scenes of ``image_size`` px with one handwritten digit on a
    background whose style is drawn independently of the digit
    (:func:`~companion.tobias.scenes.digit_scenes`): ``n_train`` for pretraining (and the probes'
    training set) from the benchmark's training digits, ``n_test`` held out. ``"scenes"``: the
    synthetic shapes of :func:`companion.data.make_scenes` (on which no method beat random weights in
    a CPU budget). Full: ``dataset="stl10"`` (a seeded ``n_train`` subset of the unlabeled split for
    pretraining; the labeled train/test splits for the probes).
    The cell scores come from a random ``mask_arch`` cut after ``mask_stage`` on images resized to
    ``mask_size`` (None: as they are). Seed ``s`` builds the encoder after seeding with ``s``: its
    untrained copy, the baseline and the Tobias arm all start from those weights.

    The swap claims rest on two premises, each "better than the untrained encoder by at least a
    margin" (points, fixed before the runs as a fifth of chance accuracy): ``learn_margin`` for the
    digit kNN (10 classes: chance 10 %) and ``background_margin`` for the background-style kNN (4
    styles: chance 25 %).
    """

    dataset: str = "digits"
    gray: bool = True  # digits: grey-level scenes (in colour, MoCo matched colours and learned no digits)
    n_train: int = 1200
    n_test: int = 597
    image_size: int = 16
    classes: int = 4  # "scenes" only
    scale: tuple[float, float] = (0.35, 0.8)  # "scenes" only
    data_seed: int = 1
    mask_arch: str = "resnet18"
    mask_stage: str | None = "layer1"  # stride 4: a 4x4 map on 16 px scenes
    mask_size: int | None = None
    mask_seed: int = 0
    p: float = 0.3
    grid: int = 4
    seeds: tuple[int, ...] = (0, 1)
    pretrain: PretrainConfig = field(default_factory=lambda: _digits_pretrain(QUICK_STEPS))
    knn_k: int = 200
    linear_epochs: int = 100  # linear probe epochs on frozen features (0: kNN only)
    learn_margin: float = 2.0
    background_margin: float = 5.0

    def __post_init__(self):
        check(
            self, dataset=v.one_of("digits", "scenes", "stl10"), gray=v.flag(), n_train=v.positive_int,
            n_test=v.non_negative_int, image_size=v.positive_int, classes=v.integer(2),
            scale=v.pair(v.number(0, 1, low_open=True)), data_seed=v.seed, mask_arch=v.one_of(*STAGES),
            mask_stage=v.optional(v.text()), mask_size=v.optional(v.positive_int), mask_seed=v.seed, p=v.fraction,
            grid=v.positive_int, seeds=v.seeds, pretrain=v.instance(PretrainConfig), knn_k=v.positive_int,
            linear_epochs=v.non_negative_int, learn_margin=v.positive, background_margin=v.positive,
        )
        _check_stage(self, "mask_stage", self.mask_arch)


@dataclass
class Config:
    """What :func:`companion.tobias.experiment.run` runs; ``None`` skips a part. ``threads``: CPU threads
    for the whole run (quick and study pin 1, so their numbers repeat bit for bit)."""

    mode: str
    localization: LocalizationConfig | None = None
    cub: CUBConfig | None = None
    ssl: SSLConfig | None = None
    device: str | None = None
    checkpoint_dir: str | None = None  # default: runtime.checkpoint_root("tobias")
    threads: int | None = 1

    def __post_init__(self):
        check(
            self, mode=v.one_of("quick", "study", "full"), localization=v.optional(v.instance(LocalizationConfig)),
            cub=v.optional(v.instance(CUBConfig)), ssl=v.optional(v.instance(SSLConfig)),
            device=v.optional(v.device()), checkpoint_dir=v.optional(v.path()), threads=v.threads,
        )
        if self.localization is None and self.cub is None and self.ssl is None:
            raise ValueError("Config: nothing to run: give at least one of localization, cub and ssl")
        for part in (self.localization, self.cub, self.ssl):
            if part is not None:  # again: the command line edits parts in place before checking the whole
                part.__post_init__()


def quick() -> Config:
    """CPU seconds: 2 x 96 synthetic scenes at 112 px, each set with its own random ResNet-18 whose
    layer4 runs at stride 1 as in the paper's code (a 7x7 map), and the 6 bundled photos with
    hand-drawn boxes (a random ResNet-50, layer4 at stride 1, 14x14 at 224 px); MoCo v2 on 1,200
    grey digit scenes at 16 px, 250 steps, with and without the swap, 3 seeds (the fewest that give
    the premises an interval; 96 scenes, not 128, and no torchvision trunk keep the run under a minute)."""
    loc = LocalizationConfig(n_scenes=96, seeds=(0, 1), torchvision_seeds=(), photo_seeds=(0,))
    return Config(mode="quick", localization=loc, ssl=SSLConfig(seeds=(0, 1, 2)))


def study() -> Config:
    """The quick run's code and data with more samples: 6 scene sets of 160 (seeds 0-5), torchvision's
    stride-32 trunk beside the paper's on 2 of them, 3 seeds of the photos, and 10 seeds per MoCo arm
    of 600 steps (at 5 the swap's intervals were about 5 points wide either side; a few CPU minutes)."""
    loc = LocalizationConfig(n_scenes=160, seeds=tuple(range(6)), torchvision_seeds=(0, 1), photo_seeds=tuple(range(3)))
    ssl = SSLConfig(seeds=tuple(range(10)), pretrain=_digits_pretrain(STUDY_STEPS))
    return Config(mode="study", localization=loc, ssl=ssl)


def full() -> Config:
    """A GPU run: CUB-200-2011 test CorLoc (random and pretrained ResNet-50 at 224 px, layer4 at stride 1
    as in the paper's code); MoCo v2 with a ResNet-18 on a 10k subset of STL-10 unlabeled at 96 px for
    200 epochs with and without the swap (p = 0.3, masks from a random torchvision ResNet-50 at 224 px,
    a 7x7 map as the paper's mask script gets), three seeds per arm (the claims' paired samples), kNN and
    linear probes on STL-10 train/test.
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
        mask_stage=None, mask_size=224, seeds=(0, 1, 2), pretrain=pre, knn_k=200, linear_epochs=100,
    )
    return Config(mode="full", cub=CUBConfig(), ssl=ssl_cfg, threads=None)


#: MoCo v2 epochs of the colab preset: half the full preset's 200, so the run fits a Colab session.
COLAB_EPOCHS = 100


def colab() -> Config:
    """:func:`full` for a Colab T4 session: the same CUB models and the same MoCo v2 comparison on the
    same data and seeds, with 100 pretraining epochs instead of 200 (under an hour by
    :func:`~companion.tobias.run_hours`). Recorded under the ``full`` tier."""
    cfg = full()
    cfg.ssl.pretrain = cfg.ssl.pretrain.replace(epochs=COLAB_EPOCHS)
    return cfg


PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}
