"""Defects a reader meets on the full path (on Colab, from an installed wheel), each with the behaviour
that fixes it: package data in the wheel, EFPC's memory on a T4, OpenML targets under pandas 2 and 3,
stated full-run times, and the smaller breakages (caches, checkpoints, presets, ranks, messages)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------- 1. package data


def test_wheel_ships_every_data_file_the_package_reads(tmp_path):
    """Each non-.py file under src/companion known to git is inside the wheel (EFPC's passages.json
    was missing, so the chapter's quick cell failed on Colab)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "src", "pyproject.toml",
                             "README.md", "setup.py", "MANIFEST.in", "results"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    if not listed:
        pytest.skip("not a git checkout")
    src = tmp_path / "src"
    for rel in listed:  # a copy: the build must not write build/ or egg-info into the checkout
        if not (ROOT / rel).is_file():
            continue
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    out = tmp_path / "dist"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("companion-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    data = [rel for rel in listed if rel.startswith("src/companion/") and not rel.endswith(".py")]
    assert "src/companion/efpc/data/passages.json" in data
    missing = [rel for rel in data if rel.removeprefix("src/") not in inside]
    assert not missing, f"not in the wheel: {missing}"


# ----------------------------------------------------------------------------------- 3. NRS on OpenML


def _fake_openml_cache(home: Path, data_id: int) -> Path:
    """A tiny data set in scikit-learn's OpenML cache layout: description, features and qualities JSON and
    the gzipped ARFF, with a nominal class whose values look like integers (as satimage, usps, mnist)."""
    import gzip
    import hashlib
    import json

    root = home / "openml" / "openml.org"
    rows = "\n".join(f"{i}.0,{i * 2}.5,{i % 3}.25,{i % 3 + 1}" for i in range(9))
    arff = ("@relation tiny\n@attribute a0 numeric\n@attribute a1 numeric\n@attribute a2 numeric\n"
            f"@attribute class {{1,2,3}}\n@data\n{rows}\n").encode()

    def put(rel, payload):
        path = root / (rel + ".gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wb") as f:
            f.write(payload if isinstance(payload, bytes) else json.dumps(payload).encode())
        return path

    put(f"api/v1/json/data/{data_id}", {"data_set_description": {
        "id": str(data_id), "name": "tiny", "version": "1", "description": "tiny", "format": "ARFF",
        "file_id": "9999", "url": "https://api.openml.org/data/v1/download/9999/tiny.arff",
        "default_target_attribute": "class", "md5_checksum": hashlib.md5(arff).hexdigest(), "status": "active"}})
    feats = [{"index": str(i), "name": f"a{i}", "data_type": "numeric", "is_target": "false", "is_ignore": "false",
              "is_row_identifier": "false", "number_of_missing_values": "0"} for i in range(3)]
    feats.append({"index": "3", "name": "class", "data_type": "nominal", "nominal_value": ["1", "2", "3"],
                  "is_target": "true", "is_ignore": "false", "is_row_identifier": "false",
                  "number_of_missing_values": "0"})
    put(f"api/v1/json/data/features/{data_id}", {"data_features": {"feature": feats}})
    put(f"api/v1/json/data/qualities/{data_id}", {"data_qualities": {"quality": [
        {"name": "NumberOfInstances", "value": "9.0"}]}})
    return put("data/v1/download/9999/tiny.arff", arff)


def test_openml_table_with_integer_looking_classes_loads_from_the_cache(tmp_path, monkeypatch):
    """satimage/usps/mnist/gisette: under pandas 3 scikit-learn's pandas parser failed on the target and
    deleted the cached download; the table now loads (offline) and the cache stays."""
    import sklearn.datasets._openml as openml

    from companion.nrs import tabular

    def offline(*args, **kwargs):
        raise OSError("this test has no network")

    monkeypatch.setattr(openml, "urlopen", offline)
    arff = _fake_openml_cache(tmp_path, tabular.OPENML["satimage"]["data_id"])
    table = tabular.load_table("satimage", data_home=str(tmp_path))
    assert table.X.shape == (9, 3) and table.X.dtype == np.float64
    assert table.y.tolist() == [str(i % 3 + 1) for i in range(9)]
    assert arff.exists()


def test_target_labels_agree_for_integer_and_string_categories():
    import pandas as pd

    from companion.nrs.tabular import target_labels

    as_ints = pd.Series([3, 1, 2, 3]).astype("category")  # pandas 3's read of "3,1,2,3"
    as_strings = pd.Series(["3", "1", "2", "3"]).astype("category")  # pandas 2's
    expected = ["3", "1", "2", "3"]
    assert target_labels(as_ints).tolist() == expected
    assert target_labels(as_strings).tolist() == expected
    assert target_labels(np.array(["3", "1", "2", "3"], dtype=object)).tolist() == expected
    assert target_labels(np.array([3.0, 1.0, 2.0, 3.0])).tolist() == expected


# ----------------------------------------------------------------------------------- 2. EFPC on a T4


def _tiny_token_classifier(seed: int = 0):
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     num_labels=2)
    return BertForTokenClassification(cfg)


def _token_examples(n: int = 8) -> list[dict]:
    """Sequences of different lengths with different numbers of counted tokens (labels -100 elsewhere)."""
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        length = 4 + (3 * i) % 9
        labels = torch.randint(0, 2, (length,), generator=g).tolist()
        labels[0] = labels[-1] = -100  # [CLS] and [SEP]
        labels[1:1 + i % 3] = [-100] * len(labels[1:1 + i % 3])
        out.append({"input_ids": torch.randint(1, 40, (length,), generator=g).tolist(), "attention_mask": [1] * length,
                    "labels": labels})
    return out


@pytest.mark.parametrize("accumulate", [2, 4])
def test_micro_batches_give_the_full_batch_gradient(accumulate):
    """One SGD step (lr 1, no momentum) moves every weight by minus its gradient: accumulating micro-batches
    must move them as the whole batch does, with the loss averaged over counted tokens."""
    from companion.compress.classifier import Collate, token_classification_step
    from companion.train import FitConfig, fit

    class Items(torch.utils.data.Dataset):
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    data = Items(_token_examples())
    moved = []
    for k in (1, accumulate):
        model = _tiny_token_classifier()
        start = [p.detach().clone() for p in model.parameters()]
        cfg = FitConfig(steps=1, batch_size=8, lr=1.0, optimizer="sgd", momentum=0.0, schedule="constant",
                        progress=False, device="cpu", accumulate=k)
        result = fit(model, data, token_classification_step, cfg, collate_fn=Collate(0))
        moved.append(([s - p.detach() for s, p in zip(start, model.parameters())], result.history[-1]))
    (full, full_log), (micro, micro_log) = moved
    assert max(float((a - b).abs().max()) for a, b in zip(full, micro)) < 1e-6
    assert max(float(a.abs().max()) for a in full) > 1e-3  # the step did move the weights
    assert micro_log["loss"] == pytest.approx(full_log["loss"], rel=1e-5)
    assert "weight" not in full_log and "weight" not in micro_log


def test_accumulate_must_divide_the_batch():
    from companion.train import FitConfig

    with pytest.raises(ValueError, match="accumulate.*batch_size=8"):
        FitConfig(steps=1, batch_size=8, accumulate=3)


def test_first_compressor_leaves_the_gpu_before_the_second_trains(monkeypatch):
    """EFPC full trains two XLM-R-large models: the first is released (moved off, cache emptied) before
    the second starts, and the two start from the same weights."""
    from companion.efpc import config as efpc_config
    from companion.efpc import full

    events = []
    monkeypatch.setattr(full, "release", lambda model: events.append(("release", id(model))))

    def fake_train(model, tokenizer, encoded, p, fit_cfg):
        events.append(("train", id(model), Path(fit_cfg.checkpoint_dir).name, fit_cfg.accumulate))

    monkeypatch.setattr(full, "train_compressor", fake_train)
    monkeypatch.setattr(full, "encode_examples", lambda examples, tokenizer, max_length: examples)
    base = _tiny_token_classifier()
    start = [p.detach().clone() for p in base.parameters()]
    cfg = efpc_config.full(checkpoint_dir="ckpt", device="cpu", max_length=32)
    efpc_model, ll2_model = full.train_pair(base, None, ["m"], ["q"], cfg)
    assert ll2_model is base and efpc_model is not base
    assert events == [("train", id(base), "llmlingua2", 4), ("release", id(base)),
                      ("train", id(efpc_model), "efpc", 4), ("release", id(efpc_model))]
    assert all(torch.equal(a, b) for a, b in zip(start, efpc_model.parameters()))


def test_release_moves_the_model_to_the_cpu_and_empties_the_cache(monkeypatch):
    from companion.efpc.full import release

    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    model = torch.nn.Linear(2, 2)
    release(model)
    assert emptied == [True] and model.weight.device.type == "cpu"


def test_training_memory_of_a_tiny_model_and_of_the_full_preset():
    from companion.compress import model_training_memory, training_memory
    from companion.efpc import config as efpc_config
    from companion.efpc.full import XLMR_LARGE

    model = _tiny_token_classifier()
    n = sum(p.numel() for p in model.parameters())
    est = model_training_memory(model, batch_size=4, seq_len=32)
    gib = 2**30
    assert est["weights"] == pytest.approx(4 * n / gib) and est["optimizer"] == pytest.approx(8 * n / gib)
    # 2 layers x s b h (34 + 5 a s / h) bytes: 32 * 4 * 16 * (34 + 5 * 2 * 32 / 16)
    assert est["activations"] == pytest.approx(2 * 32 * 4 * 16 * (34 + 20) / gib)
    assert est["total"] == pytest.approx(sum(v for k, v in est.items() if k != "total"))
    half = model_training_memory(model, batch_size=4, seq_len=32, accumulate=2)
    assert half["activations"] == pytest.approx(est["activations"] / 2)
    # the full preset: 16 x 512 tokens at once would not fit a T4 (15 GB); its micro-batches of 4 do
    cfg = efpc_config.full()
    whole = training_memory(**XLMR_LARGE, batch_size=cfg.batch_size, seq_len=cfg.max_length)
    t4 = training_memory(**XLMR_LARGE, batch_size=cfg.batch_size, seq_len=cfg.max_length, accumulate=cfg.accumulate)
    assert whole["total"] > 15 > t4["total"]
    # and the chapter states that number
    text = (ROOT / "book" / "10_efpc.md").read_text()
    assert f"about {t4['total']:.0f} GB of GPU memory" in text


# ----------------------------------------------------------------------------------- 4. stated times


def test_estimate_hours_is_epochs_times_images_over_throughput():
    from companion import runtime

    est = runtime.estimate_hours(50_000, 400, 1_000.0, runs=6, basis="assumed")
    assert est.hours == pytest.approx(6 * 400 * 50_000 / 1_000 / 3600)
    assert "assumed" in est.basis and "6 x 400 epochs" in est.basis
    assert runtime.items_per_second(1e9, flops=8e12) == pytest.approx(8_000)
    with pytest.raises(ValueError, match="epochs"):
        runtime.estimate_hours(50_000, 0, 1_000.0)


def _stated(chapter: str, pattern: str) -> list[int]:
    import re

    text = (ROOT / "book" / chapter).read_text()
    return [int(m) for m in re.findall(pattern, text)]


def test_us3l_states_the_time_of_all_nine_networks():
    """The chapter said ~10 h for one run; the preset trains nine networks (US3L, the released naive
    baseline, four alone with the naive run's steps, and three alone with US3L's steps per width)."""
    from companion.us3l import config
    from companion.us3l.estimate import full_run_hours

    whole, shorter = full_run_hours(), full_run_hours(config.full(epochs=100))
    assert "9 networks" in whole.basis and whole.hours > 15
    stated = _stated("07_us3l.md", r"about (\d+) hours")
    assert stated[:2] == [round(whole.hours), round(shorter.hours)]


def test_s3l_and_efpc_state_the_time_their_presets_take():
    from companion.efpc.full import full_run_hours as efpc_hours
    from companion.s3l import config
    from companion.s3l.cost import full_run_hours

    s3l_whole, s3l_short = full_run_hours(), full_run_hours(config.full(epochs=50, finetune_epochs=20))
    assert _stated("03_s3l.md", r"it should take about (\d+) hours") == [round(s3l_whole.hours)]
    assert _stated("03_s3l.md", r"--finetune-epochs 20` takes about (\d+) hour") == [round(s3l_short.hours)]
    assert _stated("03_s3l.md", r"--preset full  # about (\d+) h on a T4") == [round(s3l_whole.hours)]
    assert _stated("10_efpc.md", r"Colab T4 \(an estimate, not a measurement\):\*\* about (\d+) hours") == [
        round(efpc_hours().hours)]


# ----------------------------------------------------------------------------------- 5. smaller breakages


def test_psol_pseudo_boxes_are_not_reused_for_another_split(tmp_path):
    """``limit_train=15`` then ``limit_train=8`` reused 15 boxes for 8 images (ValueError downstream)."""
    from types import SimpleNamespace

    from companion import psol
    from companion.psol.experiment import cached_pseudo_boxes, split_key

    cfg = psol.full()
    records = [SimpleNamespace(path=tmp_path / f"img{i}.jpg") for i in range(15)]
    made = []

    def make(n):
        def inner():
            made.append(n)
            return torch.full((n, 4), float(n)), {"n": n}
        return inner

    cache = tmp_path / "ddt_pseudo_boxes.pt"
    boxes, _ = cached_pseudo_boxes(cache, records, cfg, make(15))
    assert boxes.shape == (15, 4)
    boxes, models = cached_pseudo_boxes(cache, records[:8], cfg, make(8))
    assert boxes.shape == (8, 4) and models == {"n": 8} and made == [15, 8]
    boxes, _ = cached_pseudo_boxes(cache, records[:8], cfg, make(8))  # the same split: reused
    assert made == [15, 8]
    assert split_key(records, cfg) != split_key(records[:8], cfg)
    assert split_key(records, cfg) != split_key(records, psol.full(ddt_input_size=224))


def test_s3l_seeds_checkpoint_into_their_own_folders(tmp_path, monkeypatch):
    from companion.s3l import config, experiment

    seen = []

    class Enough(Exception):
        pass

    def fake_run_seed(cfg, record=False):
        seen.append((cfg.seed, cfg.checkpoint_dir))
        if len(seen) == 2:
            raise Enough
        return {}

    monkeypatch.setattr(experiment, "run_seed", fake_run_seed)
    with pytest.raises(Enough):
        experiment.run(config.full(seeds=(0, 1), checkpoint_dir=str(tmp_path)))
    assert seen == [(0, f"{tmp_path}/seed0"), (1, f"{tmp_path}/seed1")]


def test_fewshot_seeds_checkpoint_into_their_own_folders(tmp_path):
    from dataclasses import replace

    from companion.fewshot import config
    from companion.fewshot.experiment import checkpoint_folder

    full = replace(config.preset("full"), checkpoint_dir=str(tmp_path))
    assert checkpoint_folder(replace(full, seed=0)) == tmp_path / "seed0"
    assert checkpoint_folder(replace(full, seed=1)) == tmp_path / "seed1"
    assert checkpoint_folder(config.preset("quick")) is None


def test_vit_accepts_preset_colab_and_full_colab(monkeypatch):
    from types import SimpleNamespace

    from companion.vit2040 import __main__ as cli
    from companion.vit2040.config import colab

    seen = []
    monkeypatch.setattr(cli, "run", lambda cfg: seen.append(cfg) or SimpleNamespace(metrics={}, claims=[]))
    cli.main(["--preset", "colab", "--device", "cpu"])
    cli.main(["--preset", "full", "--colab", "--device", "cpu"])
    expected = colab()
    assert [(c.pretrain, c.finetune) for c in seen] == [(expected.pretrain, expected.finetune)] * 2
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="colab preset .* needs a GPU"):
        cli.main(["--preset", "colab"])


def test_full_mode_in_a_notebook_refuses_a_cpu_only_runtime(monkeypatch):
    from companion import runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "pick_device", lambda prefer=None: torch.device(prefer or "cpu"))
    monkeypatch.delenv("COMPANION_DEVICE", raising=False)
    with pytest.raises(RuntimeError, match=r"needs a GPU.*Change runtime type.*COMPANION_DEVICE=cpu"):
        runtime.setup(mode="full", verbose=False)
    monkeypatch.setenv("COMPANION_MODE", "full")
    with pytest.raises(RuntimeError, match="needs a GPU"):
        runtime.setup(verbose=False)
    assert runtime.setup(device="cpu", verbose=False).full  # on purpose
    monkeypatch.setenv("COMPANION_DEVICE", "cpu")
    assert runtime.setup(verbose=False).device.type == "cpu"
    monkeypatch.setenv("COMPANION_MODE", "quick")
    monkeypatch.delenv("COMPANION_DEVICE")
    assert runtime.setup(verbose=False).quick  # quick mode runs anywhere


def test_only_rank_zero_writes_the_ssql_results(monkeypatch):
    from types import SimpleNamespace

    from companion.ssql import config, experiment

    written = []
    monkeypatch.setattr(experiment.results, "write", lambda *a, **k: written.append(a[1]))
    res = SimpleNamespace(config=config.quick(seeds=(0,)), data=SimpleNamespace(description="tiny"), metrics={},
                          timings={}, per_seed={})
    monkeypatch.setenv("RANK", "1")
    experiment._record(res, 1.0)
    assert written == []
    monkeypatch.setenv("RANK", "0")
    experiment._record(res, 1.0)
    assert written == ["quick"]


def test_flowers_with_a_failed_checksum_says_so(tmp_path):
    """The files are there but differ from torchvision's MD5: say which and what to do, not "not in"."""
    from scipy.io import savemat

    from companion.data import DatasetCorruptError, torchvision_dataset

    folder = tmp_path / "flowers-102"
    (folder / "jpg").mkdir(parents=True)
    from PIL import Image

    for i in range(1, 4):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / "jpg" / f"image_{i:05d}.jpg")
    savemat(folder / "imagelabels.mat", {"labels": np.array([[1, 2, 1]])})
    savemat(folder / "setid.mat", {"trnid": np.array([[1]]), "valid": np.array([[2]]), "tstid": np.array([[3]])})
    with pytest.raises(DatasetCorruptError, match=r"imagelabels\.mat and setid\.mat failed their MD5.*Delete") as err:
        torchvision_dataset("flowers102", "train", download=False, root=tmp_path)
    assert "is not in" not in str(err.value)


def test_tobias_full_record_counts_the_images_it_scored():
    from companion.tobias import config
    from companion.tobias.experiment import scale_of

    text = scale_of(config.full(), torch.device("cpu"), {"cub": {"n_images": 12}})
    assert "CUB-200-2011 test (12 images)" in text
