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
    kw = {"steps": 6, "eval_points": 2, "n_train": 192, "n_test": 96, "linear_epochs": 5, "baseline_steps": 4,
          "methods": tuple(effssl.config.VARIANTS), **kw}
    return effssl.config.quick(**kw)


#: The tiny run with every rung and the study's two baselines (MoCo's queue of 512 needs 512 images).
BASELINE_RUN = {"methods": (*effssl.config.VARIANTS, "simsiam", "moco"), "n_train": 512, "seeds": (0, 1, 2)}


def test_a_tiny_run_records_metrics_claims_and_timings_apart_and_repeats_exactly(tmp_path):
    cfg = _tiny(**BASELINE_RUN)
    torch.set_num_threads(2)
    first = effssl.run(cfg)
    torch.set_num_threads(1)  # run() pins its own threads: the setting outside does not matter
    again = effssl.run(cfg.replace(methods=("npid", "sqrtkl")), record=False)
    rows = first["digits"]
    assert set(rows) == {"untrained", "npid", "calibrated", "corrected", "sqrtkl", "simsiam", "moco"}
    for method in ("untrained", "npid", "sqrtkl"):
        for key in ("knn_per_seed", "bank_knn_per_seed", "linear_per_seed"):
            assert rows[method].get(key) == again["digits"][method].get(key)  # bit for bit
    # each baseline trains for its own budget of two-view steps, not the single branch's
    assert rows["sqrtkl"]["steps"] == 6 and rows["simsiam"]["steps"] == rows["moco"]["steps"] == 4
    assert rows["sqrtkl"]["curve"]["steps"] == [3, 6] and rows["simsiam"]["curve"]["steps"] == [2, 4]
    assert "linear" in rows["sqrtkl"] and "linear" in rows["untrained"]
    saved = results.latest("effssl", "quick", tmp_path / "results")  # a customised run: its own record
    ids = [c["id"] for c in saved["claims"]]
    assert ids == [c[0] for c in CLAIMS] + ["premise_simsiam_learns", "sqrtkl_vs_simsiam",
                                             "premise_moco_learns", "sqrtkl_vs_moco"]
    assert saved["metrics"]["digits"]["sqrtkl"]["bank_knn"] == pytest.approx(rows["sqrtkl"]["bank_knn"])
    # wall times and their ratios live in timings only, so the drift check compares numbers that repeat
    recorded = saved["metrics"]["digits"]
    assert "seconds" not in recorded["sqrtkl"] and "seconds" not in recorded["sqrtkl"]["curve"]
    assert "time_ratio" not in recorded["simsiam"] and "time_ratio_per_seed" not in recorded["simsiam"]
    timed = saved["timings"]["digits"]
    assert timed["sqrtkl"]["seconds"] > 0 and len(timed["moco"]["time_ratio_per_seed"]) == 3
    assert timed["simsiam"]["time_ratio"] == pytest.approx(sum(timed["simsiam"]["time_ratio_per_seed"]) / 3)
    for c in saved["claims"]:
        results.check_claim(c)
        assert c["tier"] == "quick" and c["n"] == 3
    sanity = next(c for c in saved["claims"] if c["id"] == "sanity_knn")
    paired = [a - b for a, b in zip(rows["sqrtkl"]["knn_per_seed"], rows["untrained"]["knn_per_seed"])]
    assert sanity["samples"] == pytest.approx(paired)


def test_the_costs_count_images_and_encoder_passes_of_each_method():
    """One view per step for the single branch (plus the calibration pass over the 512 images), two for
    SimSiam, one query with a backward pass and one momentum key without for MoCo v2."""
    rows = effssl.run(_tiny(**BASELINE_RUN), record=False)["digits"]
    b = 64
    assert rows["npid"]["images"] == rows["npid"]["passes"] == rows["npid"]["backward_passes"] == 6 * b
    assert rows["npid"]["calibration_passes"] == 0
    assert (rows["sqrtkl"]["passes"], rows["sqrtkl"]["backward_passes"]) == (6 * b + 512, 6 * b)
    assert (rows["simsiam"]["images"], rows["simsiam"]["passes"], rows["simsiam"]["backward_passes"]) == (
        4 * b, 8 * b, 8 * b)
    assert (rows["moco"]["passes"], rows["moco"]["backward_passes"]) == (8 * b, 4 * b)


def test_each_baseline_has_a_premise_and_the_efficiency_claim_rests_on_it(tmp_path):
    cfg = _tiny(**BASELINE_RUN, premise_margin=2.5, efficiency_margin=1.5)
    out = effssl.run(cfg)
    rows, claims = out["digits"], {c["id"]: c for c in results.latest("effssl", "quick", tmp_path / "results")["claims"]}
    for name in ("simsiam", "moco"):
        premise, paper = claims[f"premise_{name}_learns"], claims[f"sqrtkl_vs_{name}"]
        assert premise["kind"] == "premise" and premise["test"] == "superiority" and premise["margin"] == 2.5
        assert "at least 2.5 kNN points" in premise["statement"]
        learned = [a - b for a, b in zip(rows[name]["knn_per_seed"], rows["untrained"]["knn_per_seed"])]
        assert premise["samples"] == pytest.approx(learned)
        assert paper["kind"] == "paper" and paper["premises"] == [f"premise_{name}_learns"]
        assert paper["test"] == "non-inferiority" and paper["margin"] == 1.5
        ratio = rows[name]["passes"] / rows["sqrtkl"]["passes"]
        assert f"{ratio:.1f}x the full method's encoder passes" in paper["statement"]
        # a premise that does not hold leaves its paper claim "not testable at this scale"
        if premise["interval_verdict"] != "holds":
            assert paper["verdict"] == results.NOT_TESTABLE and f"premise_{name}_learns" in paper["untestable"]


def test_the_passes_budget_gives_a_baseline_half_the_single_branch_steps():
    rows = effssl.run(_tiny(methods=("sqrtkl", "simsiam"), baseline_budget="passes", seeds=(0,)),
                      record=False)["digits"]
    assert rows["sqrtkl"]["steps"] == 6 and rows["simsiam"]["steps"] == 3
    assert rows["simsiam"]["backward_passes"] == rows["sqrtkl"]["backward_passes"]


def test_baseline_recipes_and_pass_counts():
    from companion.effssl.experiment import baseline_recipe, build_baseline, encoder_views
    from companion.ssl.bench import RECIPES

    cfg = effssl.config.quick()
    assert baseline_recipe(cfg, "moco") == (RECIPES["moco"]["lr"], cfg.weight_decay, RECIPES["moco"]["method_kwargs"])
    assert baseline_recipe(cfg.replace(simsiam_lr=0.3), "simsiam")[0] == 0.3
    with pytest.raises(ValueError, match="two-view baseline"):
        baseline_recipe(cfg, "sqrtkl")
    with pytest.raises(ValueError, match="queue_size=512 is larger than the dataset"):
        build_baseline(cfg, "moco", 100, channels=1)
    with pytest.raises(TypeError, match="no encoder-pass count for Linear"):
        encoder_views(torch.nn.Linear(2, 2))


def test_claims_need_two_seeds():
    out = effssl.run(_tiny(seeds=(0,), methods=("sqrtkl", "simsiam")), record=False)
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


@pytest.mark.parametrize("tier", ["quick", "study"])
def test_recorded_comparisons_with_baselines_follow_their_premises(tier):
    """The committed record: each baseline of the tier's preset has its premise (with the preset's
    margin) and its efficiency claim naming it; a comparison is decided only where its premise holds."""
    from pathlib import Path

    entry = results.read("effssl", Path(__file__).resolve().parents[1] / "results").get(tier)
    if entry is None:
        pytest.skip(f"no {tier} record")
    cfg = {"quick": effssl.config.quick, "study": effssl.config.study}[tier]()
    claims = {c["id"]: c for c in entry["claims"]}
    for name in (m for m in cfg.methods if m in effssl.config.BASELINES):
        premise, paper = claims[f"premise_{name}_learns"], claims[f"sqrtkl_vs_{name}"]
        assert premise["kind"] == "premise" and premise["margin"] == cfg.premise_margin
        assert paper["premises"] == [f"premise_{name}_learns"] and paper["margin"] == cfg.efficiency_margin
        assert (paper["verdict"] == results.NOT_TESTABLE) == (premise["interval_verdict"] != "holds")
