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


# --- reliability: configs, checkpoints and inputs that used to be accepted or fail obscurely ---

def _finished_run(tmp_path, **over):
    x, y = _problem()
    cfg = dict(steps=6, batch_size=16, lr=0.05, seed=3, progress=False, checkpoint_dir=tmp_path) | over
    fit(_model(), (x, y), _step, FitConfig(**cfg))
    return x, y, cfg


@pytest.mark.parametrize("change, shown", [
    ({"lr": 0.1}, "lr: 0.05 in the checkpoint, 0.1 now"),
    ({"seed": 4}, "seed: 3 in the checkpoint, 4 now"),
    ({"batch_size": 32}, "batch_size: 16 in the checkpoint, 32 now"),
    ({"steps": 3}, "steps: 6 in the checkpoint, 3 now"),
])
def test_resume_with_other_settings_names_every_difference(tmp_path, change, shown):
    x, y, cfg = _finished_run(tmp_path)
    with pytest.raises(train.CheckpointMismatchError) as e:
        fit(_model(), (x, y), _step, FitConfig(**(cfg | change)))
    msg = str(e.value)
    assert shown in msg and str(tmp_path / "last.pt") in msg
    assert ("allow_new_steps=True" in msg) == ("steps" in change)
    assert isinstance(e.value, ValueError)


def test_resume_mismatch_lists_all_fields_at_once(tmp_path):
    x, y, cfg = _finished_run(tmp_path)
    with pytest.raises(train.CheckpointMismatchError) as e:
        fit(_model(), (x, y), _step, FitConfig(**(cfg | {"lr": 0.2, "optimizer": "sgd", "warmup_steps": 2})))
    msg = str(e.value)
    assert "lr: 0.05 in the checkpoint, 0.2 now" in msg
    assert "optimizer: 'adamw' in the checkpoint, 'sgd' now" in msg
    assert "warmup_steps: 0 in the checkpoint, 2 now" in msg


def test_settings_that_do_not_change_the_math_may_differ_on_resume(tmp_path):
    x, y, cfg = _finished_run(tmp_path)
    res = fit(_model(), (x, y), _step, FitConfig(**(cfg | {"checkpoint_every": 2, "log_every": 3, "progress": True,
                                                          "time_budget_s": 100.0, "device": "cpu"})))
    assert res.resumed_from == 6 and res.steps == 6


def test_allow_new_steps_extends_a_run_but_not_past_the_checkpoint(tmp_path):
    x, y, cfg = _finished_run(tmp_path, schedule="constant")
    reference = _model()
    fit(reference, (x, y), _step, FitConfig(**(cfg | {"steps": 10, "checkpoint_dir": None})))
    extended = _model()
    res = fit(extended, (x, y), _step, FitConfig(**(cfg | {"steps": 10, "allow_new_steps": True})))
    assert res.resumed_from == 6 and res.steps == 10
    # a constant schedule makes 6 + 4 steps equal 10 steps
    assert all(torch.equal(a, b) for a, b in zip(reference.parameters(), extended.parameters()))
    with pytest.raises(train.CheckpointMismatchError, match=r"is at step 10, past steps=5"):
        fit(_model(), (x, y), _step, FitConfig(**(cfg | {"steps": 5, "allow_new_steps": True})))
    with pytest.raises(train.CheckpointMismatchError, match=r"lr: 0.05 in the checkpoint, 0.5 now"):
        fit(_model(), (x, y), _step, FitConfig(**(cfg | {"steps": 12, "lr": 0.5, "allow_new_steps": True})))


def test_checkpoint_of_another_model_is_a_mismatch(tmp_path):
    x, y, cfg = _finished_run(tmp_path)
    with pytest.raises(train.CheckpointMismatchError, match="does not fit this model"):
        fit(nn.Sequential(nn.Linear(5, 3), nn.Linear(3, 2)), (x, y), _step, FitConfig(**cfg))


@pytest.mark.parametrize("kwargs, error, msg", [
    ({"lr": -1}, ValueError, r"FitConfig.lr must be in \(0, inf\), got -1"),
    ({"lr": float("nan")}, ValueError, r"FitConfig.lr must be in \(0, inf\), got nan"),
    ({"lr": 0}, ValueError, r"FitConfig.lr must be in \(0, inf\), got 0"),
    ({"min_lr_ratio": 2}, ValueError, r"FitConfig.min_lr_ratio must be in \[0, 1\], got 2"),
    ({"batch_size": 2.5}, TypeError, r"FitConfig.batch_size must be an integer, got 2.5"),
    ({"batch_size": 0}, ValueError, r"FitConfig.batch_size must be >= 1, got 0"),
    ({"checkpoint_every": -5}, ValueError, r"FitConfig.checkpoint_every must be >= 0, got -5"),
    ({"warmup_steps": -1}, ValueError, r"FitConfig.warmup_steps must be >= 0, got -1"),
    ({"schedule": "linear"}, ValueError, r"schedule must be 'cosine' or 'constant', got 'linear'"),
    ({"momentum": 1.5}, ValueError, r"FitConfig.momentum must be in \[0, 1\), got 1.5"),
    ({"weight_decay": -0.1}, ValueError, r"FitConfig.weight_decay must be in \[0, inf\), got -0.1"),
    ({"grad_clip": 0}, ValueError, r"FitConfig.grad_clip must be in \(0, inf\), got 0"),
    ({"seed": -1}, ValueError, r"FitConfig.seed must be >= 0, got -1"),
    ({"seed": 1.0}, TypeError, r"FitConfig.seed must be an integer, got 1.0"),
    ({"log_every": 0}, ValueError, r"FitConfig.log_every must be >= 1, got 0"),
    ({"num_workers": -1}, ValueError, r"FitConfig.num_workers must be >= 0, got -1"),
    ({"time_budget_s": float("nan")}, ValueError, r"FitConfig.time_budget_s must be in \(0, inf\), got nan"),
    ({"amp": "yes"}, TypeError, r"FitConfig.amp must be True or False or None, got 'yes'"),
    ({"progress": 1}, TypeError, r"FitConfig.progress must be True or False, got 1"),
    ({"checkpoint_dir": 5}, TypeError, r"FitConfig.checkpoint_dir must be a path or None, got 5"),
    ({"device": "gpu"}, ValueError, r"FitConfig.device must name a torch device .*, got 'gpu'"),
    ({"steps": True}, TypeError, r"FitConfig.steps must be an integer, got True"),
])
def test_every_config_field_is_validated(kwargs, error, msg):
    with pytest.raises(error, match=msg):
        FitConfig(**({"steps": 5} | kwargs))


def test_numpy_integers_and_int_learning_rates_are_accepted():
    import numpy as np

    cfg = FitConfig(steps=np.int64(5), batch_size=np.int64(8), lr=1, seed=np.int32(2))
    assert cfg.batch_size == 8


def _write_checkpoint_bytes(tmp_path, data: bytes):
    (tmp_path / "last.pt").write_bytes(data)


@pytest.mark.parametrize("damage", ["empty", "truncated", "junk"])
def test_corrupt_checkpoint_names_the_file_and_what_to_do(tmp_path, damage):
    x, y, cfg = _finished_run(tmp_path)
    good = (tmp_path / "last.pt").read_bytes()
    bad = {"empty": b"", "truncated": good[: len(good) // 2], "junk": b"\x80\x04junk"}[damage]
    _write_checkpoint_bytes(tmp_path, bad)
    with pytest.raises(train.CheckpointCorruptError) as e:
        fit(_model(), (x, y), _step, FitConfig(**cfg))
    msg = str(e.value)
    assert msg.startswith(f"checkpoint {tmp_path / 'last.pt'} is corrupt or truncated (")
    assert "Delete it to start this run over, or point checkpoint_dir at another folder" in msg
    # what torch said stays attached, for whoever needs it
    assert isinstance(e.value.__cause__, (EOFError, RuntimeError, OSError)) or "Unpickling" in type(e.value.__cause__).__name__


def test_a_pickle_that_is_not_a_fit_checkpoint_is_reported(tmp_path):
    torch.save({"weights": torch.ones(2)}, tmp_path / "last.pt")
    x, y = _problem()
    with pytest.raises(train.CheckpointCorruptError, match="is not a checkpoint written by fit"):
        fit(_model(), (x, y), _step, FitConfig(steps=2, batch_size=16, progress=False, checkpoint_dir=tmp_path))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_temporary_files_of_a_killed_write_are_cleaned(tmp_path, monkeypatch):
    train.atomic_save({"step": 1}, tmp_path / "last.pt")

    def dying_save(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        f.flush()
        os._exit(9)  # killed mid-write: no except or finally runs

    pid = os.fork()  # a process killed in the middle of atomic_save leaves its temporary file behind
    if pid == 0:
        try:
            monkeypatch.setattr(torch, "save", dying_save)
            train.atomic_save({"step": 2}, tmp_path / "last.pt")
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
    left = [p.name for p in tmp_path.iterdir() if p.name != "last.pt"]
    assert len(left) == 1 and left[0].startswith(".last.pt.") and left[0].endswith(".tmp")
    # another live writer's file is kept
    alive = tmp_path / f".last.pt.{train._HOST}.{os.getppid()}.abc.tmp"
    alive.write_bytes(b"in progress")
    assert train.load_checkpoint(tmp_path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.pt", alive.name])
    # and a save cleans too
    dead = tmp_path / left[0]
    dead.write_bytes(b"again")
    train.atomic_save({"step": 3}, tmp_path / "last.pt")
    assert not dead.exists() and alive.exists()


def test_atomic_save_fsyncs_the_folder_after_the_rename(tmp_path, monkeypatch):
    import stat

    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"),
                                                 real_fsync(fd))[1])
    train.atomic_save({"a": 1}, tmp_path / "last.pt")
    assert calls == ["file", "replace", "dir"]


def test_a_dataloader_is_refused_with_what_to_pass_instead():
    x, y = _problem()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=48)
    with pytest.raises(TypeError, match=r"fit takes the dataset itself \(or a tuple of tensors\), not a DataLoader.*"
                                        r"Pass loader.dataset"):
        fit(_model(), loader, _step, FitConfig(steps=2, batch_size=16, progress=False))


def test_a_single_tensor_is_refused():
    x, _ = _problem()
    with pytest.raises(TypeError, match=r"got one tensor of shape \(96, 5\): pass \(x,\)"):
        fit(_model(), x, lambda m, b: m(b[0]).mean(), FitConfig(steps=2, batch_size=16, progress=False))


def test_a_loss_that_is_not_one_number_is_reported():
    x, y = _problem()
    per_example = lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1], reduction="none")  # noqa: E731
    with pytest.raises(ValueError, match=r"the loss must be a single number \(a 0-d tensor\), got shape \(16,\)"):
        fit(_model(), (x, y), per_example, FitConfig(steps=2, batch_size=16, progress=False))
    with pytest.raises(TypeError, match="the loss must be a tensor that depends on the model, got float 1.0"):
        fit(_model(), (x, y), lambda m, b: 1.0, FitConfig(steps=2, batch_size=16, progress=False))
    with pytest.raises(ValueError, match=r"requires_grad is False"):
        fit(_model(), (x, y), lambda m, b: _step(m, b).detach(), FitConfig(steps=2, batch_size=16, progress=False))
    with pytest.raises(KeyError, match="without 'loss'"):
        fit(_model(), (x, y), lambda m, b: {"ce": _step(m, b)}, FitConfig(steps=2, batch_size=16, progress=False))


def test_nan_in_the_data_is_reported_on_the_first_step():
    x, y = _problem()
    x[3, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="loss became nan at step 0.*NaN or infinite values in the data"):
        fit(_model(), (x, y), _step, FitConfig(steps=2, batch_size=96, progress=False))


def test_ranks_take_strided_parts_of_one_permutation():
    one = train.EpochSampler(10, seed=1, epoch=2).indices()
    parts = [train.EpochSampler(10, seed=1, epoch=2, rank=r, world=2).indices() for r in range(2)]
    assert parts[0] == one[0::2] and parts[1] == one[1::2]
    # step s of 2 ranks with batch 2 covers step s of 1 rank with batch 4
    for s in range(2):
        assert sorted(parts[0][2 * s : 2 * s + 2] + parts[1][2 * s : 2 * s + 2]) == sorted(one[4 * s : 4 * s + 4])


def test_mixed_precision_asked_for_on_the_cpu_runs_the_t4_branch_and_resumes_exactly(tmp_path, monkeypatch):
    """amp=True on the CPU: float16 autocast with a GradScaler, the branch a Colab T4 run takes. The step
    sees autocast on, the scaler's state is checkpointed, and a resumed run ends on the same weights."""
    x, y = _problem(2)
    seen = []

    def step(model, batch):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return _step(model, batch)

    cfg = dict(steps=12, batch_size=16, lr=0.05, optimizer="sgd", seed=3, progress=False, amp=True)
    reference = _model()
    done = fit(reference, (x, y), step, FitConfig(**cfg))
    assert done.steps == 12 and seen and all(on and dtype == torch.float16 for on, dtype in seen)
    assert done.history[-1]["loss"] < done.history[0]["loss"] + 0.5

    def stop_after_five(model, s):
        if s == 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(_model(), (x, y), step, FitConfig(**cfg, checkpoint_dir=tmp_path, checkpoint_every=3), after_step=stop_after_five)
    saved = torch.load(tmp_path / "last.pt", weights_only=False)
    assert saved["step"] == 3 and saved["scaler"].get("scale") is not None  # an enabled scaler's state
    resumed = _model()
    res = fit(resumed, (x, y), step, FitConfig(**cfg, checkpoint_dir=tmp_path, checkpoint_every=3))
    assert res.resumed_from == 3
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)

    seen.clear()
    fit(_model(), (x, y), step, FitConfig(**{**cfg, "amp": None, "steps": 2}))
    assert not any(on for on, _ in seen)  # the default stays full precision on the CPU
