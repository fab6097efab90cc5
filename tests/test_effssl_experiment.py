"""The efficient-SSL experiment: the recorded numbers and claims, bit-repeatability whatever the thread
setting, the sanity claim on quick data, and the command line."""


import pytest
import torch

from companion import effssl, results
from companion.effssl.__main__ import main
from companion.effssl.experiment import CLAIMS, eval_steps


def test_eval_steps_end_at_the_last_step():
    assert eval_steps(80, 3) == [27, 53, 80]
    assert eval_steps(2, 5) == [1, 2]


def _tiny(**kw):
    return effssl.config.quick(steps=6, eval_points=2, n_train=192, n_test=96, linear_epochs=5, **kw)


def test_a_tiny_run_records_metrics_claims_and_timings_apart_and_repeats_exactly(tmp_path):
    cfg = _tiny(methods=effssl.config.METHODS)
    torch.set_num_threads(2)
    first = effssl.run(cfg)
    torch.set_num_threads(1)  # run() pins its own threads: the setting outside does not matter
    again = effssl.run(cfg.replace(methods=("npid", "sqrtkl")), record=False)
    rows = first["digits"]
    assert set(rows) == {"untrained", "npid", "calibrated", "corrected", "sqrtkl", "simsiam"}
    for method in ("untrained", "npid", "sqrtkl"):
        for key in ("knn_per_seed", "bank_knn_per_seed", "linear_per_seed"):
            assert rows[method].get(key) == again["digits"][method].get(key)  # bit for bit
    assert rows["sqrtkl"]["steps"] == 6 and rows["simsiam"]["steps"] == 3  # the same number of encoder passes
    assert rows["sqrtkl"]["curve"]["steps"] == [3, 6]
    assert "linear" in rows["sqrtkl"] and "linear" in rows["untrained"]
    saved = results.latest("effssl", "quick", tmp_path / "results")  # a customised run: its own record
    assert [c["id"] for c in saved["claims"]] == [c[0] for c in CLAIMS]
    assert saved["metrics"]["digits"]["sqrtkl"]["bank_knn"] == pytest.approx(rows["sqrtkl"]["bank_knn"])
    # wall times live in timings only, so the drift check compares numbers that repeat
    recorded = saved["metrics"]["digits"]["sqrtkl"]
    assert "seconds" not in recorded and "seconds" not in recorded["curve"]
    assert saved["timings"]["digits"]["sqrtkl"]["seconds"] > 0
    for c in saved["claims"]:
        results.check_claim(c)
        assert c["tier"] == "quick" and c["n"] == 2
    sanity = next(c for c in saved["claims"] if c["id"] == "sanity_knn")
    paired = [a - b for a, b in zip(rows["sqrtkl"]["knn_per_seed"], rows["untrained"]["knn_per_seed"])]
    assert sanity["samples"] == pytest.approx(paired)


def test_claims_need_two_seeds():
    out = effssl.run(_tiny(seeds=(0,), methods=("sqrtkl",)), record=False)
    assert out["claims"] == []


@pytest.mark.slow
def test_sanity_on_quick_data_the_full_method_beats_the_untrained_encoder_on_every_seed():
    """The sanity claim at the quick preset's scale (two seeds, 60 steps): the full method's kNN and
    linear-probe accuracies are above the untrained encoder's for each seed, not only on average."""
    out = effssl.run(effssl.config.quick(methods=("sqrtkl",)), record=False)
    rows = out["digits"]
    for metric in ("knn", "linear"):
        diffs = [a - b for a, b in zip(rows["sqrtkl"][f"{metric}_per_seed"], rows["untrained"][f"{metric}_per_seed"])]
        assert min(diffs) > 0, (metric, diffs)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset must be"):
        effssl.load_data(effssl.config.quick(), "mnist")


def test_cli_help_names_the_module_and_the_presets(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m companion.effssl") and "__main__.py" not in text
    assert "{quick,study,colab,full}" in text


def test_cli_rejects_epochs_outside_the_full_preset(capsys):
    with pytest.raises(SystemExit):
        main(["--preset", "quick", "--epochs", "3"])
    assert "--epochs applies to the colab and full presets" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_cli_full_preset_refuses_a_cpu_only_machine():
    with pytest.raises(RuntimeError, match="needs a GPU"):
        main(["--preset", "full"])
    with pytest.raises(RuntimeError, match="the colab preset .* needs a GPU"):
        main(["--preset", "colab"])
