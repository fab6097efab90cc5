"""Presets for the ViT-with-2040-images chapter: ``quick()`` (CPU, digits), ``colab()`` and ``full()``.

``full()`` follows the official recipe on Flowers-102 (DeiT-Tiny, 800 pretraining epochs at 112 px), with
200 fine-tuning epochs at 224 px, the shortening the official README offers ("you can set it to 200 to
speed up"); the paper fine-tunes 800 epochs at 224 px, then 100 at 448 px. ``colab()`` is the same
recipe shortened to fit a Colab session. Every switch of the paper's ablation (Table 8) is an :class:`Ablation` field.

Book section: *ViT with 2040 images* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import validation as v
from ..validation import check, invalid


@dataclass(frozen=True)
class ViTShape:
    """The transformer's shape; ``image_size`` is the fine-tuning resolution.

    Book section: *ViT with 2040 images* "A ViT from torchvision".
    """

    image_size: int
    patch_size: int
    dim: int
    layers: int
    heads: int
    mlp_dim: int
    in_channels: int = 3
    drop_path: float = 0.1

    def __post_init__(self):
        check(self, image_size=v.positive_int, patch_size=v.positive_int, dim=v.positive_int, layers=v.positive_int,
              heads=v.positive_int, mlp_dim=v.positive_int, in_channels=v.positive_int,
              drop_path=v.number(0, 1, high_open=True))
        if self.image_size % self.patch_size:
            invalid(self, "image_size", f"be a multiple of patch_size = {self.patch_size}")
        if self.dim % self.heads:
            invalid(self, "dim", f"be divisible by heads = {self.heads}")


#: DeiT-Tiny (Touvron et al.): 192 wide, 12 layers, 3 heads, 16-px patches.
DEIT_TINY = ViTShape(image_size=224, patch_size=16, dim=192, layers=12, heads=3, mlp_dim=768, drop_path=0.1)


@dataclass(frozen=True)
class Ablation:
    """The four ingredients the paper's ablation adds one at a time (Table 8).

    - ``label_smoothing``: fine-tune with label-smoothed cross-entropy (0.1);
    - ``small_resolution``: pretrain at half the fine-tuning resolution (112 px for 224 px);
    - ``multi_crop``: add the local crops to the two global crops in pretraining;
    - ``cutmix``: CutMix inside each crop group in pretraining.

    Book section: *ViT with 2040 images* "Quick run" (the ablation table).
    """

    label_smoothing: bool = True
    small_resolution: bool = True
    multi_crop: bool = True
    cutmix: bool = True

    def __post_init__(self):
        check(self, label_smoothing=v.flag(), small_resolution=v.flag(), multi_crop=v.flag(), cutmix=v.flag())


#: The rows of the paper's ablation, in its order, as (key, label, switches): each row adds one
#: ingredient to the row above. The keys match ``vit2040/flowers_ablation_<key>`` in paper_numbers.json.
ABLATION_STEPS: tuple[tuple[str, str, Ablation], ...] = (
    ("none", "none", Ablation(False, False, False, False)),
    ("ls", "+ label smoothing", Ablation(True, False, False, False)),
    ("small_res", "+ small resolution", Ablation(True, True, False, False)),
    ("multicrop", "+ multi-crop", Ablation(True, True, True, False)),
    ("cutmix", "+ CutMix", Ablation(True, True, True, True)),
)


@dataclass(frozen=True)
class Stage:
    """One training stage (pretraining, fine-tuning or the from-scratch baseline).

    Book section: *ViT with 2040 images* "Full run".
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: float = 0.0

    def __post_init__(self):
        check(self, epochs=v.positive_int, batch_size=v.positive_int, lr=v.positive, weight_decay=v.non_negative,
              warmup_epochs=v.non_negative)
        if self.warmup_epochs > self.epochs:
            invalid(self, "warmup_epochs", f"be <= epochs = {self.epochs}")


@dataclass(frozen=True)
class Crops:
    """Multi-crop: ``n_global`` crops of ``global_scale`` area and ``n_local`` of ``local_scale``.

    All crops have the pretraining resolution (the paper's local crops are 112 px too).

    Book section: *ViT with 2040 images* "Multi-crop and CutMix".
    """

    n_global: int = 2
    n_local: int = 4
    global_scale: tuple[float, float] = (0.14, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    # colour jitter (p 0.8) of brightness, contrast, saturation, hue at the official strength (its
    # get_color_distortion(s=1)), and grayscale (p 0.2); 1-channel images get brightness and contrast only
    color: bool = True
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2)
    blur: bool | None = None  # Gaussian blur (p 0.5); None: on from 32 px, as the shared recipe decides

    def __post_init__(self):
        area = v.pair(v.number(0, 1, low_open=True))
        check(self, n_global=v.positive_int, n_local=v.non_negative_int, global_scale=area, local_scale=area,
              ratio=v.pair(v.positive), hflip=v.flag(), color=v.flag(),
              jitter=v.sequence(v.non_negative, length=4), blur=v.optional(v.flag()))


@dataclass(frozen=True)
class FinetuneAugment:
    """The official fine-tuning augmentation (``main_deit.py``): a random resized crop of ``scale``,
    colour jitter ``jitter`` with probability ``p_jitter``, grayscale with ``p_gray``, RandAugment
    (two operations, each applied with probability 0.5 at a magnitude drawn from 1..9 of 10) and a
    horizontal flip; no blur. 1-channel images get brightness and contrast jitter only.

    Book section: *ViT with 2040 images* "Fine-tuning".
    """

    scale: tuple[float, float] = (0.08, 1.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    p_jitter: float = 0.4
    p_gray: float = 0.2
    randaugment: bool = True
    hflip: bool = True

    def __post_init__(self):
        check(self, scale=v.pair(v.number(0, 1, low_open=True)), jitter=v.sequence(v.non_negative, length=4),
              p_jitter=v.fraction, p_gray=v.fraction, randaugment=v.flag(), hflip=v.flag())


@dataclass(frozen=True)
class Config:
    """Everything :func:`companion.vit2040.run` needs.

    Book section: *ViT with 2040 images* "Quick run" and "Full run".
    """

    mode: str  # "quick", "study" or "full" (the tier results.write records it under)
    dataset: str  # "digits" or "flowers102"
    shape: ViTShape
    pretrain: Stage
    finetune: Stage
    crops: Crops = field(default_factory=Crops)
    ablation: Ablation = field(default_factory=Ablation)
    run_ablation: bool = True  # rebuild the whole ablation table (else only the full recipe)
    cutmix_alpha: float = 0.5  # Beta(alpha, alpha) in pretraining, then lambda <- max(lambda, 1 - lambda)
    label_smoothing: float = 0.1
    finetune_mix: bool = True  # fine-tuning: mixup on even epochs, CutMix on odd ones (alpha 0.5)
    finetune_augment: FinetuneAugment = field(default_factory=FinetuneAugment)
    per_class: int = 20  # digits only: training images per class (all others are the test set)
    seeds: tuple[int, ...] = (0,)
    short_baseline: bool = True  # also train from scratch with only the fine-tuning steps
    # premise margins, fixed before any result: each trained ViT's class token beats the untrained
    # one's kNN accuracy by at least ``learn_margin`` points; at least ``cutmix_margin`` % of the
    # pretraining CutMix draws paste a region of at least one patch's area
    learn_margin: float = 5.0
    cutmix_margin: float = 50.0
    knn_k: int = 20
    device: str | None = None
    checkpoint_dir: str | None = None  # None: runtime.checkpoint_root("vit2040") in full mode
    progress: bool = False
    threads: int | None = None  # CPU threads during the run (quick: 1, faster than 2 on tensors this small)
    workers: int = 1  # CPU only: processes the seeds run in (each with ``threads`` threads); same numbers

    def __post_init__(self):
        check(
            self, mode=v.one_of("quick", "study", "full"), dataset=v.one_of("digits", "flowers102"),
            shape=v.instance(ViTShape), pretrain=v.instance(Stage), finetune=v.instance(Stage), crops=v.instance(Crops),
            ablation=v.instance(Ablation), run_ablation=v.flag(), cutmix_alpha=v.positive,
            label_smoothing=v.number(0, 1, high_open=True), finetune_mix=v.flag(),
            finetune_augment=v.instance(FinetuneAugment), per_class=v.positive_int, seeds=v.seeds,
            short_baseline=v.flag(), learn_margin=v.positive, cutmix_margin=v.number(0, 100, low_open=True,
                                                                                     high_open=True),
            knn_k=v.positive_int, device=v.optional(v.device()),
            checkpoint_dir=v.optional(v.path()), progress=v.flag(), threads=v.threads, workers=v.positive_int,
        )
        if self.shape.image_size % (2 * self.shape.patch_size):
            invalid(self, "shape", "have an image_size that is a multiple of 2 * patch_size, so that half of it "
                                   "(the small pretraining resolution) still tiles into patches")
        if self.dataset == "digits" and self.per_class >= 174:  # the rarest digit has 174 images
            invalid(self, "per_class", "be < 174 for digits (the rest of each class is the test set)")

    def pretrain_resolution(self, ablation: Ablation | None = None) -> int:
        """Half the fine-tuning resolution with ``small_resolution``, else the same."""
        a = self.ablation if ablation is None else ablation
        return self.shape.image_size // 2 if a.small_resolution else self.shape.image_size

    def with_(self, **changes) -> "Config":
        return replace(self, **changes)


def quick(**changes) -> Config:
    """CPU preset: a micro-ViT on 200 of scikit-learn's digits (20 per class, as Flowers' 2,040 images
    are 20 per class), fine-tuned at 12 px with 2-px patches, pretrained at 6 px; seconds per stage.
    80 pretraining epochs (320 steps: at 40 the linear probe could not tell the class token from
    random weights; 120 put the ten-seed study over its 10-minute CPU budget once fine-tuning got the
    official RandAugment). Two seeds of the full recipe against scratch, one process per core (the
    ablation ladder is the study preset's).

    Book section: *ViT with 2040 images* "Quick run".
    """
    cfg = Config(
        mode="quick",
        dataset="digits",
        shape=ViTShape(image_size=12, patch_size=2, dim=32, layers=2, heads=2, mlp_dim=64, in_channels=1,
                       drop_path=0.05),
        pretrain=Stage(epochs=80, batch_size=50, lr=3e-3, weight_decay=0.05, warmup_epochs=8),
        finetune=Stage(epochs=20, batch_size=50, lr=4e-3, weight_decay=0.05, warmup_epochs=2),
        crops=Crops(n_global=2, n_local=2, global_scale=(0.35, 1.0), local_scale=(0.15, 0.5), hflip=False),
        finetune_augment=FinetuneAugment(scale=(0.5, 1.0), hflip=False),
        finetune_mix=False,
        per_class=20,
        seeds=(0, 1),
        run_ablation=False,
        threads=1,
        workers=2,  # a seed per core
    )
    return replace(cfg, **changes)


def study(**changes) -> Config:
    """:func:`quick` with ten seeds and the ablation ladder (none -> + label smoothing -> + small
    resolution -> + multi-crop -> + CutMix, each step a claim): the full recipe against scratch, the
    sanity claims and every step, paired over the seeds (``run_ablation=False`` skips the ladder).
    Two seeds at a time, one per core: about six minutes on two cores (twelve in a row).

    Book section: *ViT with 2040 images* "Claims, intervals and verdicts".
    """
    return quick(**{"mode": "study", "seeds": tuple(range(10)), "run_ablation": True, **changes})


def full(**changes) -> Config:
    """The official recipe on Flowers-102: DeiT-Tiny, 800 pretraining epochs at 112 px, then 200
    fine-tuning epochs at 224 px (the official README's shortening: the paper fine-tunes 800 epochs at
    224 px, then 100 at 448 px, not run here); three seeds, so that the record's claims have paired
    samples (one seed gives numbers but no interval).

    Book section: *ViT with 2040 images* "Full run".
    """
    cfg = Config(
        mode="full",
        dataset="flowers102",
        shape=DEIT_TINY,
        pretrain=Stage(epochs=800, batch_size=256, lr=5e-4, weight_decay=1e-3, warmup_epochs=2),
        finetune=Stage(epochs=200, batch_size=256, lr=5e-4, weight_decay=1e-3, warmup_epochs=2),
        seeds=(0, 1, 2),
        run_ablation=False,
        progress=True,
    )
    return replace(cfg, **changes)


def colab(**changes) -> Config:
    """The official recipe shortened for a Colab T4 session: 200 + 100 epochs, two seeds (the fewest that
    give the claims an interval), no ablation; under an hour by :func:`~companion.vit2040.run_hours`.

    Book section: *ViT with 2040 images* "Full run".
    """
    return full(**{"pretrain": replace(full().pretrain, epochs=200),
                   "finetune": replace(full().finetune, epochs=100), "seeds": (0, 1), **changes})


PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}
