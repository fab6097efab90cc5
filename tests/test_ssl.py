"""The SSL toolkit's core: losses against closed forms, EMA, encoders, heads, methods, evaluation, pretrain."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from companion import ssl
from companion.ssl import losses
from companion.ssl.methods import BYOL, METHODS, MoCo, SimSiam


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


# ----------------------------------------------------------------------------------------- losses


def test_negative_cosine_closed_forms():
    p = torch.randn(8, 16)
    assert losses.negative_cosine(p, 3 * p).item() == pytest.approx(-1.0, abs=1e-6)
    assert losses.negative_cosine(p, -p).item() == pytest.approx(1.0, abs=1e-6)
    e = torch.eye(4)
    assert losses.negative_cosine(e[:2], e[2:]).item() == pytest.approx(0.0, abs=1e-7)
    # identical views: the symmetric SimSiam loss is exactly -1; orthogonal views give 0
    assert losses.simsiam_loss(p, p, p, p).item() == pytest.approx(-1.0, abs=1e-6)
    assert losses.simsiam_loss(e[:2], e[:2], e[2:], e[2:]).item() == pytest.approx(0.0, abs=1e-7)


def test_negative_cosine_stops_gradient_on_target():
    p, z = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    losses.simsiam_loss(p, p, z, z).backward()
    assert z.grad is None and p.grad is not None and p.grad.abs().sum() > 0


def test_byol_loss_closed_forms():
    p = torch.randn(5, 7)
    assert losses.byol_loss(p, 2 * p).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.byol_loss(p, -p).item() == pytest.approx(4.0, abs=1e-5)
    e = torch.eye(4)
    assert losses.byol_loss(e[:2], e[2:]).item() == pytest.approx(2.0, abs=1e-6)


def test_info_nce_matches_hand_computation():
    q, k, queue = _unit(3, 4, seed=1), _unit(3, 4, seed=2), _unit(5, 4, seed=3)
    t = 0.2
    qn, kn, Q = q.double().numpy(), k.double().numpy(), queue.double().numpy()
    expected = 0.0
    for i in range(3):
        pos = np.exp(qn[i] @ kn[i] / t)
        neg = np.exp(Q @ qn[i] / t).sum()
        expected += -np.log(pos / (pos + neg)) / 3
    assert losses.info_nce(q, k, queue, t).item() == pytest.approx(expected, rel=1e-5)
    # rows are normalized inside: scaling does not change the value
    assert losses.info_nce(3 * q, 0.5 * k, 2 * queue, t).item() == pytest.approx(expected, rel=1e-5)


def test_info_nce_without_queue_uses_batch_negatives():
    q, k = _unit(4, 6, seed=4), _unit(4, 6, seed=5)
    logits = q @ k.t() / 0.1
    assert losses.info_nce(q, k, None, 0.1).item() == pytest.approx(F.cross_entropy(logits, torch.arange(4)).item(), rel=1e-6)


def test_nt_xent_matches_hand_computation():
    z1, z2, t = _unit(3, 5, seed=6), _unit(3, 5, seed=7), 0.5
    z = torch.cat([z1, z2]).double().numpy()
    n = 3
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        num = np.exp(z[i] @ z[j] / t)
        den = sum(np.exp(z[i] @ z[l] / t) for l in range(2 * n) if l != i)
        total += -np.log(num / den)
    assert losses.nt_xent(z1, z2, t).item() == pytest.approx(total / (2 * n), rel=1e-5)


@pytest.mark.parametrize("fn", [losses.negative_cosine, losses.byol_loss, lambda a, b: losses.nt_xent(a, b, 0.5)])
def test_losses_reject_bad_shapes(fn):
    with pytest.raises(ValueError, match="same shape"):
        fn(torch.randn(4, 8), torch.randn(4, 7))
    with pytest.raises(ValueError, match="empty"):
        fn(torch.randn(0, 8), torch.randn(0, 8))


def test_losses_reject_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        losses.nt_xent(torch.randn(2, 3), torch.randn(2, 3), 0.0)
    with pytest.raises(ValueError, match="queue"):
        losses.info_nce(torch.randn(2, 3), torch.randn(2, 3), torch.randn(5, 4), 0.2)


# ----------------------------------------------------------------------------------------- EMA


def test_ema_update_extremes_and_average():
    online = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    online[1].running_mean.fill_(2.0)
    online[1].num_batches_tracked.fill_(7)
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.data.zero_()
    target[1].running_mean.zero_()
    ssl.ema_update_(target, online, 1.0)
    assert all((p == 0).all() for p in target.parameters())
    ssl.ema_update_(target, online, 0.5)
    for pt, po in zip(target.parameters(), online.parameters()):
        torch.testing.assert_close(pt, 0.5 * po)
    assert torch.allclose(target[1].running_mean, torch.full((4,), 1.0))
    assert int(target[1].num_batches_tracked) == 7
    ssl.ema_update_(target, online, 0.0)
    for pt, po in zip(target.parameters(), online.parameters()):
        torch.testing.assert_close(pt, po)


def test_ema_rejects_bad_input():
    a, b = torch.nn.Linear(3, 4), torch.nn.Linear(3, 5)
    with pytest.raises(ValueError, match="structure"):
        ssl.ema_update_(a, b, 0.9)
    with pytest.raises(ValueError, match="momentum"):
        ssl.ema_update_(a, copy.deepcopy(a), 1.5)


def test_cosine_momentum_schedule():
    assert ssl.cosine_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert ssl.cosine_momentum(100, 100, 0.99) == pytest.approx(1.0)
    assert ssl.cosine_momentum(50, 100, 0.99) == pytest.approx(0.995)
    ms = [ssl.cosine_momentum(s, 20, 0.9) for s in range(21)]
    assert all(b >= a for a, b in zip(ms, ms[1:]))


# ----------------------------------------------------------------------------------------- encoders, heads


@pytest.mark.parametrize(
    "name,kw,size,dim",
    [("tiny", {"width": 8}, 8, 32), ("tiny", {"width": 8, "in_channels": 1}, 16, 32), ("resnet18_small", {}, 32, 512),
     ("resnet18", {}, 64, 512), ("vit", {"image_size": 16, "patch_size": 4, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32}, 16, 16)],
)
def test_encoders_shapes(name, kw, size, dim):
    enc = ssl.build_encoder(name, **kw).eval()
    c = kw.get("in_channels", 3)
    out = enc(torch.rand(2, c, size, size))
    assert out.shape == (2, dim) and enc.feature_dim == dim


def test_resnet50_feature_dim_and_stem():
    enc = ssl.resnet("resnet50", small_stem=True, in_channels=1)
    assert enc.feature_dim == 2048
    assert enc.net.conv1.kernel_size == (3, 3) and enc.net.conv1.in_channels == 1
    assert isinstance(enc.net.maxpool, torch.nn.Identity)


def test_encoders_reject_wrong_channels():
    with pytest.raises(ValueError, match="3-channel images, got a batch with 1 channels"):
        ssl.TinyCNN(3, 8)(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="1-channel"):
        ssl.resnet("resnet18", in_channels=1)(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown encoder"):
        ssl.build_encoder("alexnet")


def test_heads_structure():
    proj = ssl.projector(32, 64, 16, layers=3)
    assert [type(m).__name__ for m in proj] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear", "BatchNorm1d"]
    assert not proj[-1].affine and proj[0].bias is None
    pred = ssl.predictor(16, 4)
    assert pred(torch.randn(3, 16)).shape == (3, 16) and pred[-1].bias is not None
    moco_head = ssl.mlp(8, 8, 4, last_bn=False, hidden_bn=False)
    assert [type(m).__name__ for m in moco_head] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(ValueError, match="hidden_dim"):
        ssl.mlp(8, 0, 4)


# ----------------------------------------------------------------------------------------- methods


def _tiny():
    return ssl.TinyCNN(3, 4)


SMALL = {
    "simsiam": dict(proj_dim=16, pred_dim=8, proj_layers=2),
    "byol": dict(proj_dim=8, hidden=16),
    "moco": dict(dim=8, queue_size=16),
    "simclr": dict(dim=8),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_methods_forward_backward(name):
    torch.manual_seed(0)
    m = METHODS[name](_tiny(), **SMALL[name])
    v1, v2 = torch.rand(6, 3, 8, 8), torch.rand(6, 3, 8, 8)
    out = m(v1, v2)
    assert torch.isfinite(out["loss"]) and out["loss"].ndim == 0
    assert 0 <= float(out["std"]) <= 1
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    m.on_step(0, 10)


def test_simsiam_identical_views_loss_near_minus_one_after_alignment():
    # with the predictor initialized to the identity and identical views, the loss is exactly -1
    m = SimSiam(_tiny(), proj_dim=8, pred_dim=8, proj_layers=2)
    m.predictor = torch.nn.Identity()
    v = torch.rand(4, 3, 8, 8)
    assert m(v, v)["loss"].item() == pytest.approx(-1.0, abs=1e-5)


def test_byol_target_follows_online_by_ema():
    m = BYOL(_tiny(), proj_dim=4, hidden=8, base_momentum=0.5)
    before = [p.clone() for p in m.target_encoder.parameters()]
    assert all(not p.requires_grad for p in m.target_encoder.parameters())
    with torch.no_grad():
        for p in m.encoder.parameters():
            p.add_(1.0)
    m.on_step(0, 10)  # momentum 0.5 at step 0
    for b, t, o in zip(before, m.target_encoder.parameters(), m.encoder.parameters()):
        torch.testing.assert_close(t, 0.5 * b + 0.5 * o)


def test_moco_queue_fills_in_order_and_wraps():
    torch.manual_seed(0)
    m = MoCo(_tiny(), dim=4, queue_size=10, momentum=0.9)
    v = torch.rand(4, 3, 8, 8)
    for i in range(3):
        m(v, v)
    assert int(m.queue_ptr) == 12 % 10
    keys = m._key(v)
    torch.testing.assert_close(m.queue[8:10], keys[:2])
    torch.testing.assert_close(m.queue[0:2], keys[2:])
    m.eval()
    ptr = int(m.queue_ptr)
    m(v, v)
    assert int(m.queue_ptr) == ptr  # evaluation does not touch the queue


def test_moco_queue_longer_than_dataset_is_an_error():
    with pytest.raises(ValueError, match="queue_size=4096 is larger than the dataset \\(100 images\\)"):
        MoCo(_tiny(), queue_size=4096, dataset_size=100)
    m = MoCo(_tiny(), dim=4, queue_size=64)
    with pytest.raises(ValueError, match="larger than the dataset"):
        ssl.pretrain(m, None, torch.rand(32, 3, 8, 8), ssl.PretrainConfig.quick(steps=1, batch_size=8, resolution=8))
    with pytest.raises(ValueError, match="larger than the dataset"):
        ssl.pretrain("moco", _tiny(), torch.rand(32, 3, 8, 8),
                     ssl.PretrainConfig.quick(steps=1, batch_size=8, resolution=8, method_kwargs={"queue_size": 64}))


# ----------------------------------------------------------------------------------------- evaluation


def _numpy_knn(train_f, train_y, test_f, k, t, c):
    tr = train_f / np.linalg.norm(train_f, axis=1, keepdims=True)
    te = test_f / np.linalg.norm(test_f, axis=1, keepdims=True)
    preds = []
    for f in te:
        sim = tr @ f
        nn_idx = np.argsort(-sim, kind="stable")[:k]
        score = np.zeros(c)
        for i in nn_idx:
            score[train_y[i]] += np.exp(sim[i] / t)
        preds.append(score.argmax())
    return np.array(preds)


def test_knn_matches_numpy_reimplementation():
    g = torch.Generator().manual_seed(0)
    train_f, test_f = torch.randn(120, 6, generator=g), torch.randn(40, 6, generator=g)
    train_y = torch.randint(0, 4, (120,), generator=g)
    for k, t in ((1, 0.1), (7, 0.1), (20, 0.5), (500, 0.07)):
        ours = ssl.knn_predict(train_f, train_y, test_f, k=k, temperature=t, num_classes=4).numpy()
        ref = _numpy_knn(train_f.double().numpy(), train_y.numpy(), test_f.double().numpy(), min(k, 120), t, 4)
        assert (ours == ref).mean() >= 0.975, (k, t)  # ties in float32 vs float64 may flip a rare case


def test_knn_agrees_with_sklearn_on_separated_clusters():
    from sklearn.neighbors import KNeighborsClassifier

    g = torch.Generator().manual_seed(1)
    centers = F.normalize(torch.randn(5, 16, generator=g), dim=1) * 4
    y = torch.arange(5).repeat_interleave(60)
    f = centers[y] + torch.randn(300, 16, generator=g)
    tr, te = torch.arange(300) % 3 != 0, torch.arange(300) % 3 == 0
    ours = ssl.knn_predict(f[tr], y[tr], f[te], k=10, temperature=0.1).numpy()
    sk = KNeighborsClassifier(n_neighbors=10, metric="cosine", weights="distance").fit(f[tr].numpy(), y[tr].numpy())
    assert (ours == sk.predict(f[te].numpy())).mean() >= 0.95
    assert ssl.knn_accuracy(f[tr], y[tr], f[te], y[te], k=10) > 0.9


def test_knn_k1_is_nearest_neighbour_like_sklearn():
    from sklearn.neighbors import KNeighborsClassifier

    g = torch.Generator().manual_seed(2)
    train_f, test_f = torch.randn(80, 5, generator=g), torch.randn(30, 5, generator=g)
    train_y = torch.randint(0, 3, (80,), generator=g)
    sk = KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(train_f.numpy(), train_y.numpy())
    assert (ssl.knn_predict(train_f, train_y, test_f, k=1).numpy() == sk.predict(test_f.numpy())).all()


def test_knn_rejects_bad_input():
    with pytest.raises(ValueError, match="dimension"):
        ssl.knn_predict(torch.randn(5, 3), torch.zeros(5), torch.randn(2, 4))
    with pytest.raises(ValueError, match="labels"):
        ssl.knn_predict(torch.randn(5, 3), torch.zeros(4), torch.randn(2, 3))
    with pytest.raises(ValueError, match="k must"):
        ssl.knn_predict(torch.randn(5, 3), torch.zeros(5), torch.randn(2, 3), k=0)
    with pytest.raises(ValueError, match="temperature"):
        ssl.knn_predict(torch.randn(5, 3), torch.zeros(5), torch.randn(2, 3), temperature=0)
    with pytest.raises(ValueError, match="empty"):
        ssl.knn_accuracy(torch.randn(0, 3), torch.zeros(0), torch.randn(2, 3), torch.zeros(2))


def test_linear_probe_close_to_sklearn_logistic_regression():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    idx = np.random.default_rng(0).permutation(len(x))
    tr, te = idx[:1200], idx[1200:]
    scaler = StandardScaler().fit(x[tr])
    sk = LogisticRegression(max_iter=2000).fit(scaler.transform(x[tr]), y[tr]).score(scaler.transform(x[te]), y[te])
    ours = ssl.linear_probe(torch.from_numpy(x[tr]), torch.from_numpy(y[tr]), torch.from_numpy(x[te]), torch.from_numpy(y[te]), num_threads=1)
    assert abs(ours - sk) < 0.03, (ours, sk)


def test_embedding_std_healthy_and_collapsed():
    d = 64
    z = torch.randn(4000, d, generator=torch.Generator().manual_seed(0))
    assert ssl.embedding_std(z) == pytest.approx(1 / math.sqrt(d), rel=0.05)
    assert ssl.embedding_std(torch.ones(10, d) + 1e-9 * torch.randn(10, d)) < 1e-6
    with pytest.raises(ValueError):
        ssl.embedding_std(torch.randn(1, d))


def test_extract_features_shape_and_mode():
    enc = ssl.TinyCNN(3, 4).train()
    x = torch.rand(10, 3, 8, 8)
    f = ssl.extract_features(enc, x, batch_size=4)
    assert f.shape == (10, 16) and enc.training
    enc.eval()
    torch.testing.assert_close(f, enc(x))
    from torch.utils.data import TensorDataset

    f2 = ssl.extract_features(enc, TensorDataset(x, torch.zeros(10)), batch_size=3)
    torch.testing.assert_close(f2, f)
    with pytest.raises(ValueError, match="N, C, H, W"):
        ssl.extract_features(enc, torch.rand(3, 8, 8))


# ----------------------------------------------------------------------------------------- pretrain


def _cfg(**kw):
    base = dict(steps=3, batch_size=8, resolution=8, encoder_kwargs={"width": 4}, method_kwargs={"proj_dim": 16, "pred_dim": 8, "proj_layers": 2})
    base.update(kw)
    return ssl.PretrainConfig.quick(**base)


@pytest.mark.parametrize("gpu_augment", [True, False])
def test_pretrain_runs_both_pipelines(gpu_augment):
    data = torch.rand(24, 3, 12, 12)
    m, res = ssl.pretrain("simsiam", None, data, _cfg(gpu_augment=gpu_augment))
    assert isinstance(m, SimSiam) and res.steps == 3 and len(res.history) == 3
    assert all(math.isfinite(h["loss"]) and "std" in h for h in res.history)


def test_pretrain_is_seeded_and_resumes(tmp_path):
    data = torch.rand(24, 3, 12, 12)
    cfg = _cfg(method="byol", method_kwargs={"proj_dim": 8, "hidden": 16}, checkpoint_dir=str(tmp_path))
    a, ra = ssl.pretrain("byol", None, data, cfg)
    b, rb = ssl.pretrain("byol", None, data, cfg.replace(checkpoint_dir=None))
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb)
    c, rc = ssl.pretrain("byol", None, data, cfg)  # finds the finished checkpoint
    assert rc.resumed_from == 3
    for pa, pc in zip(a.state_dict().values(), c.state_dict().values()):
        torch.testing.assert_close(pa, pc)


def test_pretrain_rejects_bad_input():
    with pytest.raises(ValueError, match="N, C, H, W"):
        ssl.pretrain("simsiam", None, torch.rand(8, 8, 8), _cfg())
    with pytest.raises(TypeError, match="float"):
        ssl.pretrain("simsiam", None, torch.zeros(8, 3, 8, 8, dtype=torch.uint8), _cfg())
    with pytest.raises(ValueError, match="unknown method"):
        ssl.pretrain("dino", None, torch.rand(8, 3, 8, 8), _cfg())
    with pytest.raises(ValueError, match="3-channel"):
        ssl.pretrain("simsiam", ssl.TinyCNN(3, 4), torch.rand(16, 1, 8, 8), _cfg())


def test_presets():
    quick = ssl.PretrainConfig.quick(method="moco")
    assert quick.method_kwargs == {"dim": 64} and quick.device == "cpu" and quick.steps
    m, _ = ssl.pretrain("moco", None, torch.rand(40, 3, 8, 8), ssl.PretrainConfig.quick(method="moco", steps=1, batch_size=8, resolution=8, encoder_kwargs={"width": 4}))
    assert m.queue_size == 40  # min(4096, dataset size)
    full = ssl.PretrainConfig.full()
    assert full.epochs == 200 and full.batch_size == 512 and full.checkpoint_dir and full.encoder == "resnet18_small"
    with pytest.raises(ValueError, match="steps or epochs"):
        ssl.PretrainConfig(method="simsiam")
