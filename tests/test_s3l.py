"""S3L: FLOPs vs resolution, the network without its last stage, multi-stage schedules, MoCo's queue between
stages, warm-up and fine-tuning, the experiment's bookkeeping and the quick claim."""

import json

import pytest
import torch

from companion import results, s3l
from companion.data import DatasetMissingError
from companion.s3l import config as s3l_config
from companion.s3l.architecture import FrozenTrunk, TruncatedResNet, build_resnet, to_full_resnet, total_stride
from companion.s3l.cost import flops_per_image, train_step_flops
from companion.s3l.schedule import (Stage, check_stages, load_stage_checkpoint, multi_stage_pretrain,
                                    prepare_next_stage, split_budget, stage_checkpoint_dir)
from companion.ssl import MoCo, PretrainConfig
from companion.ssl.pretrain import pretrain
from companion.train import FitConfig


def _moco(width=4, queue=64, seed=0):
    torch.manual_seed(seed)
    return MoCo(TruncatedResNet("resnet10", width), dim=16, queue_size=queue, momentum=0.9)


def _images(n=96, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _pcfg(**kw):
    base = dict(batch_size=16, lr=0.05, steps=2, progress=False, device="cpu", gpu_augment=True)
    base.update(kw)
    return PretrainConfig.quick(**base)


# ------------------------------------------------------------------ cost


@pytest.mark.parametrize("arch,small_stem,sizes", [("resnet18", True, (16, 32)), ("resnet18", False, (64, 128)),
                                                  ("resnet50", True, (8, 16))])
def test_trunk_flops_grow_with_the_square_of_the_resolution(arch, small_stem, sizes):
    enc = TruncatedResNet(arch, width=8, small_stem=small_stem)
    lo, hi = (flops_per_image(enc, r) for r in sizes)
    assert hi / lo == pytest.approx((sizes[1] / sizes[0]) ** 2, rel=0.02)
    full = build_resnet(arch, 8, small_stem, num_classes=10)  # with layer4 and fc: fc adds a constant
    lo, hi = (flops_per_image(full, r) for r in sizes)
    assert hi / lo == pytest.approx(4.0, rel=0.05)


def test_train_step_flops_count_forward_backward_and_leave_the_method_untouched():
    m = _moco()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    fwd = flops_per_image(m.encoder, 16)
    step = train_step_flops(m, 16)
    # query forward + backward (about 3x) and the key forward (1x), plus the small heads
    assert 3.5 * fwd < step < 5.0 * fwd
    assert train_step_flops(m, 32) / step == pytest.approx(4.0, rel=0.05)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # queue and BN statistics unchanged


# ------------------------------------------------------------------ architecture


def test_total_stride_of_each_variant():
    assert total_stride(build_resnet("resnet18", 8, small_stem=False)) == 32
    assert total_stride(build_resnet("resnet18", 8, small_stem=True)) == 8
    assert total_stride(TruncatedResNet("resnet18", 8, small_stem=True)) == 4
    assert total_stride(TruncatedResNet("resnet50", 8, small_stem=False)) == 16
    with pytest.raises(TypeError, match="torchvision ResNet"):
        total_stride(torch.nn.Conv2d(3, 3, 3))


def test_resolution_smaller_than_the_total_stride_is_an_error():
    enc = TruncatedResNet("resnet18", 8, small_stem=False)  # stride 16
    assert enc(torch.rand(2, 3, 16, 16)).shape == (2, enc.feature_dim)
    with pytest.raises(ValueError, match="smaller than the network's total stride 16"):
        enc(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="total stride 16"):
        check_stages([8, 16, 32], enc)
    check_stages([16, 32], enc)


@pytest.mark.parametrize("stages,message", [
    ([16, 8], "increase strictly"), ([8, 16, 16], "increase strictly"), ([], "empty"), ([0, 8], "positive integer"),
    ([Stage(8, steps=0)], "steps of the 8 px stage"),
])
def test_bad_stage_lists_are_clear_errors(stages, message):
    with pytest.raises(ValueError, match=message):
        check_stages(stages)


def test_full_resnet_gets_every_pretrained_weight_and_only_layer4_and_fc_are_new():
    enc = TruncatedResNet("resnet18", 8)
    for p in enc.parameters():  # make the pretrained weights recognisable
        torch.nn.init.normal_(p)
    net, report = to_full_resnet(enc, num_classes=5)
    keys = set(net.state_dict())
    # (batch norm's num_batches_tracked counters are filled in silently by PyTorch, never reported missing)
    assert set(report.missing) == {k for k in keys if k.startswith(("layer4.", "fc.")) and "num_batches" not in k}
    assert report.unexpected == () and report.loaded == len(enc.net.state_dict())
    for k, v in enc.net.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    assert net.fc.out_features == 5 and float(net.fc.weight.detach().std()) == pytest.approx(0.01, rel=0.2)
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 5)
    with pytest.raises(TypeError, match="TruncatedResNet"):
        to_full_resnet(build_resnet("resnet18", 8), 5)


def test_warmup_trains_only_the_new_stage_then_unfreezes():
    net, _ = to_full_resnet(TruncatedResNet("resnet10", 4), num_classes=3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = _images(32), torch.randint(0, 3, (32,))
    s3l.warmup_last_stage(net, x, y, FitConfig(steps=3, batch_size=16, lr=0.1, optimizer="sgd", progress=False))
    after = net.state_dict()
    weights = {n for n, _ in net.named_parameters()}
    for k, v in after.items():
        if k in weights and not k.startswith(("layer4.", "fc.")):  # frozen trunk weights: bit-identical
            assert torch.equal(before[k], v), k
    # as S3L's main_freeze.py: the frozen trunk runs in training mode, so its batch-norm statistics move
    assert not torch.equal(before["layer1.0.bn1.running_mean"], after["layer1.0.bn1.running_mean"])
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    assert not torch.equal(before["layer4.0.conv1.weight"], after["layer4.0.conv1.weight"])
    assert all(p.requires_grad for p in net.parameters())
    wrapped = FrozenTrunk(net).train()
    assert wrapped.net.layer1.training and wrapped.net.layer4.training
    assert not any(p.requires_grad for p in wrapped.net.layer1.parameters())
    kept = FrozenTrunk(net, freeze_bn=True).train()  # the variant: the trunk's statistics stay put
    assert not kept.net.layer1.training and kept.net.layer4.training
    with pytest.raises(TypeError, match="freeze_bn must be True or False"):
        FrozenTrunk(net, freeze_bn="yes")


def test_finetune_trains_everything_and_checks_its_input():
    net, _ = to_full_resnet(TruncatedResNet("resnet10", 4), num_classes=3)
    before = net.conv1.weight.clone()
    x, y = _images(32), torch.randint(0, 3, (32,))
    res = s3l.finetune(net, x, y, FitConfig(steps=2, batch_size=16, lr=0.1, optimizer="sgd", progress=False),
                       augment=s3l.finetune_augment(16), mixup_alpha=1.0)
    assert res.steps == 2 and not torch.equal(before, net.conv1.weight)
    assert 0.0 <= s3l.accuracy(net, x, y) <= 100.0
    with pytest.raises(ValueError, match="one class index per image"):
        s3l.finetune(net, x, y[:5], FitConfig(steps=1, batch_size=16, progress=False))
    with pytest.raises(ValueError, match="mixup_alpha"):
        s3l.classification_step(mixup_alpha=-1.0)


# ------------------------------------------------------------------ multi-stage schedules


def test_split_budget_gives_each_stage_its_share():
    cost = {8: 0.01, 16: 0.02, 32: 0.05}
    assert split_budget([8, 16, 32], [1 / 3] * 3, 3.0, cost) == [100, 50, 20]
    assert split_budget([32], [1.0], 1e-6, cost) == [1]  # at least one step
    with pytest.raises(ValueError, match="sum to 1"):
        split_budget([8, 16], [0.5, 0.6], 1.0, cost)
    with pytest.raises(ValueError, match="no cost per step known for resolution"):
        split_budget([8, 64], [0.5, 0.5], 1.0, cost)


def _trained_moco():
    m = _moco()
    m, _ = pretrain(m, None, _images(), _pcfg(resolution=8))
    return m


def test_keeping_the_queue_changes_nothing_between_stages():
    m = _trained_moco()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    assert prepare_next_stage(m, "keep") == {"queue": "keep", "size": 64}
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


@pytest.mark.parametrize("policy", ["reset", "refill"])
def test_reset_and_refill_change_only_the_queue(policy):
    m = _trained_moco()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    prepare_next_stage(m, policy, data=_images(), resolution=16, generator=torch.Generator().manual_seed(0))
    after = m.state_dict()
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert "queue" in changed and changed <= {"queue", "queue_ptr"}
    assert int(m.queue_ptr) == 0
    assert torch.allclose(m.queue.norm(dim=1), torch.ones(64), atol=1e-5)
    if policy == "refill":  # the key encoder's keys of new views: not random directions
        mean_cos = (m.queue @ m.queue.t()).mean()
        assert mean_cos > 0.2


def test_refill_and_unknown_policies_are_checked():
    m = _trained_moco()
    with pytest.raises(ValueError, match="queue must be one of"):
        prepare_next_stage(m, "drop")
    with pytest.raises(ValueError, match="needs the data"):
        prepare_next_stage(m, "refill")
    with pytest.raises(ValueError, match="at least K=64 images"):
        prepare_next_stage(m, "refill", data=_images(10), resolution=16)


def test_continuing_from_a_stage_checkpoint_loads_every_weight(tmp_path):
    data = _images()
    stages = [Stage(8, steps=2), Stage(16, steps=2)]
    cfg = _pcfg(checkpoint_dir=str(tmp_path))
    in_memory, stage_results = multi_stage_pretrain(_moco(), data, stages, cfg)
    assert [r.resolution for r in stage_results] == [8, 16] and [r.steps for r in stage_results] == [2, 2]
    assert stage_results[1].flops == pytest.approx(4 * stage_results[0].flops, rel=0.05)

    # a new process: load the 8 px stage from its file, then run the 16 px stage as the schedule does
    fresh = _moco(seed=123)
    names = load_stage_checkpoint(fresh, stage_checkpoint_dir(tmp_path, 0, 8))
    assert set(names) == set(fresh.state_dict())  # every tensor, queue and pointer included
    prepare_next_stage(fresh, "keep")
    continued, _ = pretrain(fresh, None, data, cfg.replace(resolution=16, steps=2, seed=cfg.seed + 1, checkpoint_dir=None))
    for k, v in in_memory.state_dict().items():
        assert torch.allclose(continued.state_dict()[k].float(), v.float(), atol=1e-6), k

    with pytest.raises(RuntimeError):
        load_stage_checkpoint(_moco(width=8), stage_checkpoint_dir(tmp_path, 0, 8))
    with pytest.raises(FileNotFoundError, match="run the earlier stage first"):
        load_stage_checkpoint(fresh, tmp_path / "nowhere")


def test_multi_stage_rejects_bad_schedules_before_training():
    with pytest.raises(ValueError, match="increase strictly"):
        multi_stage_pretrain(_moco(), _images(), [Stage(16, steps=1), Stage(8, steps=1)], _pcfg())
    with pytest.raises(ValueError, match="needs steps or epochs"):
        multi_stage_pretrain(_moco(), _images(), [Stage(8)], _pcfg())
    with pytest.raises(ValueError, match="total stride"):
        m = MoCo(TruncatedResNet("resnet10", 4, small_stem=False), dim=16, queue_size=64)
        multi_stage_pretrain(m, _images(), [Stage(8, steps=1)], _pcfg())


# ------------------------------------------------------------------ configuration and experiment


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="budget must be one of"):
        s3l_config.quick(budget="money")
    with pytest.raises(ValueError, match="budget_gflops"):
        s3l_config.quick(budget="flops")
    with pytest.raises(ValueError, match="2 stages but 3 budget fractions"):
        s3l_config.study(arms={"multistage": (8, 16)}, fractions={"multistage": (0.3, 0.3, 0.4)})
    with pytest.raises(ValueError, match="reserved"):
        s3l_config.quick(arms={"untrained": (16,)})
    with pytest.raises(ValueError, match="method must be one of"):
        s3l_config.quick(method="dino")
    full = s3l_config.full()
    assert full.dataset == "cifar100" and full.checkpoint_dir and full.budget == "epochs"
    assert full.arms["multistage"] == (16, 32) and full.method == "moco"
    # S3L's fine-tuning recipe (main_freeze.py): 120 epochs of batch 64, aug-plus blur in every arm
    assert (full.finetune_epochs, full.finetune_batch_size, full.blur) == (120, 64, True)
    for field, value, message in (("premise_margin", -1.0, "premise_margin"), ("premise_steps", 0, "premise_steps"),
                                  ("blur", None, "blur"), ("dataset", "mnist", "dataset")):
        with pytest.raises((ValueError, TypeError), match=message):
            s3l_config.quick(**{field: value})
    with pytest.raises(ValueError, match="leave blur to the config's own blur field"):
        s3l_config.quick(augment={"scale": (0.5, 1.0), "blur": False})


def test_blur_is_the_same_at_every_resolution_and_stage():
    # blur=None used to switch blur on from 32 px only: a 16 px arm pretrained without it, a 32 px arm with it
    for blur in (True, False):
        cfg = s3l_config.quick(blur=blur)
        pcfg = s3l.experiment.pretrain_config(cfg, "cpu")
        assert pcfg.blur is blur
        for r in (8, 16, 32):
            assert pcfg.replace(resolution=r).blur is blur


def test_finetune_crop_is_the_official_resize_then_random_crop():
    aug = s3l.finetune_augment(32, p_flip=0.0)
    assert aug.scale == ((224 / 256) ** 2, (224 / 256) ** 2) and aug.ratio == (1.0, 1.0) and aug.p_blur == 0.0
    x = torch.rand(4, 1, 32, 32)
    boxes = aug.sample(4, 32, 32, torch.Generator().manual_seed(0))["boxes"]
    assert torch.equal(boxes[:, 2] - boxes[:, 0], torch.full((4,), 28.0))  # 7/8 of the side, square
    assert torch.equal(boxes[:, 3] - boxes[:, 1], torch.full((4,), 28.0))
    assert aug(x).shape == (4, 1, 32, 32)


def test_premise_claim_and_the_paper_claims_that_name_it():
    cfg = s3l_config.study(premise_margin=3.0)
    per_seed = {a: {"finetune": [80.0 + i for i in range(4)], "knn": [50.0 + i for i in range(4)]}
                for a in ("low", "full", "multistage", "untrained")}
    supervised = {"r16": [90.0, 91.0, 92.0, 90.5], "r8": [80.0, 80.5, 81.0, 80.0]}
    claims = {c["id"]: c for c in s3l.experiment.s3l_claims(cfg, per_seed, supervised)}
    premise = claims["premise_resolution"]
    assert premise["kind"] == "premise" and premise["margin"] == 3.0 and premise["test"] == "superiority"
    assert premise["estimate"] == pytest.approx(10.5) and "at least 3 points" in premise["statement"]
    assert "16 px" in premise["statement"] and "8 px" in premise["statement"]
    for cid in ("small_resolution", "multistage"):
        assert tuple(claims[cid]["premises"]) == ("premise_resolution", "premise_pretraining_helps")
    helps = claims["premise_pretraining_helps"]  # full-schedule fine-tuning minus fine-tuning from scratch
    assert helps["kind"] == "premise" and helps["margin"] is None and helps["estimate"] == pytest.approx(0.0)
    per_seed["untrained"]["finetune"] = [70.0, 71.5, 72.0, 70.5]
    helps = {c["id"]: c for c in s3l.experiment.s3l_claims(cfg, per_seed, supervised)}["premise_pretraining_helps"]
    assert helps["samples"] == pytest.approx([10.0, 9.5, 10.0, 12.5]) and helps["verdict"] == "holds"
    assert "premise_resolution" not in {c["id"] for c in s3l.experiment.s3l_claims(cfg.replace(premise=False),
                                                                                 per_seed, supervised)}
    assert s3l.experiment.premise_resolutions(cfg) == (16, 8)
    assert s3l.experiment.premise_resolutions(cfg.replace(premise=False)) == ()


def _tiny(**kw):
    base = dict(dataset="scenes", resolution=32, seeds=(0,), augment={}, finetune_flip=0.5, premise_steps=2,
                premise_seeds=None,
                n_train=96, n_test=48, width=4, budget="flops", budget_gflops=0.5, batch_size=32,
                warmup_steps=2, finetune_steps=2, finetune_batch_size=32, knn_k=5,
                arms={"low": (16,), "full": (32,), "multistage": (16, 32)}, method="moco",
                method_kwargs={"dim": 16, "queue_size": 64, "momentum": 0.9})
    base.update(kw)
    return s3l_config.quick(**base)


def test_tiny_run_is_repeatable_and_does_its_bookkeeping():
    cfg = _tiny()
    a = s3l.run(cfg, record=False)
    assert _same_numbers(a, s3l.run(cfg, record=False))
    arms = a["arms"]
    assert set(arms) == {"low", "full", "multistage", "untrained"}
    # equal FLOPs budgets: every arm spends about 0.5 GFLOPs (rounded down to whole steps)
    for name in ("low", "full", "multistage"):
        assert 0.3 < arms[name]["pretrain_gflops"] <= 0.5
    assert arms["low"]["pretrain_steps"] > arms["full"]["pretrain_steps"]
    assert arms["untrained"]["pretrain_gflops"] == 0.0
    assert len({arms[n]["finetune_gflops"] for n in arms}) == 1  # fine-tuning costs every arm the same
    assert arms["low"]["new_tensors"] > 0 and arms["low"]["loaded_tensors"] > 0
    assert a["forward_mflops"]["r32"] == pytest.approx(4 * a["forward_mflops"]["r16"], rel=0.02)
    assert set(arms["low"]["knn_at"]) == {"r16", "r32"}
    assert a["claims"] == [] and a["seeds"] == [0]  # one seed: no interval, no claim
    assert set(a["supervised"]) == {"r32", "r16"} and all(0 <= v <= 100 for v in a["supervised"].values())
    assert set(a["supervised_per_seed"]) == {"r32", "r16"} and len(a["supervised_per_seed"]["r16"]) == 1
    json.dumps(a)


def test_steps_budget_gives_every_arm_the_same_steps_and_the_low_one_fewer_flops():
    cfg = s3l_config.quick()
    plan = {arm: s3l.experiment.plan_arm(cfg, arm, {}) for arm in cfg.arms}
    assert [s.steps for s in plan["low"]] == [300] and [s.steps for s in plan["full"]] == [300]
    study = s3l_config.study()
    assert study.seeds == tuple(range(10)) and study.tier == "study" and study.budget == "steps"
    # the quick runs with more seeds, plus the 8 -> 16 px schedule on the same budget
    assert study.arms == {**cfg.arms, "multistage": (8, 16)} and study.budget_steps == cfg.budget_steps
    assert [s.steps for s in s3l.experiment.plan_arm(study, "multistage", {})] == [150, 150]
    # the premise: three seeds of a short smoke test in the quick run, the study's ten seeds of 200 steps
    assert (cfg.dataset, cfg.premise_seeds, cfg.premise_steps, cfg.premise_margin) == ("glyphs", (0, 1, 2), 30, 3.0)
    assert (study.premise_seeds, study.premise_steps) == (None, s3l_config.PREMISE_STEPS) and study.blur
    with pytest.raises(ValueError, match="premise_seeds"):
        s3l_config.quick(premise_seeds=(0, 0))
    with pytest.raises(ValueError, match="budget_steps"):
        s3l_config.quick(budget_steps=0)


def _same_numbers(a, b):
    """Equal except for measured seconds."""
    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if "seconds" not in k}
        return d
    return strip(a) == strip(b)


class _FakeCifar:
    """Stands in for torchvision's CIFAR-100 (``.data`` uint8 (N, 32, 32, 3), ``.targets``)."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.data = torch.randint(0, 256, (n, 32, 32, 3), generator=g, dtype=torch.uint8).numpy()
        self.targets = torch.randint(0, 100, (n,), generator=g).tolist()


def test_full_preset_machinery_runs_and_resumes_from_its_checkpoints(tmp_path, monkeypatch):
    import companion.data as data

    monkeypatch.setattr(data, "torchvision_dataset", lambda name, split, download=True: _FakeCifar(
        128 if split == "train" else 32, 0 if split == "train" else 1))
    cfg = s3l_config.full(arch="resnet10", width=4, epochs=4, warmup_epochs=1, finetune_epochs=1, batch_size=32,
                          finetune_batch_size=32, method_kwargs={"dim": 16, "queue_size": 64}, knn_k=5,
                          checkpoint_dir=str(tmp_path), progress=False, device="cpu",
                          premise_steps=2)
    first = s3l.run(cfg)
    arms = first["arms"]
    assert arms["multistage"]["steps"] == [12, 4] and arms["full"]["steps"] == [16]  # 3 + 1 of 4 epochs of 4 steps
    assert (tmp_path / "seed0" / "multistage" / "stage1_32px" / "last.pt").exists()  # one folder per seed
    assert (tmp_path / "seed0" / "low" / "finetune" / "last.pt").exists()
    assert results.latest("s3l", "full")["metrics"]["arms"]["low"]["finetune"] == arms["low"]["finetune"]
    assert arms["multistage"]["resumed_from"] == [None, None]
    again = s3l.run(cfg, record=False)  # everything is loaded from the checkpoints: the same numbers
    assert again["arms"]["multistage"]["resumed_from"] == [12, 4]
    strip = lambda d: {k: v for k, v in d.items() if k != "arms"}  # noqa: E731
    assert _same_numbers(strip(first), strip(again))
    for name in arms:
        a, b = dict(first["arms"][name]), dict(again["arms"][name])
        a.pop("resumed_from", None), b.pop("resumed_from", None)
        assert _same_numbers(a, b), name


def test_full_mode_needs_cifar_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_DATA", str(tmp_path))
    with pytest.raises(DatasetMissingError, match="cifar100"):
        s3l.load_data(s3l_config.full(download=False))


def test_main_parses_presets(monkeypatch):
    from companion.s3l import __main__ as cli

    seen = {}
    monkeypatch.setattr(cli, "run", lambda cfg: seen.update(cfg=cfg) or {"arms": {}, "claims": []})
    cli.main(["--preset", "full", "--device", "cpu", "--epochs", "20", "--queue", "reset"])
    assert seen["cfg"].dataset == "cifar100" and seen["cfg"].epochs == 20 and seen["cfg"].queue == "reset"
    with pytest.raises(SystemExit):
        cli.main(["--preset", "quick", "--epochs", "3"])


@pytest.mark.slow
def test_quick_sanity_pretraining_beats_the_untrained_network():
    # The quick preset's schedules without fine-tuning or premise (seeds 0 and 1) on the glyphs: 300 MoCo v2
    # steps at 16 px lift kNN from 17.2 and 18.7 (untrained) to 23.5 and 18.3, the linear probe from 33.5 and
    # 33.3 to 40.0 and 32.0: a weak lift on two seeds (the study's ten decide the sanity claims).
    out = s3l.run(s3l_config.quick(finetune=False, premise=False), record=False)
    claims = {c["id"]: c for c in out["claims"]}
    assert set(claims) == {"sanity_knn", "sanity_linear"}  # no fine-tuning: no small_resolution claim
    assert claims["sanity_knn"]["n"] == 2 and claims["sanity_knn"]["estimate"] > 1.0
    assert out["per_seed"]["untrained"]["knn"][0] == pytest.approx(17.17, abs=0.3)
    assert out["per_seed"]["full"]["knn"][0] == pytest.approx(23.5, abs=0.3)
    assert out["supervised"] == {}  # premise=False: no premise networks
    # a little over a quarter of the FLOPs: the convolutions scale with the pixels, the heads do not
    ratio = out["arms"]["low"]["pretrain_gflops"] / out["arms"]["full"]["pretrain_gflops"]
    assert 0.25 < ratio < 0.3
