"""The Tobias experiment: random-CNN boxes against baselines, and MoCo v2 with and without the swap.

``run(config.quick())`` takes seconds on a CPU (synthetic scenes); ``run(config.full())`` is the GPU
job (CUB-200-2011 test CorLoc, MoCo v2 on 10k STL-10 images). Numbers go to ``results/tobias.json``
in percent.

Book section: *Tobias* "Quick run" and "Full run".
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import results
from ..backbones import STAGES, conv_trunk
from ..data import make_scenes
from . import config as config_mod
from .localize import activation_map, localize
from .metrics import (
    SIZE_BINS,
    best_centred_fraction,
    box_area_fraction,
    centred_boxes,
    localization_scores,
    photo_boxes,
    random_boxes,
    whole_image_boxes,
)
from .scenes import digit_scenes, off_centre_scenes
from .swap import cell_scores

CHAPTER = "tobias"


def _device(cfg) -> torch.device:
    if cfg.device:
        return torch.device(cfg.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _checkpoint_root(cfg) -> Path:
    if cfg.checkpoint_dir:
        return Path(cfg.checkpoint_dir)
    from ..runtime import checkpoint_root

    return checkpoint_root(CHAPTER)


def _mean_std(values) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _summary(per_seed: list[dict]) -> dict:
    out = {}
    for key in per_seed[0]:
        out[f"{key}_mean"], out[f"{key}_std"] = _mean_std([s[key] for s in per_seed])
    out["per_seed"] = per_seed
    return out


# ----------------------------------------------------------------------------------- localization


def _trunk_of(cfg: config_mod.LocalizationConfig, seed: int, layer4_stride: int | None = None, arch=None):
    arch = arch or cfg.arch
    stride = cfg.layer4_stride if layer4_stride is None else layer4_stride
    return conv_trunk(arch, cfg.stage if arch == cfg.arch else None, init=cfg.init, seed=seed,
                      layer4_stride=stride if arch.startswith("resnet") else 2)


def _baselines(gts, size: int, seed: int) -> dict:
    """Boxes that never look at the image: whole image, best centred box (tuned on ``gts``), random."""
    n = len(gts)
    fraction, _ = best_centred_fraction(gts, size, size)
    return {"whole": whole_image_boxes(n, size, size), "centred": centred_boxes(n, size, size, fraction),
            "random": random_boxes(n, size, size, seed=seed)}, fraction


def run_localization(cfg: config_mod.LocalizationConfig, device: torch.device | None = None, verbose: bool = True) -> dict:
    """Random CNN vs whole-image, best centred and random boxes on synthetic scenes, by object size,
    and on the bundled photos with hand-drawn boxes.

    Seed ``s`` pairs a random network (weights from ``s``) with its own scene set (``scene_seed + s``)
    and the centred box tuned on that set. Returns CorLoc and mean IoU (percent, per-class averages):
    per seed and their mean and standard deviation for the random CNN and each baseline, the same
    broken down by :data:`SIZE_BINS` over all scene sets (with the median ratio of predicted to true
    box area), torchvision's stride-32 network (``torchvision``), the scenes as ``make_scenes`` frames
    them (``framed``) and the photos (``photos``).
    Book section: *Tobias* "Quick run".
    """
    device = device or torch.device("cpu")
    kw = dict(classes=cfg.classes, scale=cfg.scale, clutter=cfg.clutter)
    size = cfg.image_size
    rows = {name: [] for name in ("random_cnn", "whole", "centred", "random")}
    fractions, ious, hits, ratios, bins = [], [], [], [], []
    base_ious = {"whole": [], "centred": []}
    first = None
    for seed in cfg.seeds:
        scenes = off_centre_scenes(cfg.n_scenes, size, cfg.canvas, seed=cfg.scene_seed + seed, **kw)
        first = scenes if first is None else first
        gts, labels = scenes.boxes, scenes.labels
        trunk = _trunk_of(cfg, seed).to(device)
        res = localize(trunk, scenes.images, cfg.threshold, cfg.batch_size)
        rows["random_cnn"].append(localization_scores(res.boxes, gts, labels))
        boxes, fraction = _baselines(gts, size, cfg.scene_seed + seed)
        fractions.append(fraction)
        for name, b in boxes.items():
            rows[name].append(localization_scores(b, gts, labels))
        iou = _ious(res.boxes, gts)
        ious.append(iou)
        hits.append((iou > 0.5).float())
        ratios.append(box_area_fraction(res.boxes, size, size) / box_area_fraction(gts, size, size))
        bins.append(_bin_index(gts, size))
        for name in base_ious:
            base_ious[name].append(_ious(boxes[name], gts))
    out = {name: _summary(r) for name, r in rows.items()}
    out["centred"]["fraction_per_seed"] = fractions

    by_size = {}
    cnn_iou, cnn_hit, ratio, bins = torch.cat(ious), torch.cat(hits), torch.cat(ratios), torch.cat(bins)
    base = {name: torch.cat(v) for name, v in base_ious.items()}
    for b, (name, _, _) in enumerate(SIZE_BINS):
        sel = bins == b
        if not sel.any():
            continue
        row = {"n": int(sel.sum()), "random_cnn_miou": 100 * float(cnn_iou[sel].mean()),
               "random_cnn_corloc": 100 * float(cnn_hit[sel].mean()),
               "random_cnn_area_ratio": float(ratio[sel].median())}
        for bname, bi in base.items():
            row[f"{bname}_miou"] = 100 * float(bi[sel].mean())
            row[f"{bname}_corloc"] = 100 * float((bi[sel] > 0.5).float().mean())
        by_size[name] = row
    out["by_size"] = by_size

    if cfg.torchvision_seeds and cfg.arch.startswith("resnet"):
        tv = [localization_scores(localize(_trunk_of(cfg, seed, layer4_stride=2).to(device), first.images,
                                           cfg.threshold, cfg.batch_size).boxes, first.boxes, first.labels)
              for seed in cfg.torchvision_seeds]
        grid = -(-size // STAGES[cfg.arch][cfg.stage or "layer4"])
        out["torchvision"] = {**_summary(tv), "grid": grid}
        out["random_cnn"]["grid"] = -(-size // _trunk_of(cfg, 0).stride)

    if cfg.framed_seeds:
        # same object sizes in pixels as the off-centre scenes: the scale is relative to the image side
        zoom = cfg.canvas / cfg.image_size
        framed_scale = (min(0.9, cfg.scale[0] * zoom), min(0.9, cfg.scale[1] * zoom))
        framed = make_scenes(cfg.n_scenes, size=size, seed=cfg.scene_seed, **{**kw, "scale": framed_scale})
        fr = [localization_scores(localize(_trunk_of(cfg, seed).to(device), framed.images, cfg.threshold,
                                           cfg.batch_size).boxes, framed.boxes, framed.labels)
              for seed in cfg.framed_seeds]
        f_boxes, f_frac = _baselines(framed.boxes, size, cfg.scene_seed)
        out["framed"] = {
            "random_cnn": _summary(fr),
            "centred": {**localization_scores(f_boxes["centred"], framed.boxes, framed.labels), "fraction": f_frac},
            "whole": localization_scores(f_boxes["whole"], framed.boxes, framed.labels),
        }
    if cfg.photos:
        out["photos"] = run_photos(cfg, device)
    if verbose:
        r, c = out["random_cnn"], out["centred"]
        print(f"random CNN: CorLoc {r['corloc_mean']:.1f} ± {r['corloc_std']:.1f} | centred {c['corloc_mean']:.1f} | "
              f"whole {out['whole']['corloc_mean']:.1f} | random {out['random']['corloc_mean']:.1f} (CorLoc, "
              f"{len(cfg.seeds)} seeds)", flush=True)
    return out


def run_photos(cfg: config_mod.LocalizationConfig, device: torch.device | None = None) -> dict:
    """The random CNN, the whole image and the best centred box on the bundled photos, scored against
    the hand-drawn boxes of :func:`~companion.tobias.metrics.photo_boxes` (no class average: one object
    per photo). The centred box's size is tuned on these photos (an oracle).
    Book section: *Tobias* "Real photos, hand-drawn boxes".
    """
    from ..data import load_photos

    device = device or torch.device("cpu")
    size = cfg.photo_size
    images, names = load_photos(tuple(cfg.photos), size=size)
    gts, record = photo_boxes(names, size)
    per_seed, iou_rows = [], []
    for seed in cfg.photo_seeds:
        trunk = _trunk_of(cfg, seed, arch=cfg.photo_arch).to(device)
        boxes = localize(trunk, images, cfg.threshold, cfg.batch_size).boxes
        per_seed.append(localization_scores(boxes, gts))
        iou_rows.append(_ious(boxes, gts))
    boxes, fraction = _baselines(gts, size, 0)
    out = {"random_cnn": _summary(per_seed), "photos": list(names), "drawn": record["drawn"],
           "note": f"boxes drawn by the companion authors by eye on {record['drawn']}"}
    out["random_cnn"]["iou_per_photo"] = [100 * float(v) for v in torch.stack(iou_rows).mean(0)]
    for name in ("whole", "centred"):
        out[name] = {**localization_scores(boxes[name], gts),
                     "iou_per_photo": [100 * float(v) for v in _ious(boxes[name], gts)]}
    out["centred"]["fraction"] = fraction
    out["object_area"] = [float(a) for a in box_area_fraction(gts, size, size)]
    return out


def _ious(pred, gts) -> torch.Tensor:
    from ..boxes import best_iou

    return best_iou(pred, gts)


def _bin_index(gts, size: int) -> torch.Tensor:
    area = box_area_fraction(gts, size, size)
    idx = torch.zeros(len(area), dtype=torch.long)
    for b, (_, lo, hi) in enumerate(SIZE_BINS):
        idx[(area >= lo) & (area < hi)] = b
    return idx


# ------------------------------------------------------------------------------------------- CUB


def _trunk(arch: str, init: str, seed: int, pretrained: bool, layer4_stride: int = 2):
    try:
        return conv_trunk(arch, None, init=init, seed=seed, pretrained=pretrained,
                          layer4_stride=layer4_stride if arch.startswith("resnet") else 2)
    except Exception as e:  # only the pretrained weights need the network
        if not pretrained:
            raise
        import torch.hub

        raise RuntimeError(
            f"torchvision's ImageNet weights for {arch} could not be loaded ({type(e).__name__}: {e}). They are "
            f"downloaded once into {torch.hub.get_dir()}/checkpoints; fetch them there on a machine with a "
            "network, or drop the pretrained model from CUBConfig.models."
        ) from e


def run_cub(cfg: config_mod.CUBConfig, device: torch.device, verbose: bool = True) -> dict:
    """CorLoc and mean IoU on the CUB-200-2011 test split for every model of ``cfg.models`` (one pass
    over the images), and the whole-image / best centred-box baselines. Downloads CUB (1.1 GB) and,
    for the pretrained model, torchvision's ImageNet ResNet-50 weights.
    Book section: *Tobias* "Full run".
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from ..data import cub200
    from .cub import CUBLocalization

    records = [r for r in cub200() if not r.is_train]
    if cfg.limit:
        records = records[: cfg.limit]
    data = CUBLocalization(records, cfg.image_size)
    loader = DataLoader(data, batch_size=cfg.batch_size, num_workers=cfg.num_workers, shuffle=False,
                        pin_memory=device.type == "cuda")
    trunks = {name: _trunk(arch, init, seed, pre, cfg.layer4_stride).to(device)
              for name, arch, init, seed, pre in cfg.models}
    boxes = {name: [] for name in trunks}
    gts, labels = [], []
    began = time.perf_counter()
    for images, box, label in tqdm(loader, desc="CUB test", leave=False):
        x = images.to(device, non_blocking=True).float() / 255.0
        for name, trunk in trunks.items():
            boxes[name].append(localize(trunk, x).boxes)
        gts.append(box)
        labels.append(label)
    gts, labels = torch.cat(gts), torch.cat(labels)
    size = cfg.image_size
    out = {name: localization_scores(torch.cat(b), gts, labels) for name, b in boxes.items()}
    randoms = [out[name] for name, _, _, _, pre in cfg.models if not pre and name.startswith("random_resnet50_seed")]
    if randoms:
        out["random_resnet50"] = {k: v for k, v in _summary(randoms).items() if k != "per_seed"}
    fraction, _ = best_centred_fraction(gts, size, size)
    out["centred"] = {**localization_scores(centred_boxes(len(gts), size, size, fraction), gts, labels), "fraction": fraction}
    out["whole"] = localization_scores(whole_image_boxes(len(gts), size, size), gts, labels)
    out["n_images"] = len(gts)
    out["seconds"] = time.perf_counter() - began
    if verbose:
        for name in trunks:
            print(f"CUB test, {name}: CorLoc {out[name]['corloc']:.1f}, mIoU {out[name]['miou']:.1f}", flush=True)
        print(f"CUB test, centred box ({fraction:.2f}): CorLoc {out['centred']['corloc']:.1f}", flush=True)
    return out


# ------------------------------------------------------------------------------------------- SSL


def ssl_data(cfg: config_mod.SSLConfig) -> dict:
    """Pretraining images and labelled train/test images for the probes, as float tensors in [0, 1].

    Digits (:func:`~companion.tobias.scenes.digit_scenes`, grey when ``cfg.gray``): ``n_train``
    scenes of the benchmark's training digits for pretraining and the probes' training set,
    ``n_test`` of its held-out digits. Scenes: ``n_train`` pretraining scenes (also the probes' training set) and ``n_test`` held-out
    scenes; backgrounds vary independently of the class. STL-10: a seeded ``n_train`` subset of the
    unlabeled split; the probes use the labeled train (5,000) and test (8,000) splits.
    """
    if cfg.dataset == "digits":
        train = digit_scenes(cfg.n_train, cfg.image_size, "train", seed=cfg.data_seed)
        test = digit_scenes(cfg.n_test, cfg.image_size, "test", seed=cfg.data_seed)
        if cfg.gray:  # grey levels (N, 1, H, W): in colour the instance task is solved by colour alone
            train.images, test.images = train.images.mean(1, keepdim=True), test.images.mean(1, keepdim=True)
        return {"pretrain": train.images, "train": (train.images, train.labels, train.backgrounds),
                "test": (test.images, test.labels, test.backgrounds)}
    if cfg.dataset == "scenes":
        kw = dict(size=cfg.image_size, classes=cfg.classes, scale=cfg.scale, class_background=0.0)
        train = make_scenes(cfg.n_train, seed=cfg.data_seed, **kw)
        test = make_scenes(cfg.n_test, seed=cfg.data_seed + 1000, **kw)
        return {"pretrain": train.images, "train": (train.images, train.labels, train.backgrounds),
                "test": (test.images, test.labels, test.backgrounds)}
    if cfg.dataset == "stl10":
        from ..data import torchvision_dataset

        unlabeled = torchvision_dataset("stl10", split="unlabeled")
        g = torch.Generator().manual_seed(cfg.data_seed)
        idx = torch.randperm(len(unlabeled.data), generator=g)[: cfg.n_train].sort().values.numpy()
        as_float = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float() / 255.0  # noqa: E731  (N, 3, 96, 96)
        train = torchvision_dataset("stl10", split="train")
        test = torchvision_dataset("stl10", split="test")
        return {"pretrain": as_float(unlabeled.data[idx]),
                "train": (as_float(train.data), torch.as_tensor(train.labels).long(), None),
                "test": (as_float(test.data), torch.as_tensor(test.labels).long(), None)}
    raise ValueError(f"unknown SSL dataset {cfg.dataset!r}; choose 'digits', 'scenes' or 'stl10'")


def swap_scores(images: torch.Tensor, cfg: config_mod.SSLConfig, device: torch.device, batch_size: int = 128) -> torch.Tensor:
    """The ``(N, g, g)`` cell scores of a random ``cfg.mask_arch`` for every pretraining image (once)."""
    trunk = conv_trunk(cfg.mask_arch, cfg.mask_stage, seed=cfg.mask_seed).to(device)
    out = []
    for chunk in images.split(batch_size):
        x = chunk.to(device)
        if cfg.mask_size is not None and x.shape[-1] != cfg.mask_size:
            x = F.interpolate(x, size=(cfg.mask_size, cfg.mask_size), mode="bilinear", align_corners=False).clamp(0, 1)
        out.append(cell_scores(activation_map(trunk, x, batch_size=batch_size), cfg.grid))
    return torch.cat(out)


def _evaluate(encoder, data: dict, resolution: int, cfg: config_mod.SSLConfig, device, seed: int) -> dict:
    from ..ssl.pretrain import cpu_threads

    with cpu_threads(cfg.pretrain.num_threads if torch.device(device).type == "cpu" else None):
        return _evaluate_features(encoder, data, resolution, cfg, device, seed)


def _evaluate_features(encoder, data: dict, resolution: int, cfg: config_mod.SSLConfig, device, seed: int) -> dict:
    from ..ssl.evaluate import extract_features, knn_accuracy, linear_probe

    def feats(x):
        if x.shape[-1] != resolution:
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        return extract_features(encoder, x, device=device)

    (xtr, ytr, btr), (xte, yte, bte) = data["train"], data["test"]
    ftr, fte = feats(xtr), feats(xte)
    out = {"knn": 100 * knn_accuracy(ftr, ytr, fte, yte, k=cfg.knn_k)}
    if btr is not None:  # how much the features know about the background (lower: more invariant)
        out["background_knn"] = 100 * knn_accuracy(ftr, btr, fte, bte, k=cfg.knn_k)
    if cfg.linear_epochs:
        out["linear"] = 100 * linear_probe(ftr, ytr, fte, yte, epochs=cfg.linear_epochs, seed=seed, device=device)
    return out


def run_ssl(cfg: config_mod.SSLConfig, device: torch.device, checkpoint_root: Path | None = None, verbose: bool = True) -> dict:
    """MoCo v2 (``cfg.pretrain``) with ``p = 0`` (baseline) and ``p = cfg.p`` (Tobias), same seeds, same
    code; kNN, background kNN and linear accuracy of each, and of the untrained encoder of each seed
    (the weights both arms start from) as the floor.
    Book section: *Tobias* "Background swap inside MoCo v2".
    """
    from ..runtime import seed_everything
    from ..ssl.encoders import build_encoder
    from .pretraining import pretrain_with_swap

    data = ssl_data(cfg)
    scores = swap_scores(data["pretrain"], cfg, device)
    res = cfg.pretrain.resolution
    rows = {"untrained": [], "baseline": [], "tobias": []}
    # one folder per schedule: a colab run's checkpoints are never resumed by a full run, nor the reverse
    length = f"{cfg.pretrain.steps}steps" if cfg.pretrain.steps is not None else f"{cfg.pretrain.epochs}ep"
    for seed in cfg.seeds:
        seed_everything(seed)  # the weights pretrain() builds for this seed, never trained
        untrained = build_encoder(cfg.pretrain.encoder, in_channels=int(data["pretrain"].shape[1]),
                                  **cfg.pretrain.encoder_kwargs).to(device)
        rows["untrained"].append(_evaluate(untrained, data, res, cfg, device, seed))
        for arm, p in (("baseline", 0.0), ("tobias", cfg.p)):
            pre = replace(cfg.pretrain, seed=seed, device=str(device))
            if checkpoint_root is not None and pre.checkpoint_dir is not None:
                pre = replace(pre, checkpoint_dir=str(checkpoint_root / f"moco_{cfg.dataset}_{length}_{arm}_seed{seed}"))
            began = time.perf_counter()
            model, fit_result = pretrain_with_swap(data["pretrain"], scores, pre, p=p, grid=cfg.grid)
            row = _evaluate(model.encoder, data, res, cfg, device, seed)
            row["final_loss"] = fit_result.last("loss")
            rows[arm].append(row)
            if verbose:
                print(f"MoCo v2 {arm} (p={p}) seed {seed}: kNN {row['knn']:.1f}% (untrained "
                      f"{rows['untrained'][-1]['knn']:.1f}%, {fit_result.steps} steps, "
                      f"{time.perf_counter() - began:.0f} s)", flush=True)
    out = {arm: _summary(r) for arm, r in rows.items()}
    out["p"] = cfg.p
    out["steps"] = cfg.pretrain.steps if cfg.pretrain.steps is not None else None
    out["dataset"] = cfg.dataset
    return out


def _per_seed(summary: dict, key: str) -> list[float]:
    return [row[key] for row in summary["per_seed"]]


def claims_of(metrics: dict, tier: str, ssl_cfg: config_mod.SSLConfig | None = None) -> list[dict]:
    """The chapter's claims from a run's metrics (those its parts measured with at least 2 seeds).

    - ``random_cnn_vs_centred``: CorLoc of the random CNN minus CorLoc of the best centred box,
      paired over seeds (each seed: its own network and scene set, the box tuned on that set);
    - ``sanity_knn`` / ``sanity_linear``: MoCo v2 minus the untrained encoder, paired over seeds;
    - ``premise_moco_learns``: the same kNN difference, above ``ssl_cfg.learn_margin``;
    - ``premise_background_signal``: MoCo v2 minus the untrained encoder in background-style kNN, above
      ``ssl_cfg.background_margin`` (the background carries signal MoCo v2 picks up, for the swap to remove);
    - ``swap_linear``: MoCo v2 + Tobias minus MoCo v2 (linear probe), paired over seeds;
    - ``swap_background_knn``: the same for the background kNN (the claim: lower).
    The two swap claims name both premises: when either does not hold they are "not testable".
    ``ssl_cfg``: the run's :class:`~companion.tobias.config.SSLConfig` (its margins; default: its defaults).

    Book section: *Tobias* "Claims, intervals and verdicts".
    """
    out = []
    loc = metrics.get("localization")
    if loc and len(loc["random_cnn"]["per_seed"]) >= 2:
        out.append(results.claim(
            "random_cnn_vs_centred",
            "An untrained CNN's activation map localizes objects: its boxes are correct (IoU > 0.5) more "
            "often than the best centred box, which never looks at the image.",
            "CorLoc (%) of the random network's boxes minus CorLoc of the best centred box (size tuned on "
            "the same scenes), synthetic scenes with objects anywhere in the frame, paired over seeds "
            "(network weights and scene set)",
            tier, _per_seed(loc["random_cnn"], "corloc"), _per_seed(loc["centred"], "corloc")))
    cub = metrics.get("cub")
    if cub and "random_resnet50" in cub:
        pass  # CUB has one centred box for all seeds: reported in the table, not as a paired claim
    ssl = metrics.get("ssl")
    if ssl and len(ssl["baseline"]["per_seed"]) >= 2:
        what = {"digits": "digit scenes", "scenes": "synthetic scenes", "stl10": "STL-10"}.get(ssl.get("dataset"), "")
        for key, name in (("knn", "kNN"), ("linear", "linear-probe")):
            if key not in ssl["baseline"]["per_seed"][0]:
                continue
            out.append(results.claim(
                f"sanity_{key}",
                f"MoCo v2 pretraining teaches the encoder something: its {name} accuracy beats the same "
                "network at its random initial weights.",
                f"{name} accuracy (%) on held-out {what}, MoCo v2 minus the untrained encoder, paired over seeds",
                tier, _per_seed(ssl["baseline"], key), _per_seed(ssl["untrained"], key)))
        margins = ssl_cfg if ssl_cfg is not None else config_mod.SSLConfig()
        premises = []
        if len(ssl["baseline"]["per_seed"]) >= results.MIN_N:  # a premise decides; below MIN_N it cannot
            premises.append(results.claim(
                "premise_moco_learns",
                "MoCo v2 learns the classes of this testbed: its kNN accuracy beats the untrained encoder's "
                f"by at least {margins.learn_margin:g} points.",
                f"kNN accuracy (%) on held-out {what}, MoCo v2 minus the untrained encoder, paired over "
                f"seeds; must lie above +{margins.learn_margin:g}",
                tier, _per_seed(ssl["baseline"], "knn"), _per_seed(ssl["untrained"], "knn"),
                margin=margins.learn_margin))
            if "background_knn" in ssl["baseline"]["per_seed"][0]:
                premises.append(results.claim(
                    "premise_background_signal",
                    "The background carries class-irrelevant signal that MoCo v2 picks up: its features predict "
                    f"the background style at least {margins.background_margin:g} points better (kNN) than the "
                    "untrained encoder's.",
                    f"background-style kNN accuracy (%) on held-out {what}, MoCo v2 minus the untrained encoder, "
                    f"paired over seeds; must lie above +{margins.background_margin:g}",
                    tier, _per_seed(ssl["baseline"], "background_knn"), _per_seed(ssl["untrained"], "background_knn"),
                    margin=margins.background_margin))
        out.extend(premises)
        needs = tuple(c["id"] for c in premises)
        if "linear" in ssl["baseline"]["per_seed"][0]:
            out.append(results.claim(
                "swap_linear",
                "The Tobias background swap improves what MoCo v2 learns (the paper: better downstream "
                "accuracy).",
                f"linear-probe accuracy (%) on held-out {what}, MoCo v2 + Tobias (p = {ssl['p']:g}) minus "
                "MoCo v2, paired over seeds (same initial weights and augmentation draws)",
                tier, _per_seed(ssl["tobias"], "linear"), _per_seed(ssl["baseline"], "linear"), premises=needs))
        if "background_knn" in ssl["baseline"]["per_seed"][0]:
            out.append(results.claim(
                "swap_background_knn",
                "The background swap makes the features rely less on the background.",
                "kNN accuracy (%) at predicting the background style (lower: less background in the features), "
                f"MoCo v2 + Tobias minus MoCo v2, {what}, paired over seeds",
                tier, _per_seed(ssl["tobias"], "background_knn"), _per_seed(ssl["baseline"], "background_knn"),
                direction="less", premises=needs))
    return out


# ------------------------------------------------------------------------------------------- run


def scale_of(cfg, device: torch.device | None = None, metrics: dict | None = None) -> str:
    """What was run, in words, for the "paper vs this book" table; the CUB image count is the one the run
    measured (``metrics["cub"]["n_images"]``) when given, else what the config asks for."""
    parts = []
    if cfg.localization is not None:
        c = cfg.localization
        net = f"random {c.arch}" + (" (layer4 at stride 1)" if c.layer4_stride == 1 and c.stage in (None, "layer4") else "")
        if c.stage not in (None, "layer4"):
            net += f" cut after {c.stage}"
        parts.append(f"{len(c.seeds)} x {c.n_scenes} synthetic scenes at {c.image_size} px, {net}, one seed per set")
        if c.photos:
            parts.append(f"{len(c.photos)} photos with hand-drawn boxes, random {c.photo_arch} at {c.photo_size} px, "
                         f"{results.plural(len(c.photo_seeds), 'seed')}")
    if cfg.cub is not None:
        n_images = (metrics or {}).get("cub", {}).get("n_images") or cfg.cub.limit or 5794
        parts.append(f"CUB-200-2011 test ({n_images} images) at {cfg.cub.image_size} px")
    if cfg.ssl is not None:
        s = cfg.ssl
        what = {"digits": f"{s.n_train} digit scenes at {s.image_size} px",
                "scenes": f"{s.n_train} scenes at {s.image_size} px"}.get(s.dataset, f"{s.n_train} STL-10 unlabeled images")
        length = f"{s.pretrain.steps} steps" if s.pretrain.steps else f"{s.pretrain.epochs} epochs"
        seeds = f"{results.plural(len(s.seeds), 'seed')} per arm"
        parts.append(f"MoCo v2 ({s.pretrain.encoder} encoder, {s.pretrain.resolution} px, {length}) on {what}, {seeds}")
    where = {"cpu": "CPU", "cuda": "GPU", "mps": "Apple GPU"}.get(device.type, device.type) if device else None
    return "; ".join(parts) + (f"; on {where}" if where else "")


def expectation(cfg) -> str:
    """What a full or colab run should show, and on what that rests (the paper's numbers are not
    verified: none of them was found in a readable source)."""
    parts = []
    if cfg.cub is not None:
        parts.append("CUB: CorLoc of the random and the pretrained ResNet-50s beside the whole-image and best "
                     "centred boxes; the paper reports that a random CNN localizes objects, but its CUB numbers "
                     "are not verified, so there is no value to expect")
    if cfg.ssl is not None:
        parts.append("MoCo v2: both arms above the untrained encoder in kNN and linear probe (sanity claims); the "
                     "swap arm's linear probe above the baseline's is the paper's claim, its size not verified")
    return "; ".join(parts) + "."


def announce(cfg, verbose: bool = True) -> str:
    """Print the run's estimated T4 time (:func:`~companion.tobias.estimate.run_hours`), the result to
    expect and where MoCo v2 checkpoints; returns the text."""
    from ..runtime import announce as say
    from .estimate import run_hours

    what = scale_of(cfg)
    ckpt = _checkpoint_root(cfg) if cfg.ssl is not None and cfg.ssl.pretrain.checkpoint_dir is not None else None
    return say(f"tobias ({what})", run_hours(cfg), expectation(cfg), ckpt, verbose=verbose)


def run(cfg=None, verbose: bool = True, command: str | None = None) -> dict:
    """Run the preset (default: quick), record its metrics and claims with
    :func:`companion.results.write` under the preset's tier, and return the metrics with the claims
    under ``"claims"`` (the record keeps them apart).

    Quick and study pin ``cfg.threads`` torch threads (and one BLAS thread), so they repeat bit for bit.
    Book section: *Tobias* "Quick run" and "Full run".
    """
    from threadpoolctl import threadpool_limits

    from ..runtime import torch_threads

    cfg = cfg or config_mod.quick()
    device = _device(cfg)
    if cfg.mode == "full":
        announce(cfg, verbose)
    metrics: dict = {}
    timings: dict = {}
    began = time.perf_counter()
    pin = cfg.threads is not None and device.type == "cpu"
    with torch_threads(cfg.threads if pin else None), (threadpool_limits(1) if pin else contextlib.nullcontext()):
        for part, fn in (("localization", lambda: run_localization(cfg.localization, device, verbose)),
                         ("cub", lambda: run_cub(cfg.cub, device, verbose)),
                         ("ssl", lambda: run_ssl(cfg.ssl, device, _checkpoint_root(cfg), verbose))):
            if getattr(cfg, part) is None:
                continue
            t0 = time.perf_counter()
            metrics[part] = fn()
            timings[f"{part}_s"] = round(time.perf_counter() - t0, 1)
    claims = claims_of(metrics, cfg.mode, cfg.ssl)
    seeds = sorted({*(cfg.localization.seeds if cfg.localization else ()), *(cfg.ssl.seeds if cfg.ssl else ())})
    wall = time.perf_counter() - began
    results.write(CHAPTER, cfg.mode, metrics, scale_of(cfg, device, metrics), claims=claims, seeds=seeds,
                  command=command, wall_s=wall, timings=timings, preset=cfg.mode, config=cfg)
    return {**metrics, "claims": claims}
