import json

import pytest

from companion import results


def test_write_keeps_the_other_mode(tmp_path):
    results.write("demo", "quick", {"acc": 0.5}, scale="quick: tiny", directory=tmp_path)
    results.write("demo", "full", {"acc": 0.9}, scale="full: big", directory=tmp_path)
    data = results.read("demo", tmp_path)
    assert data["quick"]["metrics"]["acc"] == 0.5 and data["full"]["metrics"]["acc"] == 0.9
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write leaves no temporary file


def test_bad_writes_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        results.write("demo", "medium", {"a": 1}, scale="x", directory=tmp_path)
    with pytest.raises(ValueError, match="empty"):
        results.write("demo", "quick", {}, scale="x", directory=tmp_path)


def test_paper_numbers_are_the_verified_ones():
    n = results.paper_numbers()
    assert n["psol/ddt_vgg16/cub_top1_loc"].value == 62.30
    assert n["psol/psol_resnet50_sep/cub_top5_loc"].value == 86.64
    assert n["vit2040/flowers_ablation_cutmix"].value == 79.9
    assert n["tobias/cub_corloc_random_resnet50"].shown == results.NOT_VERIFIED
    assert all(p.source for p in n.values())


def test_paper_vs_book_table(tmp_path):
    results.write("demo", "quick", {"loc": {"ddt": 55.26}}, scale="quick: 200 scenes, CPU", directory=tmp_path)
    table = results.paper_vs_book(
        "demo",
        [{"what": "DDT Top-1", "paper": "psol/ddt_vgg16/cub_top1_loc", "quick": "loc.ddt", "full": "loc.ddt"},
         {"what": "Tobias CorLoc", "paper": "tobias/cub_corloc_random_resnet50", "quick": None, "full": "x"},
         {"what": "a study-only arm", "paper": None, "quick": "loc.multistage", "full": "loc.multistage"}],
        directory=tmp_path,
    )
    assert "| DDT Top-1 | 62.3 | 55.3 | — | not run yet |" in table
    assert "| Tobias CorLoc | not verified | — | — | not run yet |" in table
    # the quick tier ran but does not measure this arm: said so, not "not run yet"
    assert "| a study-only arm | not verified | not in this run | — | not run yet |" in table
    assert "**quick**: 200 scenes, CPU;" in table and "quick: quick" not in table and "poster" in table
    with pytest.raises(KeyError):
        results.paper_vs_book("demo", [{"what": "x", "paper": "nope/none"}], directory=tmp_path)


def test_results_files_in_repo_are_valid_json():
    root = results.find_project_root()
    for path in (root / "results").glob("*.json"):
        data = json.loads(path.read_text())
        assert set(data) <= set(results.TIERS), path
        for entry in data.values():
            assert entry["scale"] and entry["metrics"], path
            for c in entry.get("claims", []):
                results.check_claim(c)
