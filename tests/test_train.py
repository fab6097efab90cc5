import os

import pytest
import torch
from torch import nn

from companion import train
from companion.train import FitConfig, fit


class Interrupt(Exception):
    pass


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 5, generator=g)
    y = (x[:, 0] > 0).long()
    return x, y


def _model():
    torch.manual_seed(123)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


def _step(model, batch):
    x, y = batch
    # noise from the global RNG in every step: resume must restore RNG state to match
    return nn.functional.cross_entropy(model(x + 0.01 * torch.randn_like(x)), y)


def test_resumed_run_ends_with_exactly_the_same_weights(tmp_path):
    x, y = _problem()
    cfg = dict(steps=20, batch_size=16, lr=0.05, optimizer="sgd", warmup_steps=3, seed=4, progress=False)
    reference = _model()
    fit(reference, (x, y), _step, FitConfig(**cfg))

    interrupted = _model()

    def stop_after_seven(model, step):
        if step == 7:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(interrupted, (x, y), _step, FitConfig(**cfg, checkpoint_dir=tmp_path, checkpoint_every=5), after_step=stop_after_seven)
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 5

    resumed = _model()  # a fresh process would build the model again, then resume
    res = fit(resumed, (x, y), _step, FitConfig(**cfg, checkpoint_dir=tmp_path, checkpoint_every=5))
    assert res.resumed_from == 5 and res.steps == 20
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["step"] for h in res.history] == list(range(1, 21))


def test_resume_through_a_dataset_and_dataloader(tmp_path):
    x, y = _problem(1)
    data = torch.utils.data.TensorDataset(x, y)
    cfg = dict(steps=12, batch_size=32, lr=0.1, seed=1, progress=False)  # 3 steps per epoch: crosses epochs
    a = _model()
    fit(a, data, _step, FitConfig(**cfg))
    b = _model()

    def stop(model, step):
        if step == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(b, data, _step, FitConfig(**cfg, checkpoint_dir=tmp_path, checkpoint_every=4), after_step=stop)
    b = _model()
    fit(b, data, _step, FitConfig(**cfg, checkpoint_dir=tmp_path, checkpoint_every=4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_a_write_that_dies_half_way_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    train.atomic_save({"step": 1, "w": torch.ones(3)}, path)

    real_save = torch.save

    def dying_save(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise OSError("disk vanished mid-write")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError):
        train.atomic_save({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["step"] == 1 and torch.equal(ckpt["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_schedule_warms_up_then_decays():
    f = [train.lr_factor(s, 10, 2, "cosine") for s in range(10)]
    assert f[0] == 0.5 and f[1] == 1.0 and f[2] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[1:], f[2:])) and f[-1] < 0.05
    assert train.lr_factor(5, 10, 0, "constant") == 1.0


def test_training_lowers_the_loss_and_logs():
    x, y = _problem()
    res = fit(_model(), (x, y), _step, FitConfig(steps=40, batch_size=32, lr=0.05, progress=False))
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert {"step", "lr", "loss"} <= set(res.history[0])


def test_extra_state_is_saved_and_restored(tmp_path):
    bank = nn.Module()
    bank.register_buffer("rows", torch.zeros(4))
    x, y = _problem()

    def after(model, step):
        bank.rows += 1

    fit(_model(), (x, y), _step, FitConfig(steps=3, batch_size=32, progress=False, checkpoint_dir=tmp_path), after_step=after, extra_state=bank)
    other = nn.Module()
    other.register_buffer("rows", torch.zeros(4))
    other.load_state_dict(train.load_checkpoint(tmp_path)["extra"])
    assert other.rows.tolist() == [3, 3, 3, 3]


@pytest.mark.parametrize("kwargs, msg", [({"steps": 0}, "steps"), ({"steps": 5, "optimizer": "rmsprop"}, "optimizer"),
                                          ({"steps": 5, "warmup_steps": 9}, "warmup")])
def test_bad_config(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        FitConfig(**kwargs)


def test_too_little_data_for_a_batch():
    x, y = _problem()
    with pytest.raises(ValueError, match="fewer than one batch"):
        fit(_model(), (x[:5], y[:5]), _step, FitConfig(steps=2, batch_size=16, progress=False))


def test_diverging_loss_is_reported():
    x, y = _problem()
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(_model(), (x, y), lambda m, b: m(b[0]).sum() * float("inf"), FitConfig(steps=2, batch_size=16, progress=False))
