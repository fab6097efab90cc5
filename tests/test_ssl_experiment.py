"""The toolkit's quick claim: short self-supervised pretraining beats the same encoder at random init under kNN."""

import json

import pytest

from companion import results
from companion.ssl import config, experiment


@pytest.mark.slow
def test_quick_simsiam_and_moco_beat_random_init_on_knn():
    cfg = config.quick()
    cfg.methods = ("simsiam", "moco")
    metrics = experiment.run(cfg)
    # InstDisc kNN (k=200): each method after 600 CPU steps vs the same TinyCNN weights before them, 3 seeds.
    # The preset shows gains of about 9 (SimSiam) and 16 (MoCo) points with seed spreads of 2-4 points;
    # the thresholds are loose so that only a real loss of the effect fails.
    assert len(metrics["random"]["knn"]["per_seed"]) == len(cfg.seeds) == 3
    assert metrics["simsiam"]["gain"]["mean"] > 3.0, metrics["simsiam"]["gain"]
    assert metrics["moco"]["gain"]["mean"] > 5.0, metrics["moco"]["gain"]
    assert min(metrics["moco"]["gain"]["per_seed"]) > 0
    recorded = json.loads((results.results_dir() / "ssl_toolkit.json").read_text())
    assert recorded["quick"]["metrics"]["moco"]["knn"]["mean"] == pytest.approx(metrics["moco"]["knn"]["mean"])
    assert 0 <= metrics["random"]["knn"]["mean"] <= 100


def test_main_parses_presets(monkeypatch):
    from companion.ssl import __main__ as cli

    seen = {}
    monkeypatch.setattr(cli, "run", lambda cfg: seen.setdefault("cfg", cfg) and {})
    monkeypatch.setattr(cli, "table", lambda m: "")
    cli.main(["--preset", "full", "--methods", "moco", "--seeds", "1"])
    assert seen["cfg"].dataset == "cifar10" and seen["cfg"].methods == ("moco",) and seen["cfg"].seeds == (1,)
    assert seen["cfg"].pretrain.checkpoint_dir is not None


def test_unknown_dataset_is_an_error():
    cfg = config.quick()
    cfg.dataset = "mnist"
    with pytest.raises(ValueError, match="unknown dataset"):
        experiment.load_data(cfg)
