"""NRS: the random-subspace layer, the estimator, the CNN head, the data loaders and the quick claim."""

import io
import urllib.error

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_iris, make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from companion import results
from companion.nrs import (
    MLPBaselineClassifier, NRSClassifier, NRSHead, NRSLayer, NRSNet, NRSRegressor, config, resnet_nrs,
    subspace_indices,
)
from companion.nrs.estimator import epoch_batches
from companion.nrs import tabular
from companion.nrs.__main__ import main

TINY = dict(max_epochs=8, batch_size=32, hidden_size=16, n_mul=2, lr=1e-2, device="cpu")


# ---------------------------------------------------------------------------------------------
# the random subspaces


@pytest.mark.parametrize("d,k,n_mul", [(18, 3, 2), (10, 3, 3), (4, 3, 5), (7, 1, 4), (30, 5, 1)])
def test_subspaces_are_concatenated_permutations_with_valid_indices(d, k, n_mul):
    idx = subspace_indices(d, k, n_mul, seed=1)
    assert idx.shape == (d * n_mul, k, k)
    assert idx.dtype == torch.long
    assert idx.min() >= 0 and idx.max() < d
    # the flat buffer is k^2 * n_mul permutations of range(d) laid end to end
    perms = idx.flatten().view(k * k * n_mul, d)
    assert all(torch.equal(p.sort().values, torch.arange(d)) for p in perms)


def test_subspaces_hold_distinct_features_when_k2_divides_d():
    idx = subspace_indices(18, 3, 4, seed=0).view(-1, 9)
    assert all(len(set(row.tolist())) == 9 for row in idx)


def test_subspaces_inside_one_permutation_are_distinct_when_k2_does_not_divide_d():
    # d = 10, k^2 = 9: blocks that straddle two permutations may repeat a feature, others may not
    idx = subspace_indices(10, 3, 9, seed=0).view(-1, 9)
    flat_start = torch.arange(len(idx)) * 9
    inside = (flat_start // 10) == ((flat_start + 8) // 10)
    for row, whole in zip(idx, inside):
        if whole:
            assert len(set(row.tolist())) == 9


def test_subspaces_are_seeded():
    assert torch.equal(subspace_indices(13, 3, 2, seed=5), subspace_indices(13, 3, 2, seed=5))
    assert not torch.equal(subspace_indices(13, 3, 2, seed=5), subspace_indices(13, 3, 2, seed=6))


@pytest.mark.parametrize("kwargs", [dict(n_features=0), dict(k=0), dict(n_mul=0), dict(n_mul=1.5)])
def test_subspaces_reject_bad_arguments(kwargs):
    args = dict(n_features=5, k=3, n_mul=1) | kwargs
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        subspace_indices(**args)


# ---------------------------------------------------------------------------------------------
# the layer


def test_layer_shapes_and_grouped_conv_parameters():
    layer = NRSLayer(12, k=3, n_mul=4, n_per_group=6, seed=0)
    assert layer(torch.randn(5, 12)).shape == (5, 48)
    conv = layer.blocks[0]
    assert conv.groups == 48 // 6
    assert conv.weight.shape == (48, 6, 3, 3)  # each output mixes 6 subspaces
    assert NRSLayer(12, k=5, n_mul=1).blocks[3].kernel_size == (3, 3)  # 5x5 -> 3x3 -> 1x1: two blocks
    assert len(NRSLayer(12, k=5, n_mul=1).blocks) == 6
    assert NRSLayer(12, k=1, n_mul=1).blocks[0].kernel_size == (1, 1)


def test_layer_computes_one_linear_split_per_subspace():
    """Eval mode with fresh BatchNorm statistics: h_c = ReLU(<W_c, x_S_c> + b_c) / sqrt(1 + eps)."""
    torch.manual_seed(0)
    layer = NRSLayer(7, k=3, n_mul=3, seed=2).eval()
    x = torch.randn(4, 7)
    conv, bn = layer.blocks[0], layer.blocks[1]
    z = x[:, layer.index.view(21, 9)]  # (4, 21, 9)
    expected = torch.relu((z * conv.weight.view(21, 9)).sum(-1) + conv.bias) / (1 + bn.eps) ** 0.5
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_permutation_buffer_survives_save_and_load():
    saved = NRSNet(11, 3, n_mul=3, seed=7)
    buffer = io.BytesIO()
    torch.save(saved.state_dict(), buffer)
    buffer.seek(0)
    assert "nrs.index" in saved.state_dict()
    loaded = NRSNet(11, 3, n_mul=3, seed=8)  # different subspaces until the state is loaded
    assert not torch.equal(loaded.nrs.index, saved.nrs.index)
    loaded.load_state_dict(torch.load(buffer))
    assert torch.equal(loaded.nrs.index, saved.nrs.index)
    x = torch.randn(6, 11)
    torch.testing.assert_close(loaded.eval()(x), saved.eval()(x))


def test_layer_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="odd"):
        NRSLayer(9, k=2)
    with pytest.raises(ValueError, match="n_per_group"):
        NRSLayer(9, k=3, n_mul=1, n_per_group=4)
    layer = NRSLayer(9)
    with pytest.raises(ValueError, match=r"\(batch, 9\)"):
        layer(torch.randn(3, 8))
    with pytest.raises(ValueError, match=r"\(batch, 9\)"):
        layer(torch.randn(9))


# ---------------------------------------------------------------------------------------------
# the estimator


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_same_seed_same_predictions_and_caller_rng_untouched(iris):
    X, y = iris
    np.random.seed(123)
    torch.manual_seed(123)
    before_np, before_torch = np.random.rand(), torch.rand(1)
    np.random.seed(123)
    torch.manual_seed(123)
    a = NRSClassifier(random_state=3, **TINY).fit(X, y)
    assert np.random.rand() == before_np and torch.equal(torch.rand(1), before_torch)
    b = NRSClassifier(random_state=3, **TINY).fit(X, y)
    c = NRSClassifier(random_state=4, **TINY).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))
    assert torch.equal(a.module_.nrs.index, b.module_.nrs.index)


def test_string_labels_are_encoded_and_returned(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = NRSClassifier(random_state=0, **TINY).fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    pred = clf.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= set(names)
    assert clf.score(X, names) > 0.8
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], pred)
    assert clf.n_features_in_ == 4


@pytest.mark.parametrize("bad,match", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_features_are_rejected(iris, bad, match):
    X, y = iris
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match=match):
        NRSClassifier(**TINY).fit(X, y)
    clf = NRSClassifier(**TINY).fit(iris[0], y)
    with pytest.raises(ValueError, match=match):
        clf.predict(X)


def test_bad_targets_and_shapes_are_rejected(iris):
    X, y = iris
    with pytest.raises(ValueError, match="only one class"):
        NRSClassifier(**TINY).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        NRSClassifier(**TINY).fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        NRSClassifier(**TINY).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="0 sample"):
        NRSClassifier(**TINY).fit(X[:0], y[:0])
    with pytest.raises(NotFittedError):
        NRSClassifier(**TINY).predict(X)
    clf = NRSClassifier(**TINY).fit(X, y)
    with pytest.raises(ValueError, match="4 features"):
        clf.predict(X[:, :3])


@pytest.mark.parametrize("param,value", [
    ("subspace_size", 2), ("n_mul", 0), ("n_mul", "many"), ("batch_size", 1), ("max_epochs", 0), ("lr", 0.0),
    ("validation_fraction", 1.0), ("n_per_group", 5), ("n_threads", 0),
])
def test_bad_hyperparameters_name_themselves(iris, param, value):
    X, y = iris
    with pytest.raises(ValueError, match=param):
        NRSClassifier(**(TINY | {param: value})).fit(X, y)


def test_early_stopping_uses_a_validation_split_of_the_training_data():
    X, y = make_blobs(300, centers=3, cluster_std=0.5, random_state=0)
    clf = NRSClassifier(**(TINY | dict(max_epochs=60, early_stopping=True, n_iter_no_change=3)), random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_epochs_ < 60  # separable blobs: validation saturates early
    assert clf.best_epoch_ == 1 + int(np.argmax(clf.validation_scores_))
    assert clf.n_epochs_ == clf.best_epoch_ + 3
    assert clf.score(X, y) > 0.95


def test_drops_into_cross_validation_pipelines_and_grid_search():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[::3], y[::3]
    scores = cross_val_score(NRSClassifier(random_state=0, **TINY), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    pipe = make_pipeline(MinMaxScaler(), NRSClassifier(random_state=0, **TINY)).fit(X, y)
    assert pipe.score(X, y) > 0.85
    grid = GridSearchCV(NRSClassifier(random_state=0, **TINY), {"n_mul": [1, 2]}, cv=2).fit(X, y)
    assert grid.best_params_["n_mul"] in (1, 2)


def test_mlp_baseline_trains_without_subspaces(iris):
    X, y = iris
    clf = MLPBaselineClassifier(random_state=0, **{k: v for k, v in TINY.items() if k != "n_mul"}).fit(X, y)
    assert not hasattr(clf.module_, "nrs")
    assert clf.score(X, y) > 0.8


def test_default_random_state_is_seeded(iris):
    X, y = iris
    a = NRSClassifier(**TINY).fit(X, y).predict_proba(X)
    b = NRSClassifier(**TINY).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert NRSClassifier().random_state == 0 and NRSRegressor().random_state == 0


@pytest.mark.parametrize("n,batch,expected", [(255, 128, (2, 128)), (129, 128, (2, 65)), (105, 128, (1, 105)),
                                              (1000, 128, (8, 125)), (256, 128, (2, 128))])
def test_an_epoch_uses_every_row_in_near_equal_batches(n, batch, expected):
    steps, b = epoch_batches(n, batch)
    assert (steps, b) == expected
    assert (steps - 1) * b < n <= steps * b and b <= batch


def test_an_epoch_of_255_rows_takes_two_steps(monkeypatch):
    from companion import train

    seen = []
    real_fit = train.fit

    def counting_fit(model, data, step, config, **kw):
        seen.append((config.steps, config.batch_size, config.drop_last))
        return real_fit(model, data, step, config, **kw)

    monkeypatch.setattr(train, "fit", counting_fit)
    X, y = make_blobs(255, centers=2, random_state=0)
    NRSClassifier(**(TINY | dict(max_epochs=2, batch_size=128))).fit(X, y)
    assert seen == [(2, 128, False)] * 2  # before: 255 // 128 = 1 step, 127 rows skipped per epoch


def test_unit_sample_weights_change_nothing_and_zero_weights_drop_rows(iris):
    X, y = iris
    ref = NRSClassifier(**TINY).fit(X, y).predict_proba(X)
    same = NRSClassifier(**TINY).fit(X, y, sample_weight=np.full(len(y), 3.0)).predict_proba(X)
    np.testing.assert_allclose(ref, same, rtol=1e-5, atol=1e-6)  # weights are normalised to mean 1
    # weight only class 0 and 1: class 2 is never learned from, so it is (almost) never predicted
    w = (y != 2).astype(float)
    clf = NRSClassifier(**TINY).fit(X, y, sample_weight=w)
    assert (clf.predict(X) == 2).mean() < 0.1


def test_class_weight_balanced_lifts_the_minority_class():
    from sklearn.datasets import make_classification
    from sklearn.metrics import recall_score

    X, y = make_classification(600, n_features=8, weights=[0.93], flip_y=0.05, class_sep=0.6, random_state=1)
    plain = NRSClassifier(**TINY).fit(X, y)
    balanced = NRSClassifier(**TINY, class_weight="balanced").fit(X, y)
    as_dict = NRSClassifier(**TINY, class_weight={0: 1.0, 1: 12.0}).fit(X, y)
    r = [recall_score(y, m.predict(X)) for m in (plain, balanced, as_dict)]
    assert r[1] > r[0] + 0.1 and r[2] > r[0] + 0.1


def test_bad_weights_are_rejected(iris):
    X, y = iris
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        NRSClassifier(**TINY).fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="sample_weight.shape"):
        NRSClassifier(**TINY).fit(X, y, sample_weight=np.ones(3))
    # scikit-learn >= 1.9 refuses all-zero weights itself; before that the estimator does
    with pytest.raises(ValueError, match="at least one non-zero|sums to zero: no row would be learned from"):
        NRSClassifier(**TINY).fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="class_weight must be None, 'balanced' or a dict"):
        NRSClassifier(**TINY, class_weight="heavy").fit(X, y)
    with pytest.raises(ValueError, match="class_weight names classes not in y"):
        NRSClassifier(**TINY, class_weight={7: 2.0}).fit(X, y)


def test_regressor_fits_one_and_several_outputs():
    from sklearn.datasets import make_regression

    X, y = make_regression(400, n_features=6, n_informative=4, noise=1.0, random_state=0)
    y = y + 1000.0  # standardized targets: a large offset is no problem
    small = dict(max_epochs=40, batch_size=64, hidden_size=32, n_mul=4, lr=1e-2, device="cpu")
    reg = NRSRegressor(**small).fit(X, y)
    assert reg.predict(X).shape == (400,) and reg.score(X, y) > 0.9
    Y = np.stack([y, -2 * y], 1)
    multi = NRSRegressor(**small).fit(X, Y)
    assert multi.predict(X).shape == (400, 2) and multi.score(X, Y) > 0.9
    with pytest.raises(ValueError, match="n_samples=1"):
        NRSRegressor(**small).fit(X[:1], y[:1])


# ---------------------------------------------------------------------------------------------
# the CNN head


def test_resnet_with_nrs_head_shapes_and_groups():
    head = NRSHead(512, 7, n_mul=2, n_per_group=64)
    assert head(torch.randn(3, 512)).shape == (3, 7)
    assert head.nrs.blocks[0].groups == 1024 // 64
    net = resnet_nrs("resnet18", n_classes=5, head="nrs", n_mul=1, n_per_group=8).eval()
    assert isinstance(net.fc, NRSHead)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    assert isinstance(resnet_nrs("resnet18", n_classes=5, head="linear").fc, torch.nn.Linear)
    with pytest.raises(ValueError, match="head"):
        resnet_nrs("resnet18", head="forest")
    with pytest.raises(ValueError, match="arch"):
        resnet_nrs("vgg16")


def test_missing_imagenet_weights_say_what_to_fetch(monkeypatch):
    from torchvision import models

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(models, "resnet50", offline)
    with pytest.raises(RuntimeError, match=r"resnet50-.*\.pth"):
        resnet_nrs("resnet50", pretrained=True)


def test_cub_pipeline_runs_on_a_fake_cub_folder(tmp_path):
    from PIL import Image

    from companion.data import cub200
    from companion.nrs.cnn import train_cub

    folder = tmp_path / "CUB_200_2011"
    (folder / "images" / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": [], "bounding_boxes.txt": []}
    for i in range(1, 9):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / "images" / "a" / f"{i}.jpg")
        lines["images.txt"].append(f"{i} a/{i}.jpg")
        lines["image_class_labels.txt"].append(f"{i} {1 + i % 2}")
        lines["train_test_split.txt"].append(f"{i} {int(i <= 6)}")
        lines["bounding_boxes.txt"].append(f"{i} 1 1 20 20")
    for name, rows in lines.items():
        (folder / name).write_text("\n".join(rows) + "\n")
    records = cub200(tmp_path, download=False)
    out = train_cub(records, "nrs", arch="resnet18", pretrained=False, image_size=32, epochs=1, batch_size=2,
                    n_mul=1, n_per_group=8, num_workers=0, checkpoint_dir=tmp_path / "ckpt", device="cpu",
                    progress=False)
    assert out["steps"] == 3 and 0 <= out["top1"] <= 100
    assert (tmp_path / "ckpt" / "last.pt").exists()


# ---------------------------------------------------------------------------------------------
# data and the experiment


def test_openml_data_sets_fail_clearly_when_offline(monkeypatch):
    import sklearn.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    with pytest.raises(tabular.OpenMLUnavailableError, match=r"fetch_openml\(data_id=6\)"):
        tabular.load_table("letter")
    with pytest.raises(ValueError, match="unknown data set"):
        tabular.load_table("covtype")


def test_compare_rejects_bad_arguments():
    table = tabular.load_table("iris")
    with pytest.raises(ValueError, match="timer"):
        tabular.compare(table, {"rf": {}}, rounds=1, timer="gpu")
    with pytest.raises(ValueError, match="unknown model"):
        tabular.compare(table, {"svm": {}}, rounds=1)
    with pytest.raises(ValueError, match="rounds"):
        tabular.splits(table, 0, 0.3, 0)
    fixed = tabular.Table("t", table.X, table.y, test_index=np.arange(100, 150))
    (tr, te), = tabular.splits(fixed, 1, 0.3, 0)
    assert set(te) == set(range(100, 150)) and len(tr) == 100


def test_module_entry_point_records_results():
    metrics = main(["--preset", "quick", "--datasets", "iris", "--rounds", "2"])
    recorded = results.latest("nrs", "quick")
    assert recorded["metrics"]["datasets"]["iris"]["nrs"]["acc_mean"] == metrics["datasets"]["iris"]["nrs"]["acc_mean"]
    assert set(metrics["datasets"]["iris"]) == {"nrs", "mlp", "rf", "hgb"}
    assert metrics["summary"]["n_datasets"] == 1


def test_full_preset_follows_the_paper_settings():
    cfg = config.full()
    assert cfg.datasets == ("letter", "satimage", "usps", "mnist", "gisette")
    assert cfg.rounds == 5 and cfg.nrs["lr"] == 1e-4 and cfg.nrs["subspace_size"] == 3
    assert cfg.model_params("letter")["nrs"]["n_mul"] == 100
    assert cfg.model_params("gisette")["nrs"]["n_mul"] == 1
    assert cfg.cub.arch == "resnet50" and cfg.cub.n_mul == 2 and cfg.cub.n_per_group == 64
    with pytest.raises(ValueError, match="mode"):
        config.Config(mode="medium", datasets=("iris",))


@pytest.mark.slow
def test_quick_run_nrs_learns_and_loses_clearly_on_noise_features():
    """On breast_cancer NRS learns (>= 94%); on the noisy data set (46 of 50 features are noise)
    it loses to gradient boosting by more than 10 points on every split: the subspaces that hold
    no informative feature cost it, where a tree's split search skips them."""
    cfg = config.quick()
    cfg.datasets = ("breast_cancer", "noisy")
    from companion.nrs.experiment import run_tabular

    res = run_tabular(cfg, verbose=False)["datasets"]
    assert res["breast_cancer"]["nrs"]["acc_mean"] >= 94.0
    gaps = np.subtract(res["noisy"]["hgb"]["accs"], res["noisy"]["nrs"]["accs"])
    assert len(gaps) == 2 and gaps.min() > 10


def test_full_tabular_run_resumes_at_the_first_unfinished_data_set(tmp_path, monkeypatch):
    from companion.nrs import experiment

    small = {"max_epochs": 2, "hidden_size": 8, "device": "cpu"}
    cfg = config.Config(mode="full", datasets=("iris",), rounds=1, nrs={"n_mul": 1, **small}, mlp=small,
                        rf={"n_estimators": 5}, hgb={"max_iter": 5}, checkpoint_dir=str(tmp_path))
    first = experiment.run_tabular(cfg, verbose=False)
    assert (tmp_path / "tabular.json").exists()

    def must_not_rerun(*args, **kwargs):
        raise AssertionError("a finished data set was trained again")

    monkeypatch.setattr(experiment, "compare", must_not_rerun)
    assert experiment.run_tabular(cfg, verbose=False) == first
    cfg.rounds = 2  # a different setting invalidates the saved result
    with pytest.raises(AssertionError, match="trained again"):
        experiment.run_tabular(cfg, verbose=False)


def test_synthetic_data_sets_are_fixed_and_hard_for_subspaces():
    red, noisy = tabular.load_table("redundant"), tabular.load_table("noisy")
    assert red.X.shape == (600, 10) and noisy.X.shape == (600, 50)
    np.testing.assert_array_equal(red.X, tabular.load_table("redundant").X)  # seeded: the same every time
    assert set(np.unique(red.y)) == {0, 1}
    with pytest.raises(ValueError, match="synthetic"):
        tabular.load_table("nonsense")


def test_claims_pair_nrs_with_each_baseline_per_data_set():
    from companion.nrs.experiment import dataset_claims

    per = {"iris": {"nrs": {"accs": [90.0, 92.0, 94.0]}, "rf": {"accs": [91.0, 91.0, 91.0]},
                    "hgb": {"accs": [80.0, 81.0, 85.0]}}}
    claims = {c["id"]: c for c in dataset_claims(per, "quick")}
    assert set(claims) == {"nrs_vs_rf_iris", "nrs_vs_hgb_iris"}
    assert claims["nrs_vs_rf_iris"]["samples"] == [-1.0, 1.0, 3.0]
    assert claims["nrs_vs_hgb_iris"]["estimate"] == pytest.approx(10.0)
    assert claims["nrs_vs_hgb_iris"]["verdict"] == "holds"  # +10, +11, +9
    assert claims["nrs_vs_rf_iris"]["verdict"] == "inconclusive"  # -1, +1, +3: the interval spans 0
    # over several data sets, one sample per split: the mean over the data sets of that split
    per["wine"] = {"nrs": {"accs": [70.0, 70.0, 70.0]}, "rf": {"accs": [69.0, 71.0, 73.0]},
                   "hgb": {"accs": [60.0, 61.0, 62.0]}}
    pooled = {c["id"]: c for c in dataset_claims(per, "quick")}
    assert pooled["nrs_vs_rf_mean"]["samples"] == [0.0, 0.0, 0.0] and pooled["nrs_vs_rf_mean"]["n"] == 3
    assert pooled["nrs_vs_rf_mean"]["verdict"] == "too few samples"  # no spread: no interval
    assert pooled["nrs_vs_hgb_mean"]["samples"] == pytest.approx([10.0, 10.0, 8.5])


def test_fit_times_go_to_timings_not_metrics():
    per = {"iris": {"nrs": {"acc_mean": 90.0, "acc_std": 0.0, "accs": [90.0], "fit_s": 2.0, "predict_s": 0.1},
                    "rf": {"acc_mean": 91.0, "acc_std": 0.0, "accs": [91.0], "fit_s": 0.5, "predict_s": 0.2}}}
    accs, times = tabular.split_times(per)
    assert accs["iris"]["nrs"] == {"acc_mean": 90.0, "acc_std": 0.0, "accs": [90.0]}
    assert times["iris"]["rf"] == {"fit_s": 0.5, "predict_s": 0.2}
    assert tabular.fit_time_ratios(per) == {"iris": {"rf_over_nrs": 0.25}}
    assert "fit time / NRS's" in tabular.markdown_table(accs, times)


def test_command_line_full_preset_refuses_a_cpu_only_machine(monkeypatch, capsys):
    from companion import runtime
    from companion.nrs import __main__ as cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("COMPANION_TRACEBACK", raising=False)
    assert runtime.run_cli(cli.main, ["--preset", "full"]) == 1
    assert "needs a GPU" in capsys.readouterr().err
    with pytest.raises(ValueError, match="runs on the CPU"):
        cli.main(["--preset", "quick", "--device", "cuda"])
    assert config.study().rounds == 5 and config.study().datasets == config.quick().datasets
    assert config.quick().rounds == 2
