"""PSOL experiments: the quick claim on the quick preset, repeatability, and the full pipeline on a
tiny stand-in for CUB-200-2011 (random weights, no download)."""

import numpy as np
import pytest
import torch

from companion import psol, results
from companion.data import DatasetMissingError


@pytest.mark.slow
def test_quick_run_measures_the_claims_over_seeds():
    run = psol.run(psol.quick(progress=False))
    m = run.metrics
    whole = m["whole_image"]["gt_known_loc"]
    # DDT, on the trained encoder (the regressor's teacher) and on a random CNN (the extra arm), with the
    # sign convention, localizes far better than the whole image
    assert m["ddt_encoder"]["gt_known_loc"] > whole + 30 and m["ddt_random"]["gt_known_loc"] > whole + 30
    # a regressor that never saw a true box or a class label learns to localize from pseudo boxes
    assert m["psol_regressor"]["gt_known_loc"] > whole + 30
    assert m["psol_regressor"]["gt_known_loc"] > m["cam"]["gt_known_loc"] + 20
    # a fixed centred box is a far stronger baseline than the whole image
    assert m["best_fixed_box"]["gt_known_loc"] >= m["centred_box"]["gt_known_loc"] - 5
    assert m["centred_box"]["gt_known_loc"] > whole + 20
    # trained on the true boxes, the same regressor is the ceiling: the pseudo boxes' noise costs accuracy
    assert m["oracle_regressor"]["gt_known_loc"] > m["psol_regressor"]["gt_known_loc"]
    # the encoder's pseudo boxes are better labels than the random CNN's, and the regressor shows it
    pb = m["pseudo_boxes"]
    assert pb["ddt_encoder_train_gt_known"] > pb["ddt_random_train_gt_known"]
    assert m["psol_regressor"]["gt_known_loc"] > m["psol_regressor_random"]["gt_known_loc"]
    p = m["paired"]
    assert p["n_test"] == 200 and p["both"] + p["regressor_only"] <= 200
    # the claims pair the methods seed by seed, and the first seed is the table's
    seeds = m["seeds"]
    assert len(seeds["psol_regressor_gt_known"]) == 3 and "psol_regressor_random_gt_known" not in seeds
    assert seeds["psol_regressor_gt_known"][0] == m["psol_regressor"]["gt_known_loc"]
    claims = {c["id"]: c for c in run.claims}
    # quick: the extra arm's regressor runs on the first seed only, so its claim is the study's
    assert set(claims) == {"premise_pseudo_boxes_good", "regressor_beats_ddt", "regressor_beats_fixed_box",
                           "ddt_beats_fixed_box"}
    diffs = np.subtract(seeds["psol_regressor_gt_known"], seeds["ddt_encoder_gt_known"])
    assert claims["regressor_beats_ddt"]["samples"] == pytest.approx(diffs.tolist())
    premise = claims["premise_pseudo_boxes_good"]
    assert premise["kind"] == "premise" and premise["margin"] == 10.0 and premise["threshold"] == 10.0
    assert premise["samples"] == pytest.approx(np.subtract(seeds["pseudo_encoder_train"],
                                                           seeds["fixed_box_train"]).tolist())
    assert all(c["n"] == 3 and c["tier"] == "quick" for c in claims.values())
    # the regressor's claims rest on the premise: decided only where it holds
    for cid in ("regressor_beats_ddt", "regressor_beats_fixed_box"):
        assert claims[cid]["premises"] == ["premise_pseudo_boxes_good"]
        if premise["interval_verdict"] != "holds":
            assert claims[cid]["verdict"] == results.NOT_TESTABLE
        else:
            assert claims[cid]["verdict"] != results.NOT_TESTABLE
    assert claims["ddt_beats_fixed_box"]["premises"] == []
    stored = results.latest("psol", "quick")
    assert stored["metrics"]["psol_regressor"]["gt_known_loc"] == pytest.approx(m["psol_regressor"]["gt_known_loc"])
    assert [c["verdict"] for c in stored["claims"]] == [c["verdict"] for c in run.claims]
    assert stored["provenance"]["seeds"] == [0, 1, 2]


def _small(**changes):
    return psol.quick(n_train=96, n_test=32, encoder_steps=3, regressor_steps=3, oracle=False, progress=False,
                      write_results=False).replace(**changes)


def test_seeds_in_parallel_processes_give_the_numbers_of_a_row():
    row, parallel = psol.run(_small(workers=1)), psol.run(_small(workers=2))
    assert parallel.metrics == row.metrics
    assert set(parallel.artifacts) == set(row.artifacts)  # the first seed's figures come back too


def test_quick_run_repeats_exactly_with_a_seed():
    small = _small()
    first = psol.run(small)
    a, b = first.metrics, psol.run(small).metrics
    assert a == b
    assert set(a) >= {"whole_image", "centred_box", "best_fixed_box", "cam", "ddt_random", "ddt_encoder",
                      "psol_regressor", "psol_regressor_random", "classifier", "paired", "seeds"}
    assert first.claims[0]["n"] == 3
    with pytest.raises(ValueError, match="at least 3 seeds.*got \\(0, 1\\)"):
        psol.run(small.replace(seeds=(0, 1)))
    # the chapter's explorable figure draws from the run's artifacts
    from companion.psol.figures import DDTExplorer

    explorer = DDTExplorer(first, fit_per_class=4)
    pmap, box = explorer.ddt("random layer2", 64, 0)
    assert pmap.shape == (8, 8) and box.shape == (4,)
    assert explorer.draw(1, "encoder stage 2", 128).axes
    with pytest.raises(ValueError, match="source must be one of"):
        explorer.ddt("imagenet", 64, 0)


def test_regressor_learns_the_encoder_boxes_and_the_extra_arm_the_random_ones():
    run = psol.run(_small(random_arm="all"))
    a, m = run.artifacts, run.metrics
    # the paper's setup: the regressor's labels are the encoder's DDT boxes, and DDT's held-out boxes
    # (its teacher's) are scored as ddt_encoder
    tr = a["train"]
    teacher = psol.pipeline.ddt_train_test(a["encoder"].trunk(2), tr.images, tr.labels, normalize=False)
    assert torch.equal(a["psol"].pseudo_boxes, teacher.pseudo_boxes)
    assert m["pseudo_boxes"]["ddt_encoder_train_gt_known"] == pytest.approx(
        psol.localization_metrics(a["psol"].pseudo_boxes, tr.boxes, tr.labels)["gt_known_loc"])
    assert torch.equal(a["boxes"]["ddt_encoder"], a["psol"].ddt_test_boxes)
    assert torch.equal(a["boxes"]["psol_regressor"], a["psol"].boxes)
    # the extra arm learns the random CNN's boxes, which differ from the encoder's
    assert torch.equal(a["psol_random"].pseudo_boxes, a["random_ddt"].pseudo_boxes)
    assert not torch.equal(a["psol_random"].pseudo_boxes, a["psol"].pseudo_boxes)
    assert torch.equal(a["boxes"]["ddt_random"], a["psol_random"].ddt_test_boxes)
    # with the arm on every seed, its claim is measured: the same regressor on the two teachers' boxes
    assert len(m["seeds"]["psol_regressor_random_gt_known"]) == 3
    claims = {c["id"]: c for c in run.claims}
    better = claims["sanity_better_teacher"]
    assert better["kind"] == "sanity" and better["premises"] == []
    assert better["samples"] == pytest.approx(np.subtract(m["seeds"]["psol_regressor_gt_known"],
                                                          m["seeds"]["psol_regressor_random_gt_known"]).tolist())
    # the best box that ignores the image, on the training scenes, is at least the whole image and the centred box
    fixed = m["pseudo_boxes"]["fixed_box_train_gt_known"]
    for side in (1.0, 0.6):
        box = psol.experiment.centred_boxes(len(tr), 64, side)
        assert fixed >= psol.localization_metrics(box, tr.boxes, tr.labels)["gt_known_loc"]
    # quick: the arm's regressor on the first seed only, and no claim for it
    first_only = psol.run(_small())
    assert "psol_regressor_random" in first_only.metrics
    assert "psol_regressor_random_gt_known" not in first_only.metrics["seeds"]
    assert "sanity_better_teacher" not in {c["id"] for c in first_only.claims}
    # the first seed's numbers do not depend on the arm's other seeds
    assert first_only.metrics["psol_regressor"] == m["psol_regressor"]


def test_the_premise_decides_whether_the_regressor_claims_are_testable():
    good = [96.0, 90.0, 93.0]
    fixed = [70.0, 69.0, 71.0]
    per_seed = {"pseudo_encoder_train": good, "fixed_box_train": fixed, "psol_regressor": [80.0, 75.0, 78.0],
                "ddt_encoder": [90.0, 88.0, 91.0], "best_fixed_box": [70.0, 71.0, 69.0]}
    claims = {c["id"]: c for c in results.finalize(psol.experiment.seed_claims(per_seed, "study", 10.0))}
    premise = claims["premise_pseudo_boxes_good"]
    assert premise["kind"] == "premise" and premise["margin"] == 10.0 and "at least 10 points" in premise["statement"]
    assert premise["verdict"] == "holds"
    assert claims["regressor_beats_ddt"]["verdict"] == "does not hold"
    assert "sanity_better_teacher" not in claims  # the extra arm was not run on every seed
    # the same boxes against a margin they do not clear: the regressor's claims cannot be tested
    claims = {c["id"]: c for c in results.finalize(psol.experiment.seed_claims(per_seed, "study", 30.0))}
    assert claims["premise_pseudo_boxes_good"]["verdict"] == "does not hold"
    for cid in ("regressor_beats_ddt", "regressor_beats_fixed_box"):
        assert claims[cid]["verdict"] == results.NOT_TESTABLE
        assert "premise_pseudo_boxes_good" in claims[cid]["untestable"]
    assert claims["ddt_beats_fixed_box"]["verdict"] == "holds"  # DDT's own claim rests on no premise


def test_premise_margin_and_extra_arm_are_validated():
    with pytest.raises(ValueError, match="premise_margin") as err:
        psol.quick(premise_margin=0.0)
    assert "0.0" in str(err.value)
    with pytest.raises(ValueError, match="random_arm") as err:
        psol.quick(random_arm="some")
    assert "'some'" in str(err.value) and "'all'" in str(err.value)
    assert psol.quick().random_arm == "first" and psol.study().random_arm == "all"
    assert psol.quick().premise_margin == psol.study().premise_margin == 10.0


def _fake_cub(root, classes=2, per_split=3, size=(48, 64)):
    """A folder laid out like CUB_200_2011 with small random JPEGs and one box per image."""
    from PIL import Image

    folder = root / "CUB_200_2011"
    rng = np.random.default_rng(0)
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": [], "bounding_boxes.txt": []}
    i = 0
    for c in range(classes):
        for split in (1, 0):
            for _ in range(per_split):
                i += 1
                rel = f"{c + 1:03d}.class{c}/img{i}.jpg"
                (folder / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
                h, w = size
                Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / "images" / rel)
                lines["images.txt"].append(f"{i} {rel}")
                lines["image_class_labels.txt"].append(f"{i} {c + 1}")
                lines["train_test_split.txt"].append(f"{i} {split}")
                lines["bounding_boxes.txt"].append(f"{i} 8.0 6.0 30.0 20.0")
    for name, rows in lines.items():
        (folder / name).write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.slow
def test_full_pipeline_on_a_tiny_cub_stand_in(tmp_path):
    root = _fake_cub(tmp_path / "data")
    cfg = psol.full(data_root=str(root), download=False, ddt_pretrained=False, regressor_pretrained=False,
                    classifier_pretrained=False, ddt_input_size=64, regressor_size=32, regressor_epochs=1,
                    regressor_batch_size=2, classifier_epochs=1, classifier_batch_size=2, eval_resize=40,
                    eval_crop=32, num_workers=0, checkpoint_dir=str(tmp_path / "ckpt"), progress=False)
    run = psol.run(cfg)
    m = run.metrics
    for method in ("ddt", "psol_regressor"):
        assert {"gt_known_loc", "top1_loc", "mean_iou"} <= set(m[method])
        assert 0 <= m[method]["gt_known_loc"] <= 100
    (run_dir,) = (tmp_path / "ckpt").glob("train-6-*")  # one folder per training split
    assert (run_dir / "ddt_pseudo_boxes.pt").exists()
    assert (run_dir / "regressor" / "last.pt").exists()
    assert (run_dir / "classifier" / "last.pt").exists()
    # settings other than the full preset's: recorded as a customised run, never over the preset's record
    assert not (results.results_dir() / "psol.json").exists()
    saved = results.latest("psol", "full")
    assert saved["scale"].startswith("CUB-200-2011") and saved["customised"]["classifier_epochs"] == [20, 1]
    results.check_record(saved, "full")
    assert [c["id"] for c in saved["claims"]] == ["regressor_beats_ddt"]
    # the pseudo boxes lie inside their images (48 x 64)
    pseudo = run.artifacts["pseudo_boxes"]
    assert pseudo.shape == (6, 4) and pseudo[:, 2].max() <= 64 and pseudo[:, 3].max() <= 48


def test_full_run_without_cub_says_what_to_fetch(tmp_path):
    cfg = psol.full(data_root=str(tmp_path), download=False, checkpoint_dir=str(tmp_path / "ckpt"))
    with pytest.raises(DatasetMissingError, match="CUB"):
        psol.run(cfg)


def test_command_line_and_bad_mode(capsys, monkeypatch):
    import torch

    from companion import runtime
    from companion.psol.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--preset" in out and "study" in out and "python -m companion.psol" in out
    with pytest.raises(ValueError, match="mode"):
        psol.run(psol.quick(mode="medium"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("COMPANION_TRACEBACK", raising=False)
    assert runtime.run_cli(main, ["--preset", "full"]) == 1
    assert "needs a GPU" in capsys.readouterr().err
    with pytest.raises(ValueError, match="runs on the CPU"):
        main(["--preset", "quick", "--device", "cuda"])
    assert psol.study().seeds == (0, 1, 2, 3, 4) and psol.quick().seeds == (0, 1, 2)
    # the study is the quick run with more seeds, its regressors trained to near convergence, the extra arm on every seed
    study, quick = psol.study(), psol.quick()
    assert (study.regressor_steps, quick.regressor_steps) == (400, 150)
    assert study.replace(seeds=quick.seeds, regressor_steps=150, random_arm="first", mode="quick") == quick
