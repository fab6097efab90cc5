"""The toolkit's benchmark (companion.ssl.bench) and its sanity claim: on the shared digits benchmark,
self-supervised pretraining beats the same encoder at random initialization by kNN and linear probe."""

import pytest
import torch

from companion import ssl
from companion.ssl import bench, config, experiment


def test_bench_data_is_a_fixed_split_at_every_resolution():
    d8, d16 = bench.bench_data(8), bench.bench_data(16)
    assert d8.train_x.shape == (1200, 1, 8, 8) and d8.test_x.shape == (597, 1, 8, 8)
    assert d16.train_x.shape == (1200, 1, 16, 16) and d16.resolution == 16
    assert torch.equal(d8.train_y, d16.train_y) and torch.equal(d8.test_y, d16.test_y)  # the same digits
    assert 0.0 <= float(d8.train_x.min()) and float(d8.train_x.max()) <= 1.0
    assert sorted(d8.train_y.unique().tolist()) == list(range(10))
    xtr, ytr, xte, yte = d8
    assert xtr is d8.train_x and yte is d8.test_y
    with pytest.raises(ValueError, match="resolution must be at least 8"):
        bench.bench_data(4)
    with pytest.raises(ValueError, match="n_train must be below 1797"):
        bench.bench_data(n_train=1797)


def test_bench_encoder_and_config_follow_the_recipes():
    a, b = bench.bench_encoder(3), bench.bench_encoder(3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # same seed, same start
    assert a.feature_dim == 32 and a.in_channels == 1
    cfg = bench.bench_config("simsiam", "study", seed=2)
    assert cfg.steps == bench.STEPS["study"] and cfg.lr == 0.2 and cfg.seed == 2 and cfg.num_threads == 1
    assert cfg.method_kwargs == {"proj_dim": 512, "pred_dim": 128, "proj_layers": 2}
    assert cfg.augment == {"scale": (0.5, 1.0), "p_flip": 0.0} and cfg.blur is False
    assert bench.bench_config("moco", steps=7, lr=0.1).steps == 7
    with pytest.raises(ValueError, match="method must be one of"):
        bench.bench_config("dino")
    with pytest.raises(ValueError, match="tier must be one of"):
        bench.bench_config("moco", "full")


def test_pair_views_draws_two_independent_views_in_one_call():
    x = bench.bench_data(8).train_x[:16]
    torch.manual_seed(0)
    v1, v2 = bench.bench_views(8)((x,), None)
    assert v1.shape == v2.shape == (16, 1, 8, 8)
    assert not torch.equal(v1, v2)  # independent crops of the same images
    with pytest.raises(TypeError, match="GPUAugment"):
        bench.PairViews(lambda t: t)


def test_pretrain_views_hook_slices_extra_tensors_with_the_images():
    x = bench.bench_data(8).train_x[:128]
    tag = torch.arange(128, dtype=torch.float32)
    seen = []

    def views(batch, aug):
        images, t = batch
        assert torch.equal(images, x[t.long()])  # the extra tensor is sliced together with the images
        seen.append(len(images))
        return aug(images), aug(images)

    cfg = bench.bench_config("simclr", steps=3, batch_size=32)
    model, fit = ssl.pretrain("simclr", bench.bench_encoder(0), (x, tag), cfg, views=views)
    assert seen == [32, 32, 32] and fit.steps == 3
    with pytest.raises(ValueError, match="needs views="):
        ssl.pretrain("simclr", None, (x, tag), cfg)
    with pytest.raises(ValueError, match="gpu_augment=False"):
        ssl.pretrain("simclr", None, x, cfg.replace(gpu_augment=False), views=views)
    with pytest.raises(TypeError, match="views must be a callable"):
        ssl.pretrain("simclr", None, x, cfg, views=3)


def test_pretrain_accepts_a_ready_two_view_dataset():
    x = bench.bench_data(8).train_x[:64]
    ds = ssl.TwoViewDataset(x, ssl.ssl_augment(8, channels=1, p_flip=0.0))
    cfg = bench.bench_config("byol", steps=2, batch_size=32, gpu_augment=False)
    _, fit = ssl.pretrain("byol", bench.bench_encoder(0), None, cfg, two_view_dataset=ds)
    assert fit.steps == 2
    with pytest.raises(ValueError, match="not both"):
        ssl.pretrain("byol", None, x, cfg, views=lambda b, a: (b[0], b[0]), two_view_dataset=ds)


def test_sanity_claims_pair_by_seed_and_reject_unpaired_lists():
    claims = bench.sanity_claims("quick", {"knn": [80.0, 82.0], "linear": [93.0, 94.0]},
                                 {"knn": [70.0, 71.0], "linear": [88.0, 87.0]})
    assert [c["id"] for c in claims] == ["sanity_knn", "sanity_linear"]
    assert claims[0]["samples"] == [10.0, 11.0] and claims[1]["estimate"] == pytest.approx(6.0)
    with pytest.raises(ValueError, match="pair them by seed"):
        bench.sanity_claims("quick", {"knn": [1.0], "linear": [1.0]}, {"knn": [1.0, 2.0], "linear": [1.0, 2.0]})


def test_untrained_baseline_has_its_known_accuracy():
    # the benchmark's floor: the seed-0 TinyCNN of width 8 at random initialization, k = 200
    acc = bench.bench_evaluate(bench.bench_encoder(0), bench.bench_data(8), linear=False)
    assert acc["knn"] == pytest.approx(70.69, abs=0.2)


@pytest.mark.slow
def test_quick_sanity_moco_beats_the_untrained_encoder_by_knn_and_linear_probe():
    cfg = config.quick()
    cfg.methods = ("moco",)
    metrics = experiment.run(cfg, record=False)
    claims = {c["id"]: c for c in metrics["claims"]}
    # 600 steps of MoCo v2 on the benchmark, seeds 0 and 1: about +15 kNN and +6 linear-probe points over
    # the same weights before pretraining (seed 0 alone: +18.6 / +7.0); the bounds leave room for seed noise
    assert claims["sanity_knn"]["n"] == 2 and claims["sanity_knn"]["estimate"] > 8.0
    assert claims["sanity_linear"]["estimate"] > 3.0
    assert min(claims["sanity_knn_moco"]["samples"]) > 0
    assert metrics["random"]["knn"]["per_seed"][0] == pytest.approx(70.69, abs=0.2)


def test_seeds_in_parallel_processes_give_the_numbers_of_a_row():
    from dataclasses import replace

    cfg = config.quick()
    cfg.methods, cfg.pretrain = ("simsiam",), cfg.pretrain.replace(steps=5)
    cfg.linear_epochs = 3
    row = experiment.run(replace(cfg, workers=1), record=False)
    parallel = experiment.run(replace(cfg, workers=2), record=False)
    for name in ("random", "simsiam"):
        for probe in ("knn", "knn_small_k", "linear"):
            assert parallel[name][probe]["per_seed"] == row[name][probe]["per_seed"], (name, probe)
    assert parallel["simsiam"]["final_loss"]["per_seed"] == row["simsiam"]["final_loss"]["per_seed"]
    assert config.quick().workers == config.study().workers == 2


def test_main_parses_presets(monkeypatch):
    from companion.ssl import __main__ as cli

    seen = {}
    monkeypatch.setattr(cli, "run", lambda cfg: seen.setdefault("cfg", cfg) and {"claims": []})
    monkeypatch.setattr(cli, "table", lambda m: "")
    cli.main(["--preset", "full", "--device", "cpu", "--methods", "moco", "--seeds", "1"])
    assert seen["cfg"].dataset == "cifar10" and seen["cfg"].methods == ("moco",) and seen["cfg"].seeds == (1,)
    assert seen["cfg"].pretrain.checkpoint_dir is not None
    seen.clear()
    cli.main(["--preset", "study"])
    assert seen["cfg"].seeds == tuple(range(10)) and seen["cfg"].methods == bench.BENCH_METHODS
    with pytest.raises(ValueError, match="unknown methods"):
        cli.main(["--methods", "dino"])


def test_unknown_dataset_is_an_error():
    cfg = config.quick()
    cfg.dataset = "mnist"
    with pytest.raises(ValueError, match="unknown dataset"):
        experiment.load_data(cfg)
