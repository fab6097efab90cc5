"""Presets for the PSOL experiment: ``quick()`` (CPU, synthetic scenes, 3 seeds), ``study()``
(the same with 5 seeds, longer-trained regressors and the extra arm on every seed), ``full()`` (CUB, GPU) and ``colab()`` (the full preset, sized for Colab).

Book sections: *PSOL* "Quick run" and "Full run".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import validation as v
from ..backbones import INITS, STAGES
from ..validation import check, invalid
from .ddt import SIGN_CONVENTIONS


@dataclass
class PSOLConfig:
    """Everything :func:`companion.psol.run` needs. Fields marked *quick* or *full* apply to one mode
    (*quick* fields also apply to the study preset, which is the quick run with more seeds)."""

    mode: str = "quick"
    seed: int = 0
    # --- quick / study: the whole pipeline is repeated on new scenes and new weights for each seed
    # (the first seed also gives the table, the figures and the CAM / encoder-DDT / oracle rows)
    seeds: tuple[int, ...] = (0, 1, 2)
    threads: int | None = 1  # torch CPU threads in quick / study runs (fixed: bit-repeatable numbers)
    workers: int = 2  # quick / study: processes the seeds run in, one per core (the same numbers)
    centred_side: float = 0.6  # the centred box baseline: sides = this fraction of the image
    fixed_sides: tuple[float, ...] = tuple(round(0.3 + 0.05 * i, 2) for i in range(15))  # 0.3 .. 1.0
    # --- quick data: synthetic "classes", one object type each, on varied cluttered backgrounds
    n_train: int = 480
    n_test: int = 200
    image_size: int = 64
    classes: int = 4
    object_scale: tuple[float, float] = (0.4, 0.8)
    clutter: int = 6
    # --- DDT on a random CNN (quick / study: the extra arm's teacher) or an ImageNet-pretrained one (full)
    ddt_arch: str = "resnet18"
    ddt_stage: str = "layer1"
    ddt_init: str = "default"
    ddt_input_size: int = 64
    ddt_pretrained: bool = False
    sign: str = "norm"
    # --- quick: a small CNN classifier trained on the scenes' classes: its features after
    # encoder_stage feed DDT (the regressor's pseudo boxes), its trunk starts the regressor, its scores classify
    encoder_widths: tuple[int, ...] = (16, 32, 64, 128)
    encoder_stage: int = 2
    encoder_steps: int = 100
    encoder_lr: float = 3e-3
    encoder_batch_size: int = 32
    # --- the box regressor
    regressor_arch: str = "small"  # "small" (quick: the classifier's trunk) or a torchvision arch (full)
    regressor_pretrained: bool = False
    regressor_size: int = 64  # input side while training (full: 224)
    regressor_steps: int = 150  # quick; full derives steps from regressor_epochs
    regressor_epochs: int = 6
    regressor_batch_size: int = 32
    regressor_lr: float = 1e-3
    regressor_optimizer: str = "adamw"
    regressor_weight_decay: float = 1e-4
    head_lr_mult: float = 2.0
    loss_weight: float = 50.0
    crop_scale: tuple[float, float] | None = None  # None: flip only (no random resized crop)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    oracle: bool = True  # also train the regressor on the true boxes (the ceiling)
    # the extra arm: the same regressor on the random-CNN DDT boxes, for every seed ("all": the study)
    # or the first seed only ("first": the quick preset, which must stay under a minute)
    random_arm: str = "first"
    # premise_pseudo_boxes_good: the pseudo boxes' CorLoc on the training scenes beats the best fixed
    # centred box on the same scenes by at least this many points (fixed before any result was seen)
    premise_margin: float = 10.0
    # --- full: CUB-200-2011 and the classifier for Top-k Loc
    data_root: str | None = None
    download: bool = True
    classifier_arch: str = "resnet50"
    classifier_pretrained: bool = False
    classifier_epochs: int = 20
    classifier_lr: float = 0.01
    classifier_batch_size: int = 64
    eval_resize: int = 256
    eval_crop: int = 224
    num_workers: int = 4
    checkpoint_dir: str | None = None
    checkpoint_every: int = 200
    limit_train: int | None = None  # full: use only the first images (a smoke test); None = all
    limit_test: int | None = None
    device: str | None = "cpu"  # quick: always the CPU, so the numbers match everywhere; full: None = auto
    progress: bool = True
    write_results: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        side = v.number(0, 1, low_open=True)
        check(
            self, mode=v.one_of("quick", "study", "full"), seed=v.seed, seeds=v.seeds, threads=v.threads,
            workers=v.positive_int, centred_side=side, fixed_sides=v.sequence(side), n_train=v.positive_int, n_test=v.positive_int,
            image_size=v.positive_int, classes=v.integer(2), object_scale=v.pair(side), clutter=v.non_negative_int,
            ddt_arch=v.one_of(*STAGES), ddt_stage=v.text(), ddt_init=v.one_of(*INITS), ddt_input_size=v.positive_int,
            ddt_pretrained=v.flag(), sign=v.one_of(*SIGN_CONVENTIONS), encoder_widths=v.sequence(v.positive_int),
            encoder_stage=v.positive_int, encoder_steps=v.positive_int, encoder_lr=v.positive,
            encoder_batch_size=v.positive_int, regressor_arch=v.one_of("small", *STAGES),
            regressor_pretrained=v.flag(), regressor_size=v.positive_int, regressor_steps=v.positive_int,
            regressor_epochs=v.positive_int, regressor_batch_size=v.positive_int, regressor_lr=v.positive,
            regressor_optimizer=v.one_of("adamw", "sgd"), regressor_weight_decay=v.non_negative,
            head_lr_mult=v.positive, loss_weight=v.positive, crop_scale=v.optional(v.pair(side)),
            crop_ratio=v.pair(v.positive), flip=v.fraction, oracle=v.flag(), random_arm=v.one_of("all", "first"),
            premise_margin=v.positive, data_root=v.optional(v.path()),
            download=v.flag(), classifier_arch=v.torchvision_model(), classifier_pretrained=v.flag(),
            classifier_epochs=v.positive_int, classifier_lr=v.positive, classifier_batch_size=v.positive_int,
            eval_resize=v.positive_int, eval_crop=v.positive_int, num_workers=v.non_negative_int,
            checkpoint_dir=v.optional(v.path()), checkpoint_every=v.non_negative_int,
            limit_train=v.optional(v.positive_int), limit_test=v.optional(v.positive_int),
            device=v.optional(v.device()), progress=v.flag(), write_results=v.flag(), extra=v.mapping(v.text()),
        )
        if self.ddt_stage not in STAGES[self.ddt_arch]:
            invalid(self, "ddt_stage",
                    f"be a stage of ddt_arch={self.ddt_arch!r}: one of {tuple(STAGES[self.ddt_arch])}")
        if self.ddt_pretrained and self.ddt_init != "default":
            invalid(self, "ddt_init", "be 'default' when ddt_pretrained is True (pretrained weights are not drawn)")
        if self.encoder_stage > len(self.encoder_widths):
            invalid(self, "encoder_stage", f"be <= len(encoder_widths) = {len(self.encoder_widths)}")
        if self.eval_crop > self.eval_resize:
            invalid(self, "eval_crop", f"be <= eval_resize = {self.eval_resize}")

    def replace(self, **changes) -> "PSOLConfig":
        return replace(self, **changes)


def quick(**changes) -> PSOLConfig:
    """CPU preset, under a minute on one thread: 480 + 200 synthetic 64-px scenes of 4 object
    classes, the whole pipeline run for 3 seeds.

    DDT runs on the quick classifier (100 steps of batch 32) cut after stage 2, the stand-in for
    the paper's pretrained DDT. The regressor is that classifier's trunk with the paper's head,
    trained for 150 steps with flips on those pseudo boxes (see the chapter for why the paper's
    random crops are left out at 64 px). The extra arm, DDT on a random ResNet-18 cut after
    ``layer1`` and the regressor on its boxes, trains its regressor on the first seed only.
    """
    return PSOLConfig(mode="quick").replace(**changes)


def study(**changes) -> PSOLConfig:
    """The quick run's data and models, repeated over 5 seeds (scenes, random CNN, encoder and
    regressors all redrawn per seed), so the claims get intervals that can decide them. The
    regressors train for 400 steps instead of 150 (at 150 even the regressor on the true boxes
    stays far below DDT: it has not converged), and the extra arm runs on every seed.
    """
    return PSOLConfig(mode="study", seeds=(0, 1, 2, 3, 4), random_arm="all", regressor_steps=400).replace(**changes)


def full(**changes) -> PSOLConfig:
    """GPU preset: CUB-200-2011, ImageNet VGG16 (pool5, 448 px) for DDT, a ResNet-50 regressor for
    6 epochs with the paper's crops and flips, and a fine-tuned ResNet-50 classifier for Top-k Loc.

    Batch 64 (the paper used 256) with the paper's learning-rate rule ``1e-3 * batch / 256``.
    """
    batch = 64
    return PSOLConfig(
        mode="full",
        ddt_arch="vgg16", ddt_stage="pool5", ddt_input_size=448, ddt_pretrained=True,
        regressor_arch="resnet50", regressor_pretrained=True, regressor_size=224,
        regressor_batch_size=batch, regressor_lr=1e-3 * batch / 256, regressor_optimizer="sgd",
        crop_scale=(0.2, 1.0), oracle=False, classifier_pretrained=True, device=None,
    ).replace(**changes)


def colab(**changes) -> PSOLConfig:
    """The full preset with the classifier fine-tuned for 10 epochs instead of 20, the longest part of
    the run (:func:`companion.psol.run_hours`). The comparison the chapter tests, the regressor against
    DDT in GT-known Loc, does not use the classifier; only Top-k Loc does.
    """
    return full(**{"classifier_epochs": 10, **changes})


#: Preset name -> factory (``python -m companion.psol --preset NAME``).
PRESETS = {"quick": quick, "study": study, "colab": colab, "full": full}
