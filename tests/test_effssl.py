"""Efficient single-branch SSL: SqrtKL, CutMix with mixed targets, the memory bank and its two update rules,
checkpointing of the bank, and the clear error each bad input gets."""

import math

import pytest
import torch
import torch.nn.functional as F

from companion import effssl
from companion.effssl import MemoryBank, SingleBranchID, cutmix, instance_loss, mixed_targets, sqrt_kl, sqrt_kl_grad, sqrt_target
from companion.ssl import TinyCNN
from companion.train import FitConfig, fit


def _model(n=16, update="momentum", **kw):
    torch.manual_seed(0)
    return SingleBranchID(TinyCNN(3, width=4), n, dim=8, hidden=16, update=update, **kw)


# ---------------------------------------------------------------- SqrtKL


def test_sqrt_kl_is_zero_for_uniform_p_and_positive_otherwise():
    flat = torch.full((3, 7), 0.3)
    assert float(sqrt_kl(flat)) == pytest.approx(0.0, abs=1e-7)
    torch.manual_seed(0)
    for t in (0.1, 1.0, 5.0):
        s = torch.randn(4, 9)
        assert float(sqrt_kl(s, t)) > 0
    # by hand: KL(p || normalize(sqrt(p)))
    s = torch.tensor([[2.0, 0.0, -1.0]])
    p = F.softmax(s, 1)
    u = p.sqrt() / p.sqrt().sum()
    assert float(sqrt_kl(s)) == pytest.approx(float((p * (p / u).log()).sum()), rel=1e-5)


def test_sqrt_target_is_the_softmax_at_twice_the_temperature_and_detached():
    s = torch.randn(5, 6, requires_grad=True)
    p = F.softmax(s / 0.5, 1)
    u = sqrt_target(s, 0.5)
    assert torch.allclose(u, p.sqrt() / p.sqrt().sum(1, keepdim=True), atol=1e-6)
    assert not u.requires_grad


@pytest.mark.parametrize("temperature", [0.2, 1.0, 3.0])
def test_sqrt_kl_gradient_matches_autograd_and_flows_through_p_only(temperature):
    torch.manual_seed(1)
    s = (3 * torch.randn(4, 6)).requires_grad_()
    sqrt_kl(s, temperature).backward()
    assert torch.allclose(s.grad, sqrt_kl_grad(s, temperature), atol=1e-6)
    # the same loss with a target that is *not* held constant has a different gradient
    s2 = s.detach().clone().requires_grad_()
    log_p = F.log_softmax(s2 / temperature, 1)
    log_u = F.log_softmax(s2 / (2 * temperature), 1)  # not detached
    (log_p.exp() * (log_p - log_u)).sum(1).mean().backward()
    assert not torch.allclose(s2.grad, s.grad, atol=1e-4)


def test_sqrt_kl_flattens_p():
    s = torch.tensor([[3.0, 0.0, -1.0, -2.0]], requires_grad=True)
    g = sqrt_kl_grad(s)
    assert g[0, 0] > 0 and (g[0, 1:] < 0).all()  # descent lowers the top logit, raises the others
    ent = lambda x: float(-(F.softmax(x, 1) * F.log_softmax(x, 1)).sum().detach())  # noqa: E731
    assert ent(s - 0.5 * g) > ent(s)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_positive(bad):
    with pytest.raises(ValueError, match="temperature"):
        sqrt_kl(torch.randn(2, 3), bad)
    with pytest.raises(ValueError, match="temperature"):
        instance_loss(torch.randn(2, 3), torch.eye(2, 3), bad)
    with pytest.raises(ValueError, match="temperature"):
        _model(temperature=bad)


def test_logits_checks():
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        sqrt_kl(torch.randn(5))
    with pytest.raises(ValueError, match="columns"):
        sqrt_kl(torch.randn(3, 1))
    with pytest.raises(TypeError, match="floating"):
        sqrt_kl(torch.ones(2, 3, dtype=torch.long))


@pytest.mark.parametrize("fn", [sqrt_kl, sqrt_target, sqrt_kl_grad])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_logits_are_refused_at_the_call(fn, bad):
    s = torch.randn(3, 5)
    s[1, 2] = bad
    with pytest.raises(ValueError, match=r"logits hold 1 NaN or infinite value\(s\) in rows \[1\]"):
        fn(s)
    with pytest.raises(ValueError, match="logits hold"):
        instance_loss(s, mixed_targets(3, 5))


def test_instance_loss_and_targets_bad_input():
    s = torch.randn(2, 4)
    y = mixed_targets(2, 4)
    y[0, 1] = float("nan")
    with pytest.raises(ValueError, match="targets hold"):
        instance_loss(s, y)
    with pytest.raises(ValueError, match="non-negative"):
        instance_loss(s, -mixed_targets(2, 4))
    with pytest.raises(ValueError, match="targets must have the logits' shape"):
        instance_loss(s, [[1, 0, 0, 0]])
    with pytest.raises(ValueError, match="lam must be a number"):
        mixed_targets(2, 4, float("nan"))
    with pytest.raises(TypeError, match="batch must be an integer"):
        mixed_targets(2.0, 4)
    with pytest.raises(ValueError, match="batch positions in 0..1"):
        mixed_targets(2, 4, 0.7, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="1 <= batch <= columns"):
        mixed_targets(5, 4)


# ---------------------------------------------------------------- instance discrimination loss and CutMix


def test_instance_loss_is_cross_entropy_with_mixed_targets():
    torch.manual_seed(0)
    s = torch.randn(4, 10)
    assert float(instance_loss(s, mixed_targets(4, 10), 0.2)) == pytest.approx(float(F.cross_entropy(s / 0.2, torch.arange(4))), rel=1e-5)
    perm = torch.tensor([2, 0, 3, 1])
    y = mixed_targets(4, 10, 0.7, perm)
    expected = 0.7 * F.cross_entropy(s / 0.2, torch.arange(4)) + 0.3 * F.cross_entropy(s / 0.2, perm)
    assert float(instance_loss(s, y, 0.2)) == pytest.approx(float(expected), rel=1e-5)
    assert torch.allclose(y.sum(1), torch.ones(4))
    assert float(mixed_targets(2, 3, 0.6, torch.tensor([0, 1]))[0, 0]) == pytest.approx(1.0)  # mixed with itself
    with pytest.raises(ValueError, match="shape"):
        instance_loss(s, torch.zeros(4, 9))
    with pytest.raises(ValueError, match="lam"):
        mixed_targets(2, 3, 1.5)


def test_cutmix_pastes_one_box_and_lambda_is_the_exact_kept_fraction():
    torch.manual_seed(3)
    b, h, w = 6, 16, 12
    x = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1).expand(b, 3, h, w).contiguous()  # image i is all i
    for _ in range(20):
        mixed, perm, lam = cutmix(x, alpha=0.5)
        assert 0.5 <= lam <= 1.0 and mixed.shape == x.shape
        for i in range(b):
            own = (mixed[i, 0] == i).float().mean().item()
            other = (mixed[i, 0] == perm[i]).float().mean().item()
            assert set(mixed[i].unique().tolist()) <= {float(i), float(perm[i])}
            if perm[i] != i:
                assert own == pytest.approx(lam) and other == pytest.approx(1 - lam)
    assert torch.equal(x[:, 0, 0, 0], torch.arange(b, dtype=torch.float32))  # the input is not modified


def test_cutmix_bad_input():
    with pytest.raises(ValueError, match="B, C, H, W"):
        cutmix(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="float"):
        cutmix(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="empty"):
        cutmix(torch.rand(0, 3, 8, 8))
    for alpha in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha must be a positive finite number"):
            cutmix(torch.rand(2, 3, 8, 8), alpha=alpha)
    with pytest.raises(ValueError, match="height must be a positive integer"):
        effssl.cutmix_box(0, 8, 0.5)
    with pytest.raises(ValueError, match="lam must be a number"):
        effssl.cutmix_box(8, 8, float("nan"))


# ---------------------------------------------------------------- the memory bank


def _unit(t):
    return torch.allclose(t.norm(dim=1), torch.ones(len(t)), atol=1e-5)


def test_bank_rows_stay_unit_norm_after_every_update():
    torch.manual_seed(0)
    bank = MemoryBank(20, 5)
    assert _unit(bank.weight)
    idx = torch.tensor([3, 7, 1])
    bank.momentum_update_(idx, 10 * torch.randn(3, 5), 0.5)
    assert _unit(bank.weight)
    cols = bank.columns(idx, negatives=6)
    p = F.softmax(torch.randn(3, len(cols)), 1)
    bank.gradient_update_(cols, 10 * torch.randn(3, 5), p, mixed_targets(3, len(cols)), step=2.0)
    assert _unit(bank.weight)
    bank.set_(idx, torch.randn(3, 5) * 4)
    assert _unit(bank.weight)


def test_columns_put_the_batch_first_then_distinct_negatives():
    torch.manual_seed(0)
    bank = MemoryBank(30, 4)
    idx = torch.tensor([5, 2, 9])
    cols = bank.columns(idx, negatives=10)
    assert cols[:3].tolist() == [5, 2, 9] and len(cols) == 13
    assert len(set(cols.tolist())) == 13
    assert sorted(bank.columns(idx).tolist()) == list(range(30))  # None: every row


def test_momentum_rule_by_hand():
    bank = MemoryBank(4, 3)
    w0 = bank.weight.clone()
    z = torch.tensor([[1.0, 0.0, 0.0]])
    bank.momentum_update_(torch.tensor([2]), z, 0.5)
    assert torch.allclose(bank.weight[2], F.normalize(0.5 * w0[2] + 0.5 * z[0], dim=0))
    assert torch.equal(bank.weight[[0, 1, 3]], w0[[0, 1, 3]])  # only the batch row moves


def test_gradient_rule_is_a_gradient_descent_step_on_the_bank():
    torch.manual_seed(0)
    b, tau, step = 3, 0.2, 0.7
    bank = MemoryBank(12, 4)
    idx = torch.tensor([4, 0, 7])
    cols = bank.columns(idx, negatives=5)
    z = F.normalize(torch.randn(b, 4), dim=1)
    y = mixed_targets(b, len(cols), 0.8, torch.tensor([1, 0, 2]))
    w = bank.weight[cols].clone().requires_grad_()
    s = z @ w.t()
    instance_loss(s, y, tau).backward()
    expected = F.normalize(w.detach() - step * b * tau * w.grad, dim=1)  # dL/dw_j = sum_i (p_ij - y_ij) z_i / (B tau)
    untouched = torch.ones(12, dtype=torch.bool)
    untouched[cols] = False
    before = bank.weight[untouched].clone()
    bank.gradient_update_(cols, z, F.softmax(s.detach() / tau, 1), y, step)
    assert torch.allclose(bank.weight[cols], expected, atol=1e-5)
    assert torch.equal(bank.weight[untouched], before)


def test_gradient_rule_reduces_to_the_momentum_rule_when_p_vanishes():
    m = 0.5
    a, b = MemoryBank(6, 3, seed=1), MemoryBank(6, 3, seed=1)
    idx = torch.tensor([1, 4])
    z = torch.randn(2, 3)
    a.momentum_update_(idx, z, m)
    cols = b.columns(idx)
    b.gradient_update_(cols, z, torch.zeros(2, len(cols)), mixed_targets(2, len(cols)), step=(1 - m) / m)
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


def test_bank_bad_indices():
    bank = MemoryBank(10, 4)
    with pytest.raises(ValueError, match="outside the memory bank"):
        bank.check_index(torch.tensor([3, 10]))
    with pytest.raises(ValueError, match="outside the memory bank"):
        bank.check_index(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integers"):
        bank.check_index(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="distinct"):
        bank.check_index(torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="non-empty"):
        bank.check_index(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2"):
        MemoryBank(1, 4)
    with pytest.raises(ValueError, match="features"):
        bank.momentum_update_(torch.tensor([1]), torch.randn(1, 5))


def test_bank_refuses_non_finite_features_and_keeps_its_rows():
    bank = MemoryBank(10, 4)
    before = bank.weight.clone()
    z = torch.randn(2, 4)
    z[1, 0] = float("nan")
    idx = torch.tensor([3, 4])
    with pytest.raises(ValueError, match="features hold 1 NaN"):
        bank.momentum_update_(idx, z)
    with pytest.raises(ValueError, match="features hold"):
        bank.set_(idx, z)
    cols = bank.columns(idx)
    p = F.softmax(torch.randn(2, len(cols)), 1)
    with pytest.raises(ValueError, match="features hold"):
        bank.gradient_update_(cols, z, p, mixed_targets(2, len(cols)))
    p[0, 0] = float("nan")
    with pytest.raises(ValueError, match="probs hold"):
        bank.gradient_update_(cols, torch.randn(2, 4), p, mixed_targets(2, len(cols)))
    for step in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="step must be a non-negative finite number"):
            bank.gradient_update_(cols, torch.randn(2, 4), F.softmax(torch.randn(2, len(cols)), 1),
                                  mixed_targets(2, len(cols)), step=step)
    with pytest.raises(ValueError, match="momentum must be a number in"):
        bank.momentum_update_(idx, torch.randn(2, 4), float("nan"))
    assert torch.equal(bank.weight, before)  # nothing was half-written


# ---------------------------------------------------------------- the model


def test_forward_then_update_bank():
    model = _model(n=16, update="gradient", sqrt_weight=20.0, negatives=6)
    x, idx = torch.rand(4, 3, 16, 16), torch.tensor([0, 5, 9, 15])
    before = model.bank.weight.clone()
    out = model(x, idx)
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
    assert float(out["loss"].detach()) == pytest.approx(float(out["id"] + 20.0 * out["sqrt"]), rel=1e-5)
    assert torch.equal(model.bank.weight, before)  # the bank moves only after the optimizer step
    out["loss"].backward()
    model.update_bank()
    assert not torch.equal(model.bank.weight[idx], before[idx]) and _unit(model.bank.weight)
    after = model.bank.weight.clone()
    model.update_bank()  # nothing pending: no second update
    assert torch.equal(model.bank.weight, after)


def test_model_bad_inputs():
    model = _model(n=8)
    with pytest.raises(ValueError, match="outside the memory bank"):
        model(torch.rand(2, 3, 16, 16), torch.tensor([1, 8]))
    with pytest.raises(ValueError, match="one image per index"):
        model(torch.rand(3, 3, 16, 16), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="3-channel"):
        model(torch.rand(2, 1, 16, 16), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="update"):
        _model(update="ema")
    with pytest.raises(ValueError, match="calibration needs one image per bank row"):
        model.calibrate_(torch.rand(5, 3, 16, 16))
    for name in ("sqrt_weight", "cutmix_alpha", "bank_step"):
        for bad in (-1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=name):
                _model(**{name: bad})


def test_model_gradient_update_is_autograds_gradient_step_on_the_scored_rows():
    """The corrected rule inside the model: after a forward, the scored bank rows move exactly by
    -eta * B * tau * dL_ID/dw (autograd, with the rows as leaves), then are renormalized."""
    model = _model(n=16, update="gradient", negatives=7, cutmix_alpha=0.0, bank_step=0.3)
    model.train()
    idx = torch.tensor([2, 11, 5, 0])
    torch.manual_seed(5)
    model(torch.rand(4, 3, 16, 16), idx)
    _, cols, z, _, y = model._pending
    w = model.bank.weight[cols].clone().requires_grad_()
    instance_loss(z @ w.t(), y, model.temperature).backward()
    expected = F.normalize(w.detach() - 0.3 * len(idx) * model.temperature * w.grad, dim=1)
    model.update_bank()
    assert torch.allclose(model.bank.weight[cols], expected, atol=1e-5)
    assert len(cols) == 4 + 7 and cols[:4].tolist() == idx.tolist()


def test_feature_calibration_fills_the_bank_with_the_untrained_features():
    model = _model(n=10)
    x = torch.rand(10, 3, 16, 16)
    stats = model.encoder.features[1].running_mean.clone()
    model.calibrate_(x, batch_size=5)
    assert torch.equal(model.encoder.features[1].running_mean, stats)  # batch-norm statistics restored
    with torch.no_grad():
        model.train()
        expected = torch.cat([model.embed(x[:5]), model.embed(x[5:])])
    assert torch.allclose(model.bank.weight, expected, atol=1e-5)


def test_bank_is_saved_with_the_checkpoint_and_resumes_exactly(tmp_path):
    x, idx = torch.rand(16, 3, 16, 16), torch.arange(16)

    class Crash(Exception):
        pass

    def train(directory, crash_at=None):
        model = _model(n=16, update="gradient", sqrt_weight=5.0)
        cfg = FitConfig(steps=6, batch_size=4, lr=0.05, optimizer="sgd", progress=False, checkpoint_dir=directory,
                        checkpoint_every=2, device="cpu")

        def after(core, step):
            core.update_bank()
            if step == crash_at:
                raise Crash

        fit(model, (x, idx), lambda m, b: m(b[0], b[1]), cfg, after_step=after)
        return model

    straight = train(None)
    with pytest.raises(Crash):
        train(tmp_path / "ck", crash_at=4)  # dies in step 5; the last checkpoint is from step 4
    saved = torch.load(tmp_path / "ck" / "last.pt", weights_only=False)
    assert "bank.weight" in saved["model"] and saved["step"] == 4
    resumed = train(tmp_path / "ck")  # a fresh model: the bank must come back from the checkpoint
    assert torch.allclose(resumed.bank.weight, straight.bank.weight, atol=1e-6)
    assert not torch.allclose(resumed.bank.weight, _model(n=16).bank.weight)


def test_config_checks():
    with pytest.raises(ValueError, match="unknown methods"):
        effssl.config.quick(methods=("npid", "dino"))
    for field, bad in (("baseline_budget", "epochs"), ("baseline_steps", 0), ("premise_margin", -1.0),
                       ("premise_margin", math.nan), ("efficiency_margin", 0.0)):
        with pytest.raises(ValueError, match=field):
            effssl.config.quick(**{field: bad})
    # the study gives each baseline the shared benchmark's steps, what SimSiam needs to learn
    from companion.ssl.bench import STEPS

    assert effssl.config.study().baseline_steps == STEPS["study"]
    assert {"simsiam", "moco"} <= set(effssl.config.study().methods) and len(effssl.config.quick().seeds) >= 3
    with pytest.raises(ValueError, match="exactly one of steps or epochs"):
        effssl.config.quick(epochs=3)
    assert effssl.config.quick().mode == "quick" and effssl.config.full().mode == "full"
    assert effssl.config.study().tier == "study" and len(effssl.config.study().seeds) >= 5
    with pytest.raises(ValueError, match="tier"):
        effssl.config.quick(tier="paper")
    with pytest.raises(ValueError, match="flip"):
        effssl.config.quick(flip=1.5)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        effssl.config.quick(seeds=(0, 0))
    # the ladder adds one piece per rung; the last rung is the full method
    ladder = list(effssl.config.VARIANTS.values())
    assert ladder[0] == {"calibrate": False, "update": "momentum", "sqrt": False}
    assert ladder[-1] == {"calibrate": True, "update": "gradient", "sqrt": True}
    assert all(sum(a[k] != b[k] for k in a) == 1 for a, b in zip(ladder, ladder[1:]))
    assert list(effssl.config.VARIANTS)[-1] == effssl.config.FULL_METHOD
    assert math.isclose(_model(momentum=0.8, update="gradient").bank_step, 0.25)


def test_cost_table_and_figure_set_accuracy_against_cost():
    """The cost table gives each method's cost relative to the full method's; the figure puts every run's
    kNN curve at its encoder passes (the calibration pass first) on a log axis, with a clean layout."""
    import matplotlib

    matplotlib.use("Agg")
    from companion import viz
    from companion.effssl import figures

    def row(knn, steps, passes, backward, cal=0):
        return {"knn": knn, "steps": steps, "images": 64 * steps, "passes": passes, "backward_passes": backward,
                "calibration_passes": cal, "curve": {"steps": [steps // 2, steps], "knn": [knn - 2, knn]}}

    rows = {"untrained": {"knn": 70.0}, "sqrtkl": row(85.0, 150, 150 * 64 + 1200, 150 * 64, cal=1200),
            "simsiam": row(80.0, 600, 600 * 128, 600 * 128)}
    assert figures.pass_curve(rows["sqrtkl"]) == [1200 + 75 * 64, 1200 + 150 * 64]
    table = figures.cost_table(rows, {"sqrtkl": 2.0, "simsiam": 16.0})
    line = next(x for x in table.splitlines() if x.startswith("| SimSiam"))
    assert "| 80.0 | 600 | 38,400 | 76,800 (76,800) | 16.0 | 7.1 | 8.0 |" in line
    assert "| - |" in figures.cost_table(rows, {"simsiam": 16.0})  # no full-method time: no ratio
    fig = figures.draw_cost(rows, {"sqrtkl": [1.0, 2.0], "simsiam": [8.0, 16.0]})
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
    assert viz.layout_problems(fig) == []


def test_departures_put_released_settings_back_and_need_two_seeds(capsys):
    from companion.effssl import departures

    for changes in departures.DEPARTURES.values():
        cfg = effssl.config.study(**changes)  # each is a valid study config
        assert all(getattr(cfg, k) == v for k, v in changes.items())
    assert departures.DEPARTURES["optimizer (lr 1.0, weight decay 1e-4)"] == {"lr": 1.0, "weight_decay": 1e-4}
    with pytest.raises(SystemExit):
        departures.main(["--seeds", "0"])
    assert "--seeds needs at least two seeds" in capsys.readouterr().err
