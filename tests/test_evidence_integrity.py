"""Evidence that cannot be fooled: no decided verdict without enough independent units, claims in the
paper's direction, Holm's correction, premises, records that verify themselves against their samples,
writers that lose nothing, and a check that fails when there is nothing (or something wrong) to check."""

import json
import multiprocessing as mp
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import results

ROOT = Path(__file__).resolve().parents[1]


def _claim(cid="gain", tier="study", values=(2.0, 3.0, 2.5, 2.2), **kw):
    return results.claim(cid, "The method beats the baseline.", "acc, points", tier, list(values), **kw)


# --- verdicts the data support ------------------------------------------------------------------

def test_two_identical_differences_decide_nothing():
    assert results.claim("a", "s", "m", "quick", [1.0, 1.0])["verdict"] == results.TOO_FEW
    assert results.claim("a", "s", "m", "quick", [4.86, 4.86])["verdict"] == results.TOO_FEW


def test_zero_spread_decides_nothing_whatever_n():
    c = results.claim("a", "s", "m", "study", [2.0] * 10)
    assert c["verdict"] == results.TOO_FEW and c["sd"] == 0.0


def test_n_below_three_decides_nothing_even_when_clear():
    assert results.claim("a", "s", "m", "quick", [10.0, 11.0])["verdict"] == results.TOO_FEW
    assert results.claim("a", "s", "m", "quick", [10.0, 11.0, 10.5])["verdict"] == "holds"


def test_the_bootstrap_needs_enough_units():
    with pytest.raises(ValueError, match="bootstrap interval needs n >= 10"):
        results.interval([0.5, 3.0], method="bootstrap")
    with pytest.raises(ValueError, match="n >= 10"):
        results.claim("a", "s", "m", "study", [1.0, 2.0, 3.0, 4.0], method="bootstrap")
    assert results.claim("a", "s", "m", "study", list(np.linspace(1, 3, 12)), method="bootstrap")["verdict"] == "holds"


def test_non_inferiority_and_equivalence_use_their_margin():
    ni = _claim(values=(0.3, -4.1, 4.6, 0.5, -0.2), test="non-inferiority", margin=5.0)
    assert ni["threshold"] == -5.0 and ni["verdict"] == "holds"
    assert _claim(values=(0.3, -4.1, 4.6, 0.5, -0.2))["verdict"] == "inconclusive"  # superiority: straddles 0
    eq = _claim(values=(0.1, -0.2, 0.15, 0.05), test="equivalence", margin=1.0)
    assert eq["verdict"] == "holds" and eq["threshold"] is None
    assert _claim(values=(3.0, 3.2, 2.9, 3.1), test="equivalence", margin=1.0)["verdict"] == "does not hold"
    with pytest.raises(ValueError, match="margin > 0"):
        _claim(test="non-inferiority")
    # superiority with a margin: better by at least the margin (a premise's "clear margin")
    by = _claim(values=(3.0, 3.4, 2.8, 3.1), margin=2.0)
    assert by["threshold"] == 2.0 and by["verdict"] == "holds"
    assert _claim(values=(3.0, 3.4, 2.8, 3.1), margin=4.0)["verdict"] == "does not hold"
    assert _claim(values=(1.0, 2.9, 1.5, 2.6), margin=2.0)["verdict"] == "inconclusive"
    assert _claim(values=(-3.0, -3.4, -2.8, -3.1), margin=2.0, direction="less")["threshold"] == -2.0
    with pytest.raises(ValueError, match="margin > 0"):
        _claim(margin=-1.0)
    with pytest.raises(ValueError, match="test must be one of"):
        _claim(test="better")


def test_kinds_follow_the_id():
    assert _claim("sanity_knn")["kind"] == "sanity"
    assert _claim("premise_detail")["kind"] == "premise"
    assert _claim("gain")["kind"] == "paper"
    with pytest.raises(ValueError, match="must start with 'sanity_'"):
        _claim("gain", kind="sanity")


def test_a_finding_against_the_paper_does_not_hold():
    """Few-shot's AC claim is stated in the paper's direction: AC lowering the mean reads 'does not hold'."""
    from companion.fewshot.experiment import claims_from

    rng = np.random.default_rng(0)
    by_seed = []
    for s in range(4):
        base = rng.uniform(40, 60, 40)
        by_seed.append({5: {"sr": base, "ac_sr": base - 2.0 - rng.uniform(0, 0.5, 40),
                            "finetune": base, "ac_ensr": base + 1.0}})
    (ac,) = [c for c in claims_from("study", by_seed) if c["id"] == "ac_raises_mean"]
    assert ac["direction"] == "greater" and ac["verdict"] == "does not hold"
    assert ac["n"] == 4, "the unit is the seed (its mean over episodes), not the pooled episodes"


def test_holm_adjusts_known_values():
    assert results.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert results.holm([0.5]) == [0.5]
    assert results.holm([]) == []


def test_holm_withholds_a_marginal_decision_in_a_family():
    marginal = _claim("marginal", values=(0.1, 1.9, 1.0, 0.3, 1.6))   # p just below 0.05 alone
    clear = _claim("clear", values=(5.0, 5.5, 6.0, 5.2, 5.8))
    assert marginal["verdict"] == "holds" and 0.01 < marginal["p_value"] < 0.05
    alone = results.finalize([marginal])
    assert alone[0]["verdict"] == "holds"
    family = results.finalize([marginal, clear, _claim("third", values=(0.5, -0.4, 0.2, 0.1, -0.3))])
    by = {c["id"]: c for c in family}
    assert by["clear"]["verdict"] == "holds" and by["marginal"]["verdict"] == "inconclusive"
    assert by["marginal"]["interval_verdict"] == "holds" and by["marginal"]["holm"]["family"] == 3
    # sanity and premise checks are not part of the family
    fam = results.finalize([marginal, _claim("sanity_x"), _claim("premise_y")])
    assert {c["id"]: c["holm"] for c in fam}["sanity_x"] is None and fam[0]["holm"]["family"] == 1


def test_a_failed_premise_makes_the_claim_not_testable(tmp_path):
    premise = _claim("premise_detail", values=(0.5, -0.4, 0.2, -0.1))
    paper = _claim("small_resolution", values=(-3.0, -4.0, -3.5, -3.8), premises=("premise_detail",))
    assert paper["verdict"] == "does not hold"  # alone
    results.write("demo", "study", {"a": 1}, "x", tmp_path, claims=[premise, paper], seeds=[0, 1, 2, 3])
    assert paper["verdict"] == results.NOT_TESTABLE  # write completes the given claims in place
    stored = results.find_claim("demo", "small_resolution", "study", tmp_path)
    assert stored["verdict"] == results.NOT_TESTABLE and "premise_detail: inconclusive" in stored["untestable"]
    assert "cannot be tested" in results.say("demo", "small_resolution", "study", tmp_path, holds="x",
                                             does_not_hold="y", inconclusive="z")
    held = _claim("premise_detail", values=(5.0, 4.0, 4.5, 4.8))
    paper2 = _claim("small_resolution", values=(-3.0, -4.0, -3.5, -3.8), premises=("premise_detail",))
    results.write("demo", "study", {"a": 1}, "x", tmp_path, claims=[held, paper2], seeds=[0, 1, 2, 3])
    assert paper2["verdict"] == "does not hold"
    with pytest.raises(ValueError, match="not a premise claim"):
        results.finalize([_claim("gain", premises=("missing",))])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=3, max_size=20))
def test_interval_verdict_and_p_value_agree(xs):
    c = results.claim("a", "s", "m", "study", xs)
    if c["verdict"] in ("holds", "does not hold"):
        assert c["p_value"] < 0.05 + 1e-9
    elif c["verdict"] == "inconclusive":
        assert c["p_value"] >= 0.05 - 1e-9


# --- records that verify themselves -----------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("verdict", "holds", "gives 'inconclusive'"),
    ("ci95", [1.0, 2.0], "ci95"),
    ("estimate", 5.0, "estimate"),
    ("n", 1000, "n=1000"),
    ("interval_verdict", "holds", "gives 'inconclusive'"),
    ("p_value", 0.001, "p_value"),
])
def test_a_forged_claim_fails_its_check(field, value, message):
    honest = results.claim("a", "s", "m", "study", [-12.0, 3.0, -9.5, 2.0, -13.0])
    assert honest["verdict"] == "inconclusive"
    results.check_claim(honest)
    forged = dict(honest, **{field: value})
    with pytest.raises(ValueError, match=message):
        results.check_claim(forged)


def test_the_issue_forgery_fails():
    samples = [-5.9 + 0.1 * i for i in range(-5, 5)]
    forged = dict(results.claim("a", "s", "m", "study", samples), ci95=[1, 2], verdict="holds", n=1000)
    with pytest.raises(ValueError):
        results.check_claim(forged)


def _repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    for name in ("_toc.yml", "pyproject.toml"):
        (repo / name).write_text("")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for chapter in ("demo", "other"):
        results.write(chapter, "quick", {"acc": 0.25}, "x", repo / "results", claims=[_claim(tier="quick")],
                      seeds=[0, 1, 2, 3])
        results.write(chapter, "study", {"acc": 0.25}, "x", repo / "results", claims=[_claim()], seeds=[0, 1, 2, 3])
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "results"], check=True)
    return repo


def _check(repo: Path, cwd: Path | None = None, results_dir: Path | None = None, command="check"):
    env = {"PATH": "/usr/bin:/bin", "COMPANION_RESULTS": str(results_dir or repo / "results")}
    return subprocess.run([sys.executable, "-m", "companion.results", command], cwd=cwd or repo, env=env,
                          capture_output=True, text=True)


def test_check_passes_on_honest_records_and_fails_on_a_hand_edited_verdict(tmp_path):
    repo = _repo(tmp_path)
    ok = _check(repo)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    path = repo / "results" / "demo.json"
    data = json.loads(path.read_text())
    data["study"]["claims"][0]["verdict"] = "does not hold"
    path.write_text(json.dumps(data))
    bad = _check(repo)
    assert bad.returncode == 1 and "demo.json" in bad.stdout and "'does not hold'" in bad.stdout
    status = _check(repo, command="status")
    assert status.returncode == 1 and "INVALID" in status.stdout


def test_check_fails_when_a_record_is_deleted(tmp_path):
    repo = _repo(tmp_path)
    (repo / "results" / "other.json").unlink()
    bad = _check(repo)
    assert bad.returncode == 1 and "other.json: committed at HEAD but missing" in bad.stdout


def test_check_fails_with_nothing_to_check(tmp_path):
    repo = _repo(tmp_path)
    missing = _check(repo, results_dir=tmp_path / "nowhere")
    assert missing.returncode == 1 and "no results folder" in missing.stdout
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "demo.json").write_text((repo / "results" / "demo.json").read_text())
    away = _check(repo, cwd=outside, results_dir=outside)
    assert away.returncode == 1 and "not inside a git checkout" in away.stdout
    for p in (repo / "results").glob("*.json"):
        p.unlink()
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qam", "rm"],
                   check=True)
    empty = _check(repo)
    assert empty.returncode == 1 and "nothing to check" in empty.stdout


@pytest.mark.parametrize("text, message", [
    ('{"quick": {"scale": ', "is not valid JSON"), ("", "is empty"), ("[]", "must hold a JSON object"),
    ('{"quick": {"scale": "x", "metrics": {}, "claims": [{"id": "a"}]}}', "lacks"),
])
def test_a_malformed_record_gives_one_line_naming_the_file(tmp_path, text, message):
    repo = _repo(tmp_path)
    (repo / "results" / "psol.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        results.read("psol", repo / "results")
    for command in ("check", "status", "scoreboard"):
        out = _check(repo, command=command)
        assert out.returncode == 1, command
        shown = out.stdout + out.stderr
        assert "psol.json" in shown and message in shown and "Traceback" not in shown, (command, shown)


def test_drift_labels_say_which_side_has_the_key(tmp_path):
    new = {"quick": {"metrics": {"only_new": 1, "both": 2}}}
    committed = {"quick": {"metrics": {"only_old": 1, "both": 2}}}
    assert results.drift(new, committed) == ["quick.metrics.only_new: only in the new run",
                                             "quick.metrics.only_old: only in the committed file"]


def _writer(directory: str, tier: str, rounds: int) -> None:
    for i in range(rounds):
        results.write("demo", tier, {"i": i}, tier, Path(directory), claims=[_claim(tier=tier)],
                      seeds=[0, 1, 2, 3])


def test_two_concurrent_writers_of_different_tiers_both_survive(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), tier, 25)) for tier in ("quick", "study")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    data = results.read("demo", tmp_path)
    assert data["quick"]["metrics"] == {"i": 24} and data["study"]["metrics"] == {"i": 24}


def test_write_refuses_repeated_seeds(tmp_path):
    with pytest.raises(ValueError, match="seeds repeat"):
        results.write("demo", "study", {"a": 1}, "x", tmp_path, claims=[_claim()], seeds=[0, 0])


def test_a_customised_run_never_overwrites_the_presets_record(tmp_path, capsys):
    from companion.fewshot import config as fewshot_config

    preset = fewshot_config.quick()
    results.write("fewshot", "quick", {"acc": 1.0}, "x", tmp_path, claims=[_claim(tier="quick")],
                  seeds=[0], config=preset)
    custom = replace(preset, n_episodes=5)
    assert results.customised(custom, "quick") == {"n_episodes": [100, 5]}
    assert results.customised(replace(preset, device="cpu", progress=True), "quick") == {}
    path = results.write("fewshot", "quick", {"acc": 0.0}, "x", tmp_path, seeds=[0], config=custom)
    assert path.parent.name == "custom" and path.name.startswith("fewshot-quick-")
    assert "differ from the quick preset (n_episodes)" in capsys.readouterr().out
    assert results.read("fewshot", tmp_path)["quick"]["metrics"] == {"acc": 1.0}
    assert json.loads(path.read_text())["quick"]["customised"] == {"n_episodes": [100, 5]}


# --- the committed records ------------------------------------------------------------------------

def test_committed_records_verify_themselves():
    problems = [p for chapter in results.CHAPTERS for p in results.verify(chapter, ROOT / "results")]
    assert not problems, problems


def test_committed_study_records_name_a_clean_commit():
    """A reader who checks out the commit a study record names can reproduce it."""
    for chapter in results.CHAPTERS:
        study = results.read(chapter, ROOT / "results").get("study")
        assert study, chapter
        commit = study["provenance"]["commit"]
        assert "uncommitted" not in commit and "unknown" not in commit, f"{chapter}: study made at {commit!r}"


def test_every_central_claim_is_recorded_at_the_study_tier():
    for chapter, (short, cid, phrase, here, paper) in results.CENTRAL.items():
        assert results.find_claim(chapter, cid, "study", ROOT / "results"), f"{chapter}: {cid} not in its study"
        assert short and phrase and here and paper
