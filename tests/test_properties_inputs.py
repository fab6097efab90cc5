"""Hostile inputs at the library's array front doors (:mod:`companion.tensors` is the one policy).

A property test feeds every public array function NaN, inf, float64, 0-255 floats, empty and
wrong-rank tensors, NumPy arrays and meta tensors: each call must raise a ``ValueError`` or
``TypeError`` that names the argument, or return a finite result equal to the valid input's (float64
and NumPy are converted). Plain tests pin each silently-wrong case the library used to accept, and
a SIGINT to a multi-process study stops its workers at once and leaves the records as they were.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from companion import tensors
from companion.compress import Compressor, compress_with_scores, select_words
from companion.fewshot import episode_accuracy
from companion.fewshot.finetune import prototype_scores
from companion.nrs import NRSClassifier, NRSRegressor
from companion.nrs.layer import NRSLayer
from companion.psol import ddt
from companion.psol.regressor import BoxRegressor, predict_boxes
from companion.quant.fake_quant import fake_quant_weight
from companion.quant.model import QuantizedModel
from companion.slimmable.resnet import SlimmableResNet
from companion.ssl.augment import GPUAugment, ssl_augment
from companion.ssl.encoders import TinyCNN, vit_encoder
from companion.ssl.evaluate import knn_predict
from companion.tobias.localize import prepare_images
from companion.vit2040.config import ViTShape
from companion.vit2040.model import build_vit

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the front doors, with a valid input each

def _seeded(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _model(module):
    torch.manual_seed(0)
    return module().eval()


def _front_doors():
    """``name -> (argument name, valid float32 input, call(x) -> output, takes [0, 1] images)``."""
    tiny = _model(lambda: TinyCNN(3, width=4))
    slim = _model(lambda: SlimmableResNet(base_width=8, blocks=(1, 1)))
    nrs = _model(lambda: NRSLayer(6))
    vit = _model(lambda: build_vit(ViTShape(image_size=8, patch_size=4, dim=8, layers=1, heads=2, mlp_dim=8), 3))
    vit_enc = _model(lambda: vit_encoder(image_size=8, patch_size=4, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=8))
    backbone = _model(lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8)))
    quant_net = _model(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)))
    trunk = _model(lambda: nn.Conv2d(3, 4, 3))
    regressor = _model(lambda: BoxRegressor(nn.Conv2d(3, 8, 3), 8))
    support_y = torch.tensor([[0, 1, 0, 1]])
    train_y = torch.arange(20) % 3

    def calibrate(x):
        q = QuantizedModel(quant_net, 4, 4)
        q.calibrate([x])
        return torch.stack([torch.stack([o.min, o.max]) for o in q.observers.values()])

    def augment(x):
        return GPUAugment(8, blur=False)(x, torch.Generator().manual_seed(0))

    return {
        "TinyCNN": ("x", _seeded(2, 3, 8, 8), tiny, False),
        "SlimmableResNet": ("x", _seeded(2, 3, 8, 8), slim, False),
        "NRSLayer": ("x", _seeded(4, 6), nrs, False),
        "build_vit": ("images", _seeded(2, 3, 8, 8), vit, False),
        "vit_encoder": ("x", _seeded(2, 3, 8, 8), vit_enc, False),
        "prototype_scores": ("support_x", _seeded(1, 4, 3, 4, 4),
                             lambda x: prototype_scores(backbone, x, support_y, _seeded(1, 2, 3, 4, 4, seed=1), 2),
                             False),
        "episode_accuracy": ("scores", _seeded(2, 3, 4), lambda x: episode_accuracy(x, torch.zeros(2, 3, dtype=torch.long)),
                             False),
        # (the wrapped model, not the quantizer, defines the input's rank: no wrong-rank case)
        "QuantizedModel.calibrate": ("calibration images", _seeded(2, 3, 8, 8), calibrate, False),
        "fake_quant_weight": ("weight", _seeded(4, 3) - 0.5, lambda x: fake_quant_weight(x, 4), False),
        "map_to_box": ("projection", _seeded(4, 4) - 0.5, lambda x: ddt.map_to_box(x, 16), False),
        "knn_predict": ("train_f", _seeded(20, 8),
                        lambda x: knn_predict(x, train_y, _seeded(5, 8, seed=1), k=3, return_scores=True)[1], False),
        "extract_descriptors": ("images", _seeded(2, 3, 8, 8),
                                lambda x: ddt.extract_descriptors(trunk, x, normalize=False), True),
        "predict_boxes": ("images", _seeded(2, 3, 8, 8), lambda x: predict_boxes(regressor, x), True),
        "GPUAugment": ("images", _seeded(2, 3, 8, 8), augment, True),
        "prepare_images": ("images", _seeded(2, 3, 8, 8), prepare_images, True),
    }


FRONT_DOORS = _front_doors()
HOSTILE = ("nan", "inf", "float64", "0-255", "empty", "wrong_rank", "numpy", "meta")


def _hostile(x: torch.Tensor, kind: str, where: int):
    if kind in ("nan", "inf"):
        y = x.clone()
        y.view(-1)[where % y.numel()] = float(kind)
        return y
    if kind == "float64":
        return x.double()
    if kind == "0-255":
        return x * 255
    if kind == "empty":
        return x[:0]
    if kind == "wrong_rank":
        return x[0] if x.ndim > 1 else x[None, None]
    if kind == "numpy":
        return x.numpy()
    return x.to("meta")


def _outputs(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _outputs(o)]
    return [torch.as_tensor(out)]


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("name", sorted(FRONT_DOORS))
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.integers(0, 10_000))
def test_every_front_door_refuses_clearly_or_computes_the_right_finite_result(name, kind, where):
    arg, valid, call, takes_images = FRONT_DOORS[name]
    if name == "QuantizedModel.calibrate" and kind == "wrong_rank":
        return
    bad = _hostile(valid, kind, where)
    try:
        with torch.no_grad():
            out = call(bad)
    except (ValueError, TypeError) as err:
        assert arg in str(err), f"{name}({kind}): the message does not name {arg!r}: {err}"
        assert kind not in ("float64", "numpy"), f"{name} refused a {kind} input it should convert: {err}"
        return
    assert kind not in ("nan", "inf", "meta"), f"{name} accepted a {kind} input without a word"
    assert not (takes_images and kind == "0-255"), f"{name} accepted 0-255 float images"
    for t in _outputs(out):
        assert t.is_floating_point() is False or bool(torch.isfinite(t).all()), f"{name}({kind}) gave NaN/inf"
    if kind in ("float64", "numpy"):  # converted: the same numbers as the float32 tensor
        with torch.no_grad():
            expected = call(valid.clone())
        for got, want in zip(_outputs(out), _outputs(expected)):
            assert torch.allclose(got.double(), want.double(), rtol=1e-5, atol=1e-6), f"{name}({kind}) differs"


def test_valid_float32_input_is_passed_through_untouched():
    x = torch.rand(3, 4)
    assert tensors.as_tensor(x, "x") is x  # no copy, no cast: valid calls compute exactly what they did
    assert tensors.as_tensor(x.double(), "x").dtype == torch.float32


def test_the_helper_names_the_argument_for_each_mistake():
    with pytest.raises(TypeError, match="x: expected a torch.Tensor, got numpy.ndarray"):
        tensors.as_tensor(np.zeros((2, 2)), "x", allow_numpy=False)
    with pytest.raises(ValueError, match="weights is a 'meta' tensor"):
        tensors.as_tensor(torch.zeros(2, device="meta"), "weights")
    with pytest.raises(ValueError, match=r"feats contains NaN or infinite values \(1 NaN, 1 inf"):
        tensors.as_tensor(torch.tensor([0.0, float("nan"), float("inf")]), "feats")
    with pytest.raises(ValueError, match=r"feats must have shape \(N, d\), got a 1-D tensor"):
        tensors.as_tensor(torch.zeros(3), "feats", ndim=2, shape_hint="(N, d)")
    for bad, error in ((0, ValueError), (-3, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="batch_size must be an integer >= 1"):
            tensors.check_batch_size(bad)


# ---------------------------------------------------------------- obscure errors that are now clear

def test_float64_runs_in_every_network_as_float32():
    x = torch.rand(2, 3, 8, 8)
    for name in ("TinyCNN", "SlimmableResNet", "build_vit", "vit_encoder"):
        model = FRONT_DOORS[name][2]
        with torch.no_grad():
            assert torch.equal(model(x.double()), model(x)), name
    layer = FRONT_DOORS["NRSLayer"][2]
    f = torch.rand(4, 6)
    with torch.no_grad():
        assert torch.equal(layer(f.double()), layer(f))


def test_numpy_inputs_are_converted_not_reported_as_a_wrong_shape():
    train_f, test_f = torch.rand(20, 8), torch.rand(5, 8)
    y = torch.arange(20) % 3
    assert torch.equal(knn_predict(train_f.numpy(), y, test_f.numpy(), k=3), knn_predict(train_f, y, test_f, k=3))
    scores = torch.rand(2, 3, 4)
    labels = torch.zeros(2, 3, dtype=torch.long)
    assert torch.equal(episode_accuracy(scores.numpy(), labels.numpy()), episode_accuracy(scores, labels))
    w = torch.rand(4, 3) - 0.5
    assert torch.equal(fake_quant_weight(w.numpy(), 4), fake_quant_weight(w, 4))
    p = torch.rand(4, 4) - 0.5
    assert torch.equal(ddt.map_to_box(p.numpy(), 16), ddt.map_to_box(p, 16))


def test_batch_size_zero_is_refused_by_name():
    images = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        ddt.extract_descriptors(nn.Conv2d(3, 4, 3), images, batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        predict_boxes(BoxRegressor(nn.Conv2d(3, 8, 3), 8), images, batch_size=0)
    stub = types.SimpleNamespace(config=types.SimpleNamespace(max_position_embeddings=512))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        Compressor(stub, tokenizer=None, batch_size=0, device="cpu")


# ---------------------------------------------------------------- silently wrong numbers, now refused or fixed

def test_0_255_float_images_are_refused_by_the_gpu_and_cpu_augmentations():
    images = torch.rand(2, 3, 16, 16) * 255
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\].*divide 0-255 images by 255"):
        GPUAugment(8, blur=False)(images)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*divide 0-255 images by 255"):
        ssl_augment(8, blur=False)(images[0])


def test_fake_quant_weight_refuses_nan_and_inf_and_keeps_the_sign_of_tiny_weights():
    for bad in (float("nan"), float("inf"), -float("inf")):
        w = torch.tensor([[0.5, bad], [0.1, 0.2]])
        with pytest.raises(ValueError, match="weight contains NaN or infinite values"):
            fake_quant_weight(w, 8)
        with pytest.raises(ValueError, match="weight contains NaN or infinite values"):
            fake_quant_weight(w.requires_grad_(), 8)  # the training path too
    for v in (1e-39, -1e-39, 3e-40, -2e-38, 1e-30):
        w = torch.tensor([[v, -v / 2, v / 4]])
        for requires_grad in (False, True):
            q = fake_quant_weight(w.clone().requires_grad_(requires_grad), 8).detach()
            assert torch.isfinite(q).all()
            assert (torch.sign(q) == torch.sign(w)).all(), (v, q)
            assert torch.allclose(q, w, rtol=0.02, atol=0), (v, q)  # within a step of the 8-bit grid


def test_fake_quant_weight_is_unchanged_for_ordinary_weights():
    w = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    scale = w.reshape(8, -1).abs().amax(1) / 7.5
    expected = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(8, dtype=torch.int32), 0, -8, 7)
    assert torch.equal(fake_quant_weight(w, 4), expected)


def _quant_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def test_quantized_model_refuses_a_misspelled_override_prefix():
    with pytest.raises(ValueError, match=r"overrides prefix '4' matches no layer.*\['0', '1', '2', '3'\]"):
        QuantizedModel(_quant_net(), 4, 4, overrides={"4": (8, 0)})
    QuantizedModel(_quant_net(), 4, 4, overrides={"3": (8, 0)})  # a real layer is fine


def test_calibrate_refuses_a_negative_max_images():
    q = QuantizedModel(_quant_net(), 4, 4)
    with pytest.raises(ValueError, match="max_images must be an integer >= 1, got -1"):
        q.calibrate([torch.rand(5, 1, 8, 8)], max_images=-1)
    assert q.calibrate([torch.rand(5, 1, 8, 8).double()], max_images=3) == 3  # float64 calibrates as float32


def test_a_bits_on_a_model_without_relu_is_refused():
    linear = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 2))
    with pytest.raises(ValueError, match="a_bits=4 would have no effect.*no nn.ReLU"):
        QuantizedModel(linear, 4, 4, first=None)
    QuantizedModel(linear, 4, 0, first=None)  # weight-only quantization is what such a model can do


def _table():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    return X, (X[:, 0] > 0).astype(int)


def test_nrs_refuses_negative_and_nan_class_weights():
    X, y = _table()
    with pytest.raises(ValueError, match=r"class_weight\[0\] = -1: every class weight must be a finite number >= 0"):
        NRSClassifier(max_epochs=1, class_weight={0: -1, 1: 2}).fit(X, y)
    with pytest.raises(ValueError, match=r"class_weight\[0\] is NaN"):
        NRSClassifier(max_epochs=1, class_weight={0: float("nan"), 1: 1}).fit(X, y)


def test_nrs_regressor_on_huge_targets_predicts_the_same_as_on_rescaled_ones():
    X, _ = _table()
    y = 2 * X[:, 0] + 1
    params = dict(max_epochs=5, hidden_size=16, random_state=0)
    small = NRSRegressor(**params).fit(X, y).predict(X)
    huge = NRSRegressor(**params).fit(X, y * 1e200).predict(X)
    assert np.isfinite(huge).all()
    np.testing.assert_allclose(huge / 1e200, small, rtol=1e-4, atol=1e-4 * np.abs(small).max())


def test_slimmable_resnet_refuses_wrong_channels_and_empty_stages():
    net = SlimmableResNet(base_width=8, blocks=(1, 1), in_channels=3)
    with pytest.raises(ValueError, match="takes 3-channel images, got 1 channels"):
        net(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="base_width must be an integer >= 1, got 0"):
        SlimmableResNet(base_width=0)
    with pytest.raises(ValueError, match=r"blocks\[1\] \(blocks in stage 2\) must be an integer >= 1, got 0"):
        SlimmableResNet(base_width=8, blocks=(2, 0, 2))


@pytest.mark.parametrize("cost", [0, 0.5, -1, float("nan")])
def test_a_token_counter_below_one_is_refused(cost):
    words = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="the token counter returned .* for the word 'a'"):
        compress_with_scores(words, np.array([0.9, 0.1, 0.5, 0.2]), 0.5, counter=lambda w: cost)


def test_select_words_refuses_nan_probabilities_and_negative_costs():
    with pytest.raises(ValueError, match=r"probs contain NaN or infinite values at words \[1\]"):
        select_words(np.array([0.9, np.nan, 0.5]), np.ones(3, dtype=int), 0.5)
    with pytest.raises(ValueError, match=r"costs must be whole numbers >= 1.*\[-2\]"):
        select_words(np.array([0.9, 0.1, 0.5]), np.array([1, -2, 1]), 0.5)


def test_nrs_run_with_one_round_is_refused_before_any_training(monkeypatch):
    from companion.nrs import config, experiment

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(experiment, "run_tabular", must_not_train)
    cfg = config.quick()
    cfg.rounds = 1
    with pytest.raises(ValueError, match="rounds=1: run\\(\\) records claims paired over splits"):
        experiment.run(cfg, verbose=False)


# ---------------------------------------------------------------- interrupts

SSQL_STUDY = textwrap.dedent("""
    from companion.ssql.config import quick
    from companion.ssql.experiment import run

    if __name__ == "__main__":  # the seeds' processes are spawned: they import this file
        run(quick(steps=100_000, n_train=200, seeds=(0, 1), workers=2, methods=("simsiam",)))
""")


def test_sigint_stops_a_multi_process_study_at_once_and_leaves_the_records(tmp_path):
    records = tmp_path / "results"
    records.mkdir()
    before = {}
    for path in (ROOT / "results").glob("*.json"):
        (records / path.name).write_bytes(path.read_bytes())
        before[path.name] = path.read_bytes()
    script = tmp_path / "study.py"
    script.write_text(SSQL_STUDY)
    env = dict(os.environ, COMPANION_RESULTS=str(records), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    children: list = []
    try:
        parent = psutil.Process(proc.pid)
        began = time.monotonic()
        workers = []
        while time.monotonic() - began < 120:  # until both seeds are training (past the imports)
            workers = [c for c in parent.children(recursive=True) if c.cpu_times().user > 2.0]
            if len(workers) >= 2 or proc.poll() is not None:
                break
            time.sleep(0.25)
        assert proc.poll() is None and len(workers) >= 2, "the study did not start its two seeds"
        children = parent.children(recursive=True)
        os.kill(proc.pid, signal.SIGINT)
        interrupted = time.monotonic()
        proc.wait(timeout=20)
        _, alive = psutil.wait_procs(children, timeout=max(0.1, 10 - (time.monotonic() - interrupted)))
        assert not alive, f"workers still running 10 s after SIGINT: {alive}"
        assert time.monotonic() - interrupted < 10
        assert proc.returncode != 0
        assert b"KeyboardInterrupt" in proc.stderr.read()
    finally:  # never leave a study running, whatever failed above
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    after = {p.name: p.read_bytes() for p in records.glob("*.json")}
    assert after == before  # no record written, none changed
