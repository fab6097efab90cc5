"""The S3L experiment: one network pretrained along several resolution schedules under the same budget,
then evaluated by kNN and fine-tuned at the full resolution, beside the untrained network.

Book section: *S3L* "Quick run".
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F

from .. import results
from ..runtime import seed_everything
from ..ssl.augment import GPUAugment
from ..ssl.evaluate import extract_features, knn_accuracy
from ..ssl.methods import METHODS
from ..ssl.pretrain import PretrainConfig
from ..train import FitConfig
from .architecture import FrozenTrunk, TruncatedResNet, build_resnet, to_full_resnet
from .config import S3LConfig
from .cost import count_flops, flops_per_image, step_seconds, train_step_flops
from .finetune import accuracy, classification_step, finetune, finetune_augment, warmup_last_stage
from .schedule import Stage, check_stages, multi_stage_pretrain, split_budget

CHAPTER = "s3l"


def res_key(resolution: int) -> str:
    """Results keys name resolutions ``r16``, ``r32`` (a bare number reads badly in dotted look-ups).
    Book section: *S3L* "Quick run"."""
    return f"r{resolution}"


def resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, resolution, resolution)``, bilinear with antialiasing (a no-op at the
    same size). Book section: *S3L* "What a pixel costs"."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)


def load_data(config: S3LConfig):
    """``(train_images, train_labels, test_images, test_labels)`` as tensors at ``config.resolution``.

    Scenes are drawn at the full resolution (lower ones are resized from them); CIFAR-100 comes from
    :func:`companion.data.torchvision_dataset` (downloaded and checked, or a clear error).
    Book sections: *S3L* "Quick run" and "Full run".
    """
    if config.dataset in ("digits", "glyphs"):
        from ..ssl.bench import bench_data

        d = bench_data(config.resolution, dataset=config.dataset)
        return d.train_x, d.train_y, d.test_x, d.test_y
    if config.dataset == "scenes":
        from ..data import make_scenes

        scenes = make_scenes(config.n_train + config.n_test, size=config.resolution, classes=config.classes,
                             seed=config.data_seed, scale=tuple(config.object_scale), clutter=config.clutter,
                             class_background=0.0)
        n = config.n_train
        return scenes.images[:n], scenes.labels[:n], scenes.images[n:], scenes.labels[n:]
    if config.dataset == "cifar100":
        from ..data import torchvision_dataset

        out = []
        for split in ("train", "test"):
            ds = torchvision_dataset("cifar100", split, download=config.download)
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div_(255)  # (N, 3, 32, 32)
            out += [resize(x, config.resolution), torch.tensor(ds.targets)]
        return tuple(out)
    raise ValueError(f"dataset must be 'digits', 'glyphs', 'scenes' or 'cifar100', got {config.dataset!r}")


def build_method(config: S3LConfig, channels: int = 3):
    """The SSL module around a fresh :class:`TruncatedResNet`; the same seed gives the same start for every
    arm. Book section: *S3L* "Quick run"."""
    seed_everything(config.seed)
    encoder = TruncatedResNet(config.arch, config.width, config.small_stem, channels)
    return METHODS[config.method](encoder, **config.method_kwargs)


def pretrain_config(config: S3LConfig, device: str) -> PretrainConfig:
    """The :class:`companion.ssl.PretrainConfig` every stage starts from (batched augmentation, no
    checkpoint folder yet). Book section: *S3L* "MoCo v2 on the target data"."""
    base = PretrainConfig.quick if config.mode == "quick" else PretrainConfig.full
    return base(
        method=config.method, batch_size=config.batch_size, lr=config.lr, weight_decay=config.weight_decay,
        augment=dict(config.augment), blur=config.blur, seed=config.seed, device=device, progress=config.progress, steps=1, epochs=None,
        checkpoint_dir=None, checkpoint_every=config.checkpoint_every, gpu_augment=True,
    )


def measure_step_seconds(config: S3LConfig, data: torch.Tensor, resolutions, device: str, repeats: int = 5,
                         clock: str = "wall") -> dict:
    """Median seconds of one pretraining step (augment two views, forward, backward, SGD, momentum update)
    at each resolution, on a copy of the method: what a wall-clock budget buys here.
    Book section: *S3L* "Multi-stage resolution"."""
    out = {}
    for r in resolutions:
        method = build_method(config, int(data.shape[1])).to(device)
        opt = torch.optim.SGD(method.parameters(), lr=config.lr, momentum=0.9)
        aug = GPUAugment(r, blur=config.blur, **config.augment)
        batch = data[: config.batch_size].to(device)

        def step():
            loss = method(aug(batch), aug(batch))["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            method.on_step(0, 1)

        out[r] = step_seconds(step, repeats=repeats, warmup=2, device=device, clock=clock)
    return out


def plan_arm(config: S3LConfig, arm: str, cost: dict) -> list[Stage]:
    """The stages of ``arm`` with their lengths under ``config.budget``; ``cost`` is seconds or FLOPs per
    step by resolution (unused for epochs). Book section: *S3L* "Quick run"."""
    resolutions = list(config.arms[arm])
    check_stages(resolutions)
    fractions = config.stage_fractions(arm)
    if config.budget == "epochs":
        return [Stage(r, epochs=max(1, round(f * config.epochs))) for r, f in zip(resolutions, fractions)]
    if config.budget == "steps":
        return [Stage(r, steps=max(1, round(f * config.budget_steps))) for r, f in zip(resolutions, fractions)]
    amount = config.budget_s if config.budget == "time" else config.budget_gflops * 1e9
    steps = split_budget(resolutions, fractions, amount, cost)
    return [Stage(r, steps=s) for r, s in zip(resolutions, steps)]


def knn_percent(encoder, data, resolution: int, config: S3LConfig, device: str) -> float:
    """kNN accuracy (%) of ``encoder`` with train and test images resized to ``resolution``.
    Book section: *S3L* "Evaluating the features"."""
    train, train_y, test, test_y = data
    f_train = extract_features(encoder, resize(train, resolution), device=device)
    f_test = extract_features(encoder, resize(test, resolution), device=device)
    return 100.0 * knn_accuracy(f_train, train_y, f_test, test_y, k=config.knn_k, temperature=config.knn_temperature)


def _steps(steps: int, epochs: int | None, n: int, batch: int) -> int:
    return max(1, epochs * (n // batch)) if epochs else steps


def classification_flops(net, resolution: int, channels: int, num_classes: int) -> float:
    """FLOPs per image of one fine-tuning step (forward and backward) of ``net`` at ``resolution``.
    Book section: *S3L* "What a pixel costs"."""
    probe = copy.deepcopy(net).train()
    device = next(probe.parameters()).device
    x = torch.rand(2, channels, resolution, resolution, device=device)
    y = torch.zeros(2, dtype=torch.long, device=device)
    step = classification_step()
    return count_flops(lambda: step(probe, (x, y))["loss"].backward()) / 2


def finetune_arm(encoder: TruncatedResNet, data, config: S3LConfig, device: str, name: str) -> dict:
    """Full ResNet from ``encoder`` (fresh ``layer4`` and ``fc``), warm-up with the trunk frozen, then
    fine-tuning of everything at ``config.resolution``; test accuracy after each (percent).
    Book section: *S3L* "Evaluating the features"."""
    train, train_y, test, test_y = data
    classes = int(max(train_y.max(), test_y.max())) + 1
    seed_everything(config.seed + 1000)  # the new layer4 and fc start alike in every arm
    net, report = to_full_resnet(copy.deepcopy(encoder).cpu(), classes)
    net = net.to(device)
    x, y = train.to(device), train_y.to(device)
    channels = int(train.shape[1])
    aug = finetune_augment(config.resolution, p_flip=config.finetune_flip)
    ckpt = config.checkpoint_dir
    common = dict(batch_size=config.finetune_batch_size, optimizer="sgd", weight_decay=config.finetune_weight_decay,
                  seed=config.seed, progress=config.progress, device=device, checkpoint_every=config.checkpoint_every)
    began = time.perf_counter()
    warm_steps = _steps(config.warmup_steps, config.warmup_epochs, len(x), config.finetune_batch_size)
    warm_cfg = FitConfig(steps=warm_steps, lr=config.finetune_lr, schedule="constant",
                         checkpoint_dir=f"{ckpt}/{name}/warmup" if ckpt else None, **common)
    warmup_last_stage(net, x, y, warm_cfg, augment=aug)
    warm_acc = accuracy(net, test, test_y)
    ft_steps = _steps(config.finetune_steps, config.finetune_epochs, len(x), config.finetune_batch_size)
    ft_cfg = FitConfig(steps=ft_steps, lr=config.finetune_lr, checkpoint_dir=f"{ckpt}/{name}/finetune" if ckpt else None,
                       **common)
    finetune(net, x, y, ft_cfg, augment=aug, mixup_alpha=config.mixup_alpha)
    seconds = time.perf_counter() - began
    flops = (warm_steps * classification_flops(FrozenTrunk(copy.deepcopy(net)), config.resolution, channels, classes)
             + ft_steps * classification_flops(net, config.resolution, channels, classes)) * config.finetune_batch_size
    return {"warmup_acc": warm_acc, "finetune": accuracy(net, test, test_y), "finetune_seconds": seconds,
            "finetune_gflops": flops / 1e9, "finetune_steps": warm_steps + ft_steps,
            "loaded_tensors": report.loaded, "new_tensors": len(report.missing)}


def supervised_percent(data, resolution: int, config: S3LConfig, device: str) -> float:
    """The premise's arm: the full ResNet trained from scratch with labels at ``resolution`` (train and test
    images resized to it), ``premise_steps`` steps of the fine-tuning recipe, and its test accuracy (%)
    there: what the labels can get out of images at that size. Book section: *S3L* "Claims"."""
    train, train_y, test, test_y = data
    classes = int(max(train_y.max(), test_y.max())) + 1
    seed_everything(config.seed + 2000)  # the same start at every resolution
    net = build_resnet(config.arch, config.width, config.small_stem, int(train.shape[1]), num_classes=classes)
    net = net.to(device)
    fit_cfg = FitConfig(steps=config.premise_steps, lr=config.finetune_lr, batch_size=config.finetune_batch_size,
                        optimizer="sgd", weight_decay=config.finetune_weight_decay, seed=config.seed,
                        progress=False, device=device)
    aug = finetune_augment(resolution, p_flip=config.finetune_flip)
    finetune(net, resize(train, resolution).to(device), train_y.to(device), fit_cfg, augment=aug)
    return accuracy(net, resize(test, resolution), test_y)


def linear_percent(encoder, data, resolution: int, config: S3LConfig, device: str) -> float:
    """Linear-probe accuracy (%) of the frozen ``encoder`` at ``resolution`` (the sanity_linear claim).
    Book section: *S3L* "Evaluating the features"."""
    from ..ssl.evaluate import linear_probe

    train, train_y, test, test_y = data
    f_train = extract_features(encoder, resize(train, resolution), device=device)
    f_test = extract_features(encoder, resize(test, resolution), device=device)
    return 100.0 * linear_probe(f_train, train_y, f_test, test_y, seed=config.seed, device=device)


#: Per-arm numbers averaged over seeds in the record (the rest is kept per seed).
_AVERAGED = ("knn", "linear", "warmup_acc", "finetune", "pretrain_steps", "pretrain_gflops", "finetune_gflops",
             "total_gflops", "pretrain_seconds", "finetune_seconds")


def run(config: S3LConfig | None = None, record: bool = True) -> dict:
    """Repeat :func:`run_seed` for every seed of ``config.seeds`` (threads pinned to ``config.threads``),
    average the arms, compute the claims and record them in ``results/s3l.json`` under ``config.tier``:

    - ``small_resolution``: fine-tuned accuracy after 8 px pretraining minus after 16 px pretraining, the
      same steps (so about a quarter of the pretraining FLOPs), paired by seed; it holds when the interval is
      above -1 point (at least the accuracy, within a point, at lower cost);
    - ``multistage`` (when the arm exists): the same for the 8 -> 16 px schedule;
    - ``premise_resolution`` (:func:`premise_runs`): the full ResNet trained with labels at 16 px minus at
      8 px beats ``premise_margin``; the two claims above name it as their premise, so they read "not
      testable at this scale" unless it holds;
    - ``sanity_knn`` / ``sanity_linear``: the full-resolution arm against the untrained network.

    Book section: *S3L* "Quick run".
    """
    from ..runtime import torch_threads
    from .config import quick

    config = config or quick()
    if config.tier == "full" and config.budget == "epochs":  # the presets run_hours can estimate
        announce(config)
    began = time.perf_counter()
    with torch_threads(config.threads):
        runs = [run_seed(seed_config(config, s), record=False) for s in config.seeds]
        # the premise's networks: trained with labels from scratch at each resolution, by seed
        supervised = premise_runs(config)
    arms = {}
    for name in runs[0]["arms"]:
        per = [r["arms"][name] for r in runs]
        arms[name] = dict(per[0])
        for key in _AVERAGED:
            if key in per[0]:
                arms[name][key] = sum(p[key] for p in per) / len(per)
    out = dict(runs[0])
    out["arms"] = arms
    out["per_seed"] = {name: {k: [r["arms"][name][k] for r in runs] for k in ("knn", "linear", "finetune")
                              if k in runs[0]["arms"][name]} for name in arms}
    out["seeds"] = list(config.seeds)
    out.pop("seed", None)
    out["supervised_per_seed"] = supervised
    out["supervised"] = {r: sum(v) / len(v) for r, v in supervised.items()}
    claims = s3l_claims(config, out["per_seed"], out["supervised_per_seed"]) if len(config.seeds) >= 2 else []
    out["claims"] = claims
    if record:
        mode = config.mode
        train_n = runs[0]["n_train"]
        scale = (f"{mode}: {config.dataset} ({train_n} train / {runs[0]['n_test']} test) at {config.resolution} px, "
                 f"{config.arch} width {config.width} without its last stage, {config.method}, "
                 f"{_budget_text(config)} per schedule, fine-tuned at {config.resolution} px, "
                 f"{results.plural(len(config.seeds), 'seed')}, {runs[0]['device']}")
        metrics = {k: v for k, v in out.items() if k != "claims"}
        results.write(CHAPTER, mode, metrics, scale=scale, claims=claims, seeds=list(config.seeds),
                      wall_s=time.perf_counter() - began, config=config)
    return out


def announce(config: S3LConfig) -> str:
    """Print what a full-tier run (the full or colab preset) will do: its estimated T4 time
    (:func:`~companion.s3l.cost.run_hours`), what to expect and where it checkpoints.
    Book section: *S3L* "Full run"."""
    from .. import runtime
    from .cost import run_hours

    arms = ", ".join(" -> ".join(map(str, r)) + " px" for r in config.arms.values())
    what = (f"S3L on {config.dataset}: {config.arch} pretrained at {arms} for {config.epochs} epochs each, "
            f"fine-tuned {config.warmup_epochs} + {config.finetune_epochs} epochs at {config.resolution} px, "
            f"{results.plural(len(config.seeds), 'seed')}")
    low, high = min(min(r) for r in config.arms.values()), config.resolution
    expect = (f"the pretrained networks above the untrained one (kNN and fine-tuned accuracy), and the {low} px "
              f"schedule's fine-tuned accuracy within about a point of the {high} px schedule's at about "
              f"{(low / high) ** 2:.2g} of its pretraining FLOPs (claims small_resolution and sanity_knn, with 2 seeds "
              "or more). The paper publishes no CIFAR-100 number: the direction is its claim, the size of the gap "
              "is not verified")
    return runtime.announce(what, run_hours(config), expect, config.checkpoint_dir)


def seed_config(config: S3LConfig, seed: int) -> S3LConfig:
    """``config`` for one seed: its checkpoints in ``<checkpoint_dir>/seed<seed>``, so seeds never
    resume each other's."""
    ckpt = f"{config.checkpoint_dir}/seed{seed}" if config.checkpoint_dir else None
    return config.replace(seed=seed, checkpoint_dir=ckpt)


def premise_runs(config: S3LConfig) -> dict[str, list[float]]:
    """``{res_key(r): [accuracy per seed]}`` of :func:`supervised_percent` at both
    :func:`premise_resolutions`, for each of ``config.premise_seeds`` (default: ``config.seeds``);
    ``{}`` when there is no premise to check. Book section: *S3L* "Claims"."""
    pair = premise_resolutions(config)
    if not pair:
        return {}
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = load_data(config)
    seeds = config.seeds if config.premise_seeds is None else config.premise_seeds
    return {res_key(r): [supervised_percent(data, r, config.replace(seed=s), device) for s in seeds] for r in pair}


def premise_resolutions(config: S3LConfig) -> tuple[int, ...]:
    """``(full, small)``: the resolutions the premise compares (the data's and the ``low`` arm's smallest),
    or ``()`` when ``config.premise`` is off or there is no ``low`` arm below the full resolution."""
    if not config.premise or "low" not in config.arms or min(config.arms["low"]) >= config.resolution:
        return ()
    return (config.resolution, min(config.arms["low"]))


def s3l_claims(config: S3LConfig, per_seed: dict, supervised: dict | None = None) -> list[dict]:
    """The chapter's claims from per-seed accuracies (see :func:`run`); ``supervised`` maps ``res_key(r)`` to
    the premise's per-seed accuracies trained with labels at ``r``. Book section: *S3L* "Claims"."""
    low = min(config.arms["low"]) if "low" in config.arms else None
    full = max(config.arms["full"]) if "full" in config.arms else None
    tier = config.mode
    out = []
    premises = ()
    pair = premise_resolutions(config)
    if pair and supervised:
        big, small = pair
        m = config.premise_margin
        out.append(results.claim(
            "premise_resolution",
            f"The testbed carries information at {big} px that {small} px lacks: the same network trained with "
            f"labels at {big} px beats it trained at {small} px by at least {m:g} points",
            f"test accuracy, trained and evaluated at {big} px minus at {small} px ({config.premise_steps} "
            "supervised steps from scratch each), paired by seed",
            tier, supervised[res_key(big)], supervised[res_key(small)], test="superiority", margin=m))
        premises = ("premise_resolution",)
    ref = "full" if "full" in per_seed else next(iter(config.arms))
    if config.finetune and "untrained" in per_seed and (low or "multistage" in per_seed):
        # the paper's claims compare fine-tuned accuracies: they say something only where pretraining helps
        # fine-tuning at all (on glyphs the frozen features need not beat random ones; see the sanity checks)
        out.append(results.claim(
            "premise_pretraining_helps",
            f"Pretraining ({ref} schedule) helps fine-tuning: fine-tuned at {config.resolution} px it beats the "
            "same network fine-tuned from random initialization",
            f"fine-tuned top-1 accuracy at {config.resolution} px, pretrained minus untrained, paired by seed",
            tier, per_seed[ref]["finetune"], per_seed["untrained"]["finetune"]))
        premises = premises + ("premise_pretraining_helps",)
    if low and full and config.finetune:
        out.append(results.claim(
            "small_resolution",
            f"Pretraining at small resolution ({low} px, the same steps, so about {(low / full) ** 2:.2g} of the "
            f"FLOPs) then fine-tuning at {full} px reaches at least the accuracy of pretraining at {full} px "
            "(within 1 point)",
            f"fine-tuned top-1 accuracy at {full} px, {low} px-pretrained minus {full} px-pretrained, paired by seed",
            tier, per_seed["low"]["finetune"], per_seed["full"]["finetune"], test="non-inferiority", margin=1.0,
            premises=premises))
    if "multistage" in per_seed and full and config.finetune:
        stages = " -> ".join(map(str, config.arms["multistage"]))
        out.append(results.claim(
            "multistage", f"A {stages} px schedule (the same total steps, fewer FLOPs) then fine-tuning reaches at "
            f"least the accuracy of pretraining at {full} px (within 1 point)",
            f"fine-tuned top-1 accuracy at {full} px, multi-stage minus {full} px-pretrained, paired by seed",
            tier, per_seed["multistage"]["finetune"], per_seed["full"]["finetune"], test="non-inferiority", margin=1.0,
            premises=premises))
    out.append(results.claim(
        "sanity_knn", f"MoCo v2 pretraining ({ref} schedule) beats the same network at random initialization",
        f"kNN accuracy at {config.resolution} px, pretrained minus untrained, paired by seed", tier,
        per_seed[ref]["knn"], per_seed["untrained"]["knn"], kind="sanity"))
    if "linear" in per_seed[ref]:
        out.append(results.claim(
            "sanity_linear", f"MoCo v2 pretraining ({ref} schedule) beats the same network at random initialization",
            f"linear-probe accuracy at {config.resolution} px, pretrained minus untrained, paired by seed", tier,
            per_seed[ref]["linear"], per_seed["untrained"]["linear"], kind="sanity"))
    return out


def run_seed(config: S3LConfig, record: bool = False) -> dict:
    """Pretrain along every schedule of ``config.arms`` under the same budget (seed ``config.seed``),
    evaluate each (kNN and a linear probe at the full resolution, kNN at its own, then warm-up and
    fine-tuning), beside the untrained network. Book section: *S3L* "Quick run"."""
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = load_data(config)
    train = data[0]
    channels = int(train.shape[1])
    resolutions = sorted({r for stages in config.arms.values() for r in stages} | {config.resolution})
    probe = build_method(config, channels).to(device)
    for stages in config.arms.values():
        check_stages(stages, probe.encoder)

    # cost of one image at each resolution: encoder forward, and a whole pretraining step
    forward = {res_key(r): flops_per_image(probe.encoder, r, channels) / 1e6 for r in resolutions}
    step_flops = {r: train_step_flops(probe, r, channels) for r in resolutions}
    cost, source = {}, None
    if config.budget == "time":
        if config.step_seconds:
            cost, source = {int(r): float(s) for r, s in config.step_seconds.items()}, "pinned"
        else:
            cost, source = measure_step_seconds(config, train, resolutions, device), "measured"
    elif config.budget == "flops":
        cost, source = {r: f * config.batch_size for r, f in step_flops.items()}, "counted"

    pcfg = pretrain_config(config, device)
    arms: dict[str, dict] = {}
    encoders = {}
    all_stages = []
    for arm in config.arms:
        stages = plan_arm(config, arm, cost)
        method = build_method(config, channels)
        arm_cfg = pcfg.replace(checkpoint_dir=f"{config.checkpoint_dir}/{arm}" if config.checkpoint_dir else None)
        method, stage_results = multi_stage_pretrain(method, train, stages, arm_cfg, queue=config.queue)
        all_stages += stage_results
        encoders[arm] = method.encoder
        own = sorted(set(config.arms[arm]) | {config.resolution})
        arms[arm] = {
            "resolutions": [s.resolution for s in stage_results],
            "steps": [s.steps for s in stage_results],
            "pretrain_steps": sum(s.steps for s in stage_results),
            "pretrain_seconds": sum(s.seconds for s in stage_results),
            "pretrain_gflops": sum(s.flops for s in stage_results) / 1e9,
            "final_loss": stage_results[-1].loss,
            "resumed_from": [s.resumed_from for s in stage_results],
            "knn": knn_percent(method.encoder, data, config.resolution, config, device),
            **({"linear": linear_percent(method.encoder, data, config.resolution, config, device)}
               if config.linear_probe else {}),
            "knn_at": {res_key(r): knn_percent(method.encoder, data, r, config, device) for r in own},
        }
    untrained = build_method(config, channels).encoder.to(device)
    arms["untrained"] = {"resolutions": [], "steps": [], "pretrain_steps": 0, "pretrain_seconds": 0.0,
                         "pretrain_gflops": 0.0, "knn": knn_percent(untrained, data, config.resolution, config, device)}
    if config.linear_probe:
        arms["untrained"]["linear"] = linear_percent(untrained, data, config.resolution, config, device)
    encoders["untrained"] = untrained
    if config.finetune:
        for name, encoder in encoders.items():
            arms[name].update(finetune_arm(encoder, data, config, device, name))
            arms[name]["total_gflops"] = arms[name]["pretrain_gflops"] + arms[name]["finetune_gflops"]
    per_epoch = len(train) // config.batch_size
    timed: dict[int, list] = {}
    for stage in all_stages:
        timed.setdefault(stage.resolution, []).append((stage.seconds, stage.steps))

    full_net = build_resnet(config.arch, config.width, config.small_stem, channels, num_classes=2)
    out = {
        "arms": arms,
        "forward_mflops": forward,  # per image, the pretraining network (no last stage)
        "full_network_mflops": flops_per_image(full_net, config.resolution, channels) / 1e6,
        "step_mflops": {res_key(r): f / 1e6 for r, f in step_flops.items()},  # per image, one pretraining step
        # measured in this run: seconds of one pass over the training set at each resolution
        "epoch_seconds": {res_key(r): per_epoch * sum(s for s, _ in v) / sum(n for _, n in v) for r, v in sorted(timed.items())},
        "budget": {"kind": config.budget, "steps": config.budget_steps if config.budget == "steps" else None,
                   "seconds": config.budget_s if config.budget == "time" else None,
                   "gflops": config.budget_gflops if config.budget == "flops" else None,
                   "epochs": config.epochs if config.budget == "epochs" else None, "step_cost_source": source,
                   "step_seconds": {res_key(r): s for r, s in cost.items()} if config.budget == "time" else None},
        "queue": config.queue if config.method == "moco" else None,
        "seed": config.seed,
        "n_train": len(train), "n_test": len(data[2]), "device": str(device),
    }
    if record:
        raise ValueError("run_seed does not record: call run(config) (it records every seed with the claims)")
    return out


def _budget_text(config: S3LConfig) -> str:
    if config.budget == "steps":
        return f"{config.budget_steps} steps"
    if config.budget == "time":
        return f"{config.budget_s:g} s"
    if config.budget == "flops":
        return f"{config.budget_gflops:g} GFLOPs"
    return f"{config.epochs} epochs"
