"""Worst-case few-shot (fewshot): episodes, metrics, SR, AC, ensembles, and the quick claim."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from companion import fewshot
from companion.data import DatasetMissingError
from companion.fewshot import data as fsdata
from companion.fewshot.finetune import FineTune, embed


@pytest.fixture(scope="module")
def digits():
    return fewshot.digits()


@pytest.fixture(scope="module")
def pretrained(digits):
    """A small MLP pre-trained briefly on the base digits 0-4 (shared by the tests below)."""
    torch.manual_seed(0)
    backbone = fewshot.mlp_backbone((1, 8, 8), (64, 64, 32))
    x, y = digits.base_set()
    config = replace(fewshot.config.quick(), pretrain_steps=150)
    fewshot.pretrain(backbone, x, y, config, torch.device("cpu"))
    return backbone


# --- episodes -----------------------------------------------------------------------------------

def test_episodes_use_only_the_requested_classes_and_never_mix_base_and_novel(digits):
    labels = digits.labels.numpy()
    eps = fewshot.sample_episodes(labels, digits.novel_classes, 5, 5, 15, 20, seed=3)
    for e in eps:
        assert set(e.classes) == set(digits.novel_classes)  # 5-way on 5 novel digits: all of them
        assert set(labels[e.support]) | set(labels[e.query]) <= set(digits.novel_classes)
        assert not set(labels[e.support]) & set(digits.base_classes)
        # class-major order: episode label c is dataset class classes[c]
        assert (labels[e.support] == np.repeat(e.classes, 5)).all()
        assert (labels[e.query] == np.repeat(e.classes, 15)).all()
    base, novel = fewshot.split_classes(labels, digits.base_classes, digits.novel_classes)
    assert not set(base) & set(novel) and len(base) + len(novel) == len(labels)


def test_support_and_query_are_disjoint_and_sized(digits):
    for e in fewshot.sample_episodes(digits.labels.numpy(), range(10), 4, 3, 7, 30, seed=0):
        assert len(e.support) == 12 and len(e.query) == 28
        assert not set(e.support) & set(e.query)
        assert len(set(e.support)) == 12 and len(set(e.query)) == 28
        assert e.n_way == 4 and e.k_shot == 3 and e.q_query == 7


def test_same_seed_same_episodes_other_seed_other_episodes(digits):
    labels = digits.labels.numpy()
    a = fewshot.sample_episodes(labels, digits.novel_classes, 5, 1, 15, 10, seed=7)
    b = fewshot.sample_episodes(labels, digits.novel_classes, 5, 1, 15, 10, seed=7)
    c = fewshot.sample_episodes(labels, digits.novel_classes, 5, 1, 15, 10, seed=8)
    assert all(x.classes == y.classes and (x.support == y.support).all() and (x.query == y.query).all() for x, y in zip(a, b))
    assert any((x.support != y.support).any() for x, y in zip(a, c))


def test_stack_episodes_shapes(digits):
    eps = fewshot.sample_episodes(digits.labels.numpy(), digits.novel_classes, 5, 2, 3, 4, seed=0)
    s, sy, q, qy = fewshot.stack_episodes(eps)
    assert s.shape == sy.shape == (4, 10) and q.shape == qy.shape == (4, 15)
    assert sy[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_way": 6}, "6 ways but only 5 classes"),
    ({"k_shot": 170, "q_query": 15}, "need 185 items per class"),
    ({"n_way": 0}, "n_way must be a positive integer"),
    ({"k_shot": 1.5}, "k_shot must be a positive integer"),
    ({"n_episodes": 0}, "n_episodes must be a positive integer"),
])
def test_asking_for_more_ways_or_shots_than_the_data_has_is_a_clear_error(digits, kwargs, match):
    args = {"n_way": 5, "k_shot": 1, "q_query": 15, "n_episodes": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        fewshot.sample_episodes(digits.labels.numpy(), digits.novel_classes, **args)


def test_bad_labels_and_overlapping_splits_are_errors():
    with pytest.raises(ValueError, match="1-D"):
        fewshot.sample_episodes(np.zeros((4, 4), int), [0], 1, 1, 1, 1)
    with pytest.raises(TypeError, match="integers"):
        fewshot.sample_episodes(np.zeros(10), [0], 1, 1, 1, 1)
    with pytest.raises(ValueError, match="overlap"):
        fewshot.split_classes(np.arange(10), [0, 1, 2], [2, 3])


# --- metrics ------------------------------------------------------------------------------------

def test_metrics_against_hand_computed_values():
    accs = [50.0, 100.0, 75.0, 25.0]
    s = fewshot.summarize(accs, worst=(1, 2, 10))
    assert s["n"] == 4 and s["mean"] == pytest.approx(62.5)
    assert s["std"] == pytest.approx(np.sqrt((12.5**2 + 37.5**2 + 12.5**2 + 37.5**2) / 4))  # population std
    assert s["ci95"] == pytest.approx(1.96 * s["std"] / 2)
    assert s["acc1"] == 25.0 and s["acc2"] == pytest.approx(37.5)
    assert s["acc10"] is None  # fewer than 10 episodes
    assert fewshot.worst_k_mean(accs, 4) == pytest.approx(62.5)  # all episodes: the mean


def test_running_worst_only_falls_and_ends_at_the_overall_value():
    accs = np.random.default_rng(0).uniform(20, 100, 50)
    ns, w = fewshot.running_worst(accs, 10)
    assert ns[0] == 10 and ns[-1] == 50
    assert (np.diff(w) <= 1e-12).all()
    assert w[-1] == pytest.approx(fewshot.worst_k_mean(accs, 10))


def test_episode_accuracy_counts_correct_queries():
    scores = torch.tensor([[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]])  # (1, 4, 2)
    labels = torch.tensor([[0, 1, 1, 1]])
    assert fewshot.episode_accuracy(scores, labels).tolist() == [75.0]
    with pytest.raises(ValueError, match="do not match"):
        fewshot.episode_accuracy(scores, labels[:, :3])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        fewshot.episode_accuracy(scores, torch.tensor([[0, 1, 1, 3]]))  # a label outside the ways
    with pytest.raises(ValueError, match="NaN"):
        fewshot.episode_accuracy(torch.full((1, 4, 2), float("nan")), labels)
    with pytest.raises(ValueError, match="no queries"):
        fewshot.episode_accuracy(torch.zeros(1, 0, 2), torch.zeros(1, 0, dtype=torch.long))


@pytest.mark.parametrize("bad, match", [
    ([], "no episode accuracies"), ([50, float("nan")], "NaN"), ([0.5, 120], r"\[0, 100\]"), ([[50, 60]], "1-D"),
])
def test_bad_accuracy_lists_are_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        fewshot.summarize(bad)


def test_worst_k_needs_k_episodes():
    with pytest.raises(ValueError, match="acc10 needs at least 10 episodes"):
        fewshot.worst_k_mean([50.0] * 9, 10)


def test_paired_difference():
    d = fewshot.paired_difference([60, 70, 80], [50, 70, 70])
    assert d["mean"] == pytest.approx(20 / 3)
    assert d["ci95"] == pytest.approx(1.96 * np.std([10, 0, 10], ddof=1) / np.sqrt(3))


# --- model pieces ---------------------------------------------------------------------------------

def test_learnable_norm_head_is_closerlooks_distlinear():
    """distLinear: WeightNorm(nn.Linear(d, N, bias=False), dim=0) on the L2-normalised feature, times s."""
    torch.manual_seed(0)
    head = fewshot.CosineClassifier(8, 3, scale=2.0, learnable_norm=True)
    ref = torch.nn.Linear(8, 3, bias=False)
    ref.weight.data.copy_(head.weight.data)
    ref = torch.nn.utils.parametrizations.weight_norm(ref, dim=0)  # g starts at |v_c|, as WeightNorm.apply
    f = torch.randn(5, 8)
    expected = 2.0 * ref(f / f.norm(dim=1, keepdim=True))
    assert torch.allclose(head(f), expected, atol=1e-6)
    assert torch.allclose(head.norm, head.weight.norm(dim=1))
    head.norm.data.mul_(3.0)  # the per-class norm is a parameter the logits follow
    assert torch.allclose(head(f), 3 * expected, atol=1e-5)
    assert {n for n, _ in head.named_parameters()} == {"weight", "norm"}
    fixed = fewshot.CosineClassifier(8, 3, scale=2.0, learnable_norm=False)
    assert {n for n, _ in fixed.named_parameters()} == {"weight"}


def test_cosine_classifier_ignores_feature_norm_and_is_bounded_by_its_scale():
    head = fewshot.CosineClassifier(8, 3, scale=5.0, learnable_norm=False)
    f = torch.randn(4, 8)
    assert torch.allclose(head(f), head(10 * f), atol=1e-5)
    assert head(f).shape == (4, 3) and head(f).abs().max() <= 5.0 + 1e-5
    with pytest.raises(ValueError, match="n_way >= 2"):
        fewshot.CosineClassifier(8, 1)


def test_split_backbone_checks_tune_blocks(pretrained):
    prefix, tail = fewshot.split_backbone(pretrained, 1)
    assert len(prefix) == 2 and not prefix.training
    assert all(not p.requires_grad for p in prefix.parameters())
    x = torch.randn(5, 1, 8, 8)
    pretrained.eval()
    assert torch.allclose(tail.eval()(prefix(x)), pretrained(x), atol=1e-6)
    for bad in (0, 4, 1.0):
        with pytest.raises(ValueError, match="tune_blocks"):
            fewshot.split_backbone(pretrained, bad)


def test_random_resized_crop_full_scale_is_identity_or_mirror():
    x = torch.rand(6, 1, 8, 8)
    assert torch.allclose(fewshot.random_resized_crop(x, (1.0, 1.0), flip=False, ratio=(1, 1)), x, atol=1e-5)
    y = fewshot.random_resized_crop(x, (1.0, 1.0), flip=True, ratio=(1, 1))
    for a, b in zip(x, y):
        assert torch.allclose(a, b, atol=1e-5) or torch.allclose(a.flip(-1), b, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        fewshot.random_resized_crop(x[0], (0.5, 1.0), flip=False)


def test_prototypes_classify_queries_identical_to_the_support():
    backbone = fewshot.mlp_backbone((1, 4, 4), (16,))
    support = torch.randn(2, 3, 1, 4, 4)  # 2 episodes, 3 ways, 1 shot
    labels = torch.arange(3).repeat(2, 1)
    scores = fewshot.prototype_scores(backbone, support, labels, support, 3)
    assert scores.shape == (2, 3, 3)
    assert (scores.argmax(-1) == labels).all()


# --- stability regularization, AC, ensembles ------------------------------------------------------

def test_sr_term_is_at_its_optimum_when_the_model_is_unchanged(pretrained, digits):
    base = digits.base_set()[0][:64]
    prefix, tail = fewshot.split_backbone(pretrained, 2)
    f0 = embed(pretrained, base, "cpu")
    tail.eval()
    sim = fewshot.stability_similarity(tail(prefix(base)), f0)
    assert sim.item() == pytest.approx(1.0, abs=1e-5)  # the largest value a mean cosine can take
    sim.backward()
    grads = torch.cat([p.grad.flatten() for p in tail.parameters() if p.grad is not None])
    assert grads.abs().max() < 1e-3  # a maximum: no direction improves it
    moved = fewshot.stability_similarity(tail(prefix(base)) + 0.5 * torch.randn(64, f0.shape[1]), f0)
    assert moved.item() < 0.99
    with pytest.raises(ValueError, match="differ in shape"):
        fewshot.stability_similarity(f0[:3], f0[:4])


def _episodes(digits, n, shot=1, seed=0):
    eps = fewshot.sample_episodes(digits.labels.numpy(), digits.novel_classes, 5, shot, 5, n, seed=seed)
    s, sy, q, qy = fewshot.stack_episodes(eps)
    return digits.images[s], sy, digits.images[q], qy


def test_ac_leaves_frozen_blocks_bit_identical_and_the_backbone_untouched(pretrained, digits):
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    sx, sy, qx, qy = _episodes(digits, 3)
    method = FineTune(steps=5, beta=0.1, aux_batch=16, tune_blocks=1, head_scale=10.0, crop_scale=(0.5, 1.0), flip=False)
    tuner = fewshot.EpisodeFineTuner(pretrained, digits.base_set()[0], method, 5, seed=0)
    probs, fit = tuner(sx, sy, qx, run_seeds=[0, 1, 2], seed=0)
    assert probs.shape == (3, 25, 5) and torch.allclose(probs.sum(-1), torch.ones(3, 25), atol=1e-5)
    assert fit.steps == 5 and "sr" in fit.history[-1]
    after = pretrained.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    # the frozen prefix (first two blocks) is bit-identical to the pre-trained blocks, in eval mode
    assert not tuner.prefix.training
    for (k, v), w in zip(tuner.prefix.state_dict().items(), [before[k] for k in before if k.startswith(("blocks.0", "blocks.1"))]):
        assert torch.equal(v, w), k


def test_parallel_runs_are_independent_fine_tunings(pretrained, digits):
    """Two episodes fine-tuned together give what each gives alone (no randomness: no crops, no SR)."""
    sx, sy, qx, _ = _episodes(digits, 2)
    method = FineTune(steps=8, beta=0.0, tune_blocks=2, head_scale=10.0, crop_scale=None)
    tuner = fewshot.EpisodeFineTuner(pretrained, None, method, 5)
    both, _ = tuner(sx, sy, qx, run_seeds=[11, 12])
    alone, _ = tuner(sx[1:], sy[1:], qx[1:], run_seeds=[12])
    assert torch.allclose(both[1], alone[0], atol=1e-4)


def test_ensemble_averages_member_softmaxes_and_members_see_disjoint_base_parts(pretrained, digits):
    sx, sy, qx, _ = _episodes(digits, 2)
    base = digits.base_set()[0]
    method = FineTune(steps=3, beta=0.1, aux_batch=8, tune_blocks=1, members=3, head_scale=10.0, crop_scale=None)
    tuner = fewshot.EpisodeFineTuner(pretrained, base, method, 5, seed=0)
    parts = [set(p.tolist()) for p in tuner.parts]
    assert all(not a & b for i, a in enumerate(parts) for b in parts[i + 1:])
    assert sum(map(len, parts)) == len(base) // 3 * 3
    probs, _ = tuner(sx, sy, qx, run_seeds=list(range(6)))
    assert probs.shape == (2, 25, 5) and torch.allclose(probs.sum(-1), torch.ones(2, 25), atol=1e-5)
    with pytest.raises(ValueError, match="need 6 run seeds"):
        tuner(sx, sy, qx, run_seeds=[0, 1])


def test_conv_backbone_fine_tunes_under_vmap_with_batchnorm():
    """The full-mode path: ResNet-12 blocks (conv + BN + dropout) stacked over runs."""
    torch.manual_seed(0)
    net = fewshot.resnet12((4, 4, 8, 8), dropout=0.1)
    images = torch.randn(40, 3, 16, 16)
    sx, qx = images[:10].view(2, 5, 3, 16, 16), images[10:20].view(2, 5, 3, 16, 16)
    sy = torch.arange(5).repeat(2, 1)
    for tune in (1, None):
        m = FineTune(steps=2, beta=0.1, aux_batch=4, tune_blocks=tune, members=2, crop_scale=(0.5, 1.0))
        probs, _ = fewshot.EpisodeFineTuner(net, images[20:], m, 5)(sx, sy, qx, run_seeds=[0, 1, 2, 3])
        assert probs.shape == (2, 5, 5) and torch.isfinite(probs).all()


def test_bad_fine_tuning_inputs_are_errors(pretrained, digits):
    sx, sy, qx, _ = _episodes(digits, 1)
    tuner = fewshot.EpisodeFineTuner(pretrained, None, FineTune(steps=1, crop_scale=None), 5)
    with pytest.raises(ValueError, match=r"support labels must be in \[0, 5\)"):
        tuner(sx, sy + 1, qx, run_seeds=[0])
    with pytest.raises(TypeError, match="floating point"):
        tuner(sx.long(), sy, qx.long(), run_seeds=[0])
    with pytest.raises(ValueError, match="shapes disagree"):
        tuner(sx, sy[:, :3], qx, run_seeds=[0])
    with pytest.raises(ValueError, match="SR needs base images"):
        fewshot.EpisodeFineTuner(pretrained, None, FineTune(beta=0.1), 5)
    with pytest.raises(ValueError, match="at least one support and one query"):
        tuner(sx, sy, qx[:, :0], run_seeds=[0])
    nan = sx.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="support images contain NaN"):
        tuner(nan, sy, qx, run_seeds=[0])
    with pytest.raises(ValueError, match="base images contain NaN"):
        fewshot.EpisodeFineTuner(pretrained, torch.full((8, 1, 8, 8), float("nan")), FineTune(beta=0.1), 5)
    for bad in ({"steps": 0}, {"beta": -1.0}, {"members": 0}, {"crop_scale": (0.0, 1.0)}, {"label_smoothing": 1.0}):
        with pytest.raises(ValueError):
            FineTune(**bad)
    with pytest.raises(ValueError, match="unknown methods"):
        replace(fewshot.config.quick(), methods=("prototypes", "magic"))


# --- data -----------------------------------------------------------------------------------------

def test_cifar_fs_class_lists_are_the_64_16_20_split_of_cifar100():
    base, val, novel = map(set, (fsdata.CIFAR_FS_BASE, fsdata.CIFAR_FS_VAL, fsdata.CIFAR_FS_NOVEL))
    assert (len(base), len(val), len(novel)) == (64, 16, 20)
    assert len(base | val | novel) == 100 and not (base & val or base & novel or val & novel)
    assert {"baby", "whale", "worm"} <= novel and {"otter", "sea"} <= val


def test_cifar_fs_missing_says_what_to_fetch(tmp_path):
    with pytest.raises(DatasetMissingError, match="cifar-100-python"):
        fewshot.cifar_fs(tmp_path, download=False)


def test_digits_are_normalised_with_base_statistics_only(digits):
    x, y = digits.base_set()
    assert x.mean().abs() < 1e-4 and (x.std() - 1).abs() < 1e-2
    assert set(y.tolist()) == {0, 1, 2, 3, 4}


# --- the experiment -------------------------------------------------------------------------------

def test_evaluate_resumes_from_finished_chunks(pretrained, digits, tmp_path):
    config = replace(fewshot.config.quick(), chunk=2, finetune=FineTune(steps=3, aux_batch=8, head_scale=10.0, crop_scale=(0.5, 1.0), flip=False))
    eps = fewshot.sample_episodes(digits.labels.numpy(), digits.novel_classes, 5, 1, 5, 4, seed=0)
    path = tmp_path / "progress.pt"
    method = config.method("ac_sr")
    first = fewshot.evaluate(method, pretrained, digits, eps, config, torch.device("cpu"), 1, path)
    saved = torch.load(path, weights_only=False)
    torch.save({"accuracies": [-1.0, -1.0], "key": saved["key"]}, path)  # as if stopped after one chunk
    again = fewshot.evaluate(method, pretrained, digits, eps, config, torch.device("cpu"), 1, path)
    assert again[:2].tolist() == [-1.0, -1.0]  # the finished chunk is kept, not recomputed
    assert np.array_equal(first[2:], again[2:])  # the rest is recomputed, identically (seeded per chunk)
    other = replace(config, seed=1)  # other settings: the saved chunks are not reused
    assert (fewshot.evaluate(method, pretrained, digits, eps, other, torch.device("cpu"), 1, path) >= 0).all()


def test_block_worst_and_claims_from_known_values():
    from companion.fewshot.experiment import block_worst, claims_from

    a = np.arange(60, dtype=float)
    assert block_worst(a, 20).tolist() == [0.0, 20.0, 40.0]
    with pytest.raises(ValueError, match="at least 40"):
        block_worst(a[:39], 20)
    base = {1: {"finetune": a, "ac_ensr": a + 2.0}}
    claims = {c["id"]: c for c in claims_from("quick", [base])}
    assert set(claims) == {"worst_case_1shot", "mean_1shot"}
    assert claims["worst_case_1shot"]["samples"] == [2.0, 2.0, 2.0] and claims["worst_case_1shot"]["n"] == 3
    assert claims["mean_1shot"]["n"] == 60
    seeds = claims_from("study", [base, {1: {"finetune": a, "ac_ensr": a - 1.0}}])
    assert seeds[0]["samples"] == [2.0, -1.0]  # one sample per seed


@pytest.mark.slow
def test_quick_claim_worst_case_and_fine_tuning_on_digits(tmp_path, monkeypatch):
    """The headline at small scale (1-shot, 100 fixed episodes): AC+EnSR lifts the worst case over
    plain fine-tuning, does not lower the mean, and fine-tuning beats nearest-class-mean prototypes."""
    from companion import results

    monkeypatch.setattr(results, "results_dir", lambda: tmp_path)
    config = replace(fewshot.config.quick(), shots=(1,), methods=("prototypes", "finetune", "sr", "ac_sr", "ac_ensr"))
    result = fewshot.run(config)
    m = result.metrics["1shot"]
    claims = {c["id"]: c for c in result.claims}
    assert claims["worst_case_1shot"]["n"] == 5 and claims["worst_case_1shot"]["estimate"] > 0
    assert m["ac_ensr"]["acc1"] >= m["finetune"]["acc1"] and m["ac_ensr"]["acc10"] > m["finetune"]["acc10"]
    assert claims["mean_1shot"]["ci95"][1] > 0  # the mean is not lowered
    assert m["sr"]["mean"] > m["prototypes"]["mean"]
    assert m["ac_ensr"]["n"] == 100 and all(len(a) == 100 for a in result.accuracies[1].values())
    assert results.latest("fewshot", "quick", tmp_path)["claims"]
