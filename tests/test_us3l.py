import pytest
import torch

from companion import us3l
from companion.slimmable import SlimmableResNet, set_width
from companion.us3l import (channel_groups, group_coefficients, group_regularization, lower_bound, regularization_alpha,
                            sample_widths)
from companion.us3l.model import SlimmableSSL


def test_dynamic_sampling_lowers_the_bound_each_quarter():
    total = 100
    assert [lower_bound(s, total) for s in (0, 24, 25, 49, 50, 74, 75, 99)] == [1.0, 1.0, 0.75, 0.75, 0.5, 0.5, 0.25, 0.25]
    assert lower_bound(0, total, dynamic=False) == 0.25
    with pytest.raises(ValueError, match="step"):
        lower_bound(100, total)


def test_sandwich_widths():
    assert sample_widths(3, 100) == [1.0]  # first phase: the full network only
    w = sample_widths(80, 100, n=3, seed=1)
    assert w[0] == 1.0 and w[-1] == 0.25 and 0.25 <= w[1] <= 1.0 and w == sorted(w, reverse=True)
    assert sample_widths(80, 100, seed=1) == w  # same step and seed: same widths (exact resume)
    assert len(sample_widths(60, 100, n=5)) == 5
    with pytest.raises(ValueError, match="n >= 2"):
        sample_widths(60, 100, n=1)


def test_group_regularization_weights_match_the_formula():
    c = group_coefficients(8, 5e-5, 0.05)
    assert torch.allclose(c, 5e-5 * (1 - 0.05 * torch.arange(8.0)))
    assert regularization_alpha(0, 100, 0.05) == 0 and regularization_alpha(25, 100, 0.05) == pytest.approx(0.025)
    assert regularization_alpha(50, 100, 0.05) == 0.05 == regularization_alpha(90, 100, 0.05)
    assert regularization_alpha(5, 100, 0.05, warmup=10) == 0.0
    assert channel_groups(10, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 3, 3]  # the last group takes the remainder
    with pytest.raises(ValueError, match="negative"):
        group_coefficients(8, 1e-4, 0.5)


def test_group_penalty_by_hand():
    net = SlimmableResNet(base_width=8, blocks=(1,), divisor=4)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)
    lam, alpha = 1.0, 0.1
    expected = 0.0
    coeffs = group_coefficients(2, lam, alpha)
    for m in net.modules():
        for t in ([m.weight] if isinstance(m, torch.nn.Conv2d) else [m.weight, m.bias] if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) else []):
            per_channel = t[0].numel()
            groups = channel_groups(t.shape[0], 2)
            expected += float(sum(coeffs[g] * per_channel for g in groups))
    assert float(group_regularization(net, lam, alpha, bins=2)) == pytest.approx(expected)


@pytest.mark.parametrize("mode", ["us3l", "naive", "fixed"])
def test_forward_gives_a_finite_loss_and_a_teacher_only_for_us3l(mode):
    torch.manual_seed(0)
    enc = SlimmableResNet(base_width=8, blocks=(1, 1), in_channels=1, divisor=4)
    m = SlimmableSSL(enc, total_steps=8, mode=mode, dim=16, hidden=32, fixed_width=0.5 if mode == "fixed" else None)
    m.step.fill_(7)  # last phase: three widths
    x1, x2 = torch.rand(6, 1, 16, 16), torch.rand(6, 1, 16, 16)
    out = m(x1, x2)
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
    assert out["n_widths"] == (1.0 if mode == "fixed" else 3.0)
    assert hasattr(m, "teacher") == (mode == "us3l")
    out["loss"].backward()
    if mode == "us3l":
        before = [p.clone() for p in m.teacher.parameters()]
        with torch.no_grad():
            for p in m.encoder.parameters():
                p.add_(1.0)
        m.on_step(7, 8)
        assert any(not torch.equal(a, b) for a, b in zip(before, m.teacher.parameters()))
        assert all(not p.requires_grad for p in m.teacher.parameters())
    assert int(m.step) == (8 if mode == "us3l" else 7)


def test_bad_arguments():
    enc = SlimmableResNet(base_width=8, blocks=(1,), divisor=4)
    with pytest.raises(ValueError, match="mode"):
        SlimmableSSL(enc, 10, mode="wide")
    with pytest.raises(ValueError, match="fixed_width"):
        SlimmableSSL(enc, 10, mode="fixed")
    with pytest.raises(ValueError, match="width"):
        SlimmableSSL(enc, 10, mode="fixed", fixed_width=0.1)
    with pytest.raises(ValueError, match="dataset"):
        us3l.load_data(us3l.config.quick(dataset="imagenet"))


@pytest.mark.slow
def test_quick_run_trains_every_width_and_records(tmp_path):
    torch.set_num_threads(1)
    out = us3l.run(us3l.config.quick(modes=("us3l",), eval_widths=(0.25, 1.0)), record=True)
    acc = out["mean"]["us3l"]
    # the narrowest sub-network learns from the teacher: clearly above the same network untrained
    assert acc["knn@25"] > out["mean"]["random init"]["knn@25"] + 5
    assert out["costs"]["25"]["flops"] < out["costs"]["100"]["flops"]
    from companion import results

    assert results.read("us3l")["quick"]["metrics"]["mean"]["us3l"]["knn@100"] == pytest.approx(acc["knn@100"])
