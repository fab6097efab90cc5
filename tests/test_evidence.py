"""The evidence core: intervals, verdicts, claim records, provenance, the drift check, the scoreboard,
and the rule that chapter prose states no verdict its record does not give."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import results, runtime

ROOT = Path(__file__).resolve().parents[1]


# --- intervals and verdicts on known values ---------------------------------------------------

def test_t_interval_known_values():
    # mean 3, s = sqrt(2.5), t_{4, 0.975} = 2.7764451051977987
    iv = results.interval([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert iv.estimate == 3.0 and iv.n == 5
    assert iv.low == pytest.approx(3 - half, abs=1e-12) and iv.high == pytest.approx(3 + half, abs=1e-12)
    paired = results.interval([3, 4, 5, 6, 7], baseline=[2, 2, 2, 2, 2])
    assert (paired.low, paired.high) == pytest.approx((iv.low, iv.high))
    assert paired.method.startswith("paired")


def test_bootstrap_is_seeded_and_brackets_the_mean():
    x = np.arange(20.0)
    a, b = results.interval(x, method="bootstrap"), results.interval(x, method="bootstrap")
    assert (a.low, a.high) == (b.low, b.high)
    assert a.low < 9.5 < a.high
    # the percentile bootstrap of a mean is narrower than the range and close to the t interval here
    t = results.interval(x)
    assert abs(a.low - t.low) < 1.0 and abs(a.high - t.high) < 1.0


def test_verdicts_clear_positive_negative_straddling():
    assert results.verdict(0.5, 2.0) == "holds"
    assert results.verdict(-2.0, -0.5) == "does not hold"
    assert results.verdict(-1.0, 1.0) == "inconclusive"
    assert results.verdict(-2.0, -0.5, direction="less") == "holds"
    assert results.verdict(0.5, 2.0, direction="less") == "does not hold"
    assert results.verdict(1.5, 2.0, threshold=1.0) == "holds"
    assert results.verdict(0.5, 2.0, threshold=1.0) == "inconclusive"


def test_claim_from_paired_seeds():
    c = results.claim("gain", "The method beats the baseline.", "accuracy, points", "study",
                      [71.0, 72.5, 70.8, 73.1, 72.0], baseline=[68.0, 69.0, 69.5, 70.0, 68.4])
    assert c["verdict"] == "holds" and c["n"] == 5 and c["tier"] == "study"
    assert c["samples"] == pytest.approx([3.0, 3.5, 1.3, 3.1, 3.6])
    assert c["ci95"][0] > 0
    noisy = results.claim("gain", "x", "y", "quick", [1.0, -1.0, 2.0], baseline=[0.0, 0.0, 0.0])
    assert noisy["verdict"] == "inconclusive"


@pytest.mark.parametrize("samples, message", [
    ([], "empty"), ([1.0], "n=1"), ([1.0, float("nan")], "non-finite"), ([1.0, float("inf")], "non-finite"),
    ([[1.0, 2.0], [3.0, 4.0]], "one-dimensional"), ("abc", "numbers"),
])
def test_interval_rejects_bad_samples(samples, message):
    with pytest.raises((ValueError, TypeError), match=message):
        results.interval(samples)


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="same length"):
        results.interval([1, 2, 3], baseline=[1, 2])
    with pytest.raises(ValueError, match="method"):
        results.interval([1, 2, 3], method="magic")
    with pytest.raises(ValueError, match="confidence"):
        results.interval([1, 2, 3], confidence=95)
    with pytest.raises(ValueError, match="direction"):
        results.verdict(0, 1, direction="up")
    with pytest.raises(ValueError, match="empty"):
        results.verdict(1, 0)
    with pytest.raises(ValueError, match="finite"):
        results.verdict(float("nan"), 1)
    with pytest.raises(ValueError, match="tier"):
        results.claim("a", "s", "m", "medium", [1, 2])
    with pytest.raises(ValueError, match="statement"):
        results.claim("a", " ", "m", "quick", [1, 2])
    with pytest.raises(ValueError, match="claim id"):
        results.claim("Bad Id", "s", "m", "quick", [1, 2])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=10, max_size=30),
       st.sampled_from(["t", "bootstrap"]))
def test_interval_properties(xs, method):
    iv = results.interval(xs, method=method, n_boot=200)
    assert iv.low <= iv.estimate + 1e-9 and iv.estimate <= iv.high + 1e-9
    assert iv.n == len(xs)
    v = results.verdict(iv.low, iv.high)
    # the verdict agrees with where the interval lies, and flipping the sign flips it
    flipped = results.interval([-x for x in xs], method=method, n_boot=200)
    w = results.verdict(flipped.low, flipped.high)
    assert {v, w} in ({"inconclusive"}, {"holds", "does not hold"})


# --- writing records ----------------------------------------------------------------------------

def _claim(tier="quick", values=(2.0, 3.0, 2.5)):
    return results.claim("gain", "The method beats the baseline.", "acc, points", tier, list(values))


def test_write_records_claims_and_provenance(tmp_path):
    results.write("demo", "study", {"acc": 0.5}, "study: tiny", tmp_path, claims=[_claim("study")],
                  seeds=range(3), wall_s=12.345, timings={"images_per_s": 10.0}, command="python -m demo")
    entry = results.read("demo", tmp_path)["study"]
    p = entry["provenance"]
    assert entry["claims"][0]["verdict"] == "holds"
    assert p["seeds"] == [0, 1, 2] and p["wall_s"] == 12.3 and p["command"] == "python -m demo"
    assert p["code_hash"] == results.code_hash("demo") and p["torch"] and p["machine"] and p["commit"]
    assert entry["timings"] == {"images_per_s": 10.0}


def test_write_refuses_bad_records(tmp_path):
    with pytest.raises(ValueError, match="plain name"):
        results.write("../evil", "quick", {"a": 1}, "x", tmp_path)
    with pytest.raises(ValueError, match="plain name"):
        results.write("a/b", "quick", {"a": 1}, "x", tmp_path)
    assert not list(tmp_path.parent.glob("evil*"))
    with pytest.raises(ValueError, match=r"metrics\.a\.b is inf"):
        results.write("demo", "quick", {"a": {"b": float("inf")}}, "x", tmp_path)
    with pytest.raises(ValueError, match="is nan"):
        results.write("demo", "quick", {"a": [1.0, float("nan")]}, "x", tmp_path)
    with pytest.raises(ValueError, match="tier 'quick', written under 'study'"):
        results.write("demo", "study", {"a": 1}, "x", tmp_path, claims=[_claim("quick")])
    forged = dict(_claim(), verdict="does not hold")
    with pytest.raises(ValueError, match="gives 'holds'"):
        results.write("demo", "quick", {"a": 1}, "x", tmp_path, claims=[forged])
    with pytest.raises(ValueError, match="repeat"):
        results.write("demo", "quick", {"a": 1}, "x", tmp_path, claims=[_claim(), _claim()])
    assert not (tmp_path / "demo.json").exists()


def test_study_goes_stale_when_the_code_changes(tmp_path, monkeypatch):
    results.write("demo", "study", {"a": 1}, "x", tmp_path, claims=[_claim("study")], seeds=[0, 1, 2])
    assert results.study_status("demo", tmp_path) == "fresh"
    monkeypatch.setattr(results, "code_hash", lambda chapter: "0" * 16)
    assert results.study_status("demo", tmp_path) == "stale"
    table = results.claims_table("demo", directory=tmp_path)
    assert "**holds** (stale)" in table and "**Stale**: the chapter's code has changed since; re-run `make study`" in table
    assert results.study_status("nothing", tmp_path) == "not run"


def test_code_hash_follows_the_chapters_packages():
    assert results.code_hash("ssql") != results.code_hash("us3l")
    assert results.code_hash("ssql") == results.code_hash("ssql")
    assert set(results.CHAPTERS) >= {"tobias", "psol", "s3l", "nrs", "fewshot", "ssql", "us3l", "effssl",
                                      "vit2040", "efpc"}


# --- drift ----------------------------------------------------------------------------------------

def test_drift_ignores_provenance_and_timings_but_not_numbers(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    results.write("demo", "quick", {"acc": 0.5, "fit_s": 1.0}, "x", a, claims=[_claim()], seeds=[0, 1, 2],
                  timings={"t": 1})
    results.write("demo", "quick", {"acc": 0.5, "fit_s": 9.0}, "x", b, claims=[_claim()], seeds=[0, 1, 2],
                  timings={"t": 2})
    assert results.drift(results.read("demo", a), results.read("demo", b)) == []
    # a deliberately stale quick result: one number moved
    results.write("demo", "quick", {"acc": 0.5000001, "fit_s": 1.0}, "x", b, claims=[_claim()], seeds=[0, 1, 2])
    assert results.drift(results.read("demo", a), results.read("demo", b)) == [
        "quick.metrics.acc: committed 0.5000001, new run 0.5"]
    results.write("demo", "quick", {"acc": 0.5}, "x", b, claims=[_claim(values=(2.0, 3.0, 2.6))], seeds=[0, 1, 2])
    assert any(d.startswith("quick.claims[0].estimate") for d in results.drift(results.read("demo", a),
                                                                                results.read("demo", b)))


def test_check_fails_on_a_stale_committed_result(tmp_path):
    """What CI runs after the book build: `python -m companion.results check` exits 1 on drift."""
    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    for name in ("_toc.yml", "pyproject.toml"):
        (repo / name).write_text("")
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    results.write("demo", "quick", {"acc": 0.25}, "x", repo / "results", claims=[_claim()], seeds=[0, 1, 2])
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "results"], check=True)
    # the build re-runs the chapter: the same numbers, new provenance -> passes
    results.write("demo", "quick", {"acc": 0.25}, "x", repo / "results", claims=[_claim()], seeds=[0, 1, 2],
                  wall_s=3.0)
    env = {"COMPANION_RESULTS": str(repo / "results"), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "companion.results", "check"], cwd=repo, env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # code changed the numbers but the committed file was not refreshed -> fails, naming the value
    results.write("demo", "quick", {"acc": 0.75}, "x", repo / "results", claims=[_claim()], seeds=[0, 1, 2])
    bad = subprocess.run([sys.executable, "-m", "companion.results", "check"], cwd=repo, env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert "quick.metrics.acc: committed 0.25, new run 0.75" in bad.stdout


# --- what the page shows ----------------------------------------------------------------------------

def test_say_explains_undecided_verdicts(tmp_path):
    results.write("demo", "quick", {"a": 1}, "x", tmp_path, claims=[_claim("quick", (1.0, 2.0))], seeds=[0, 1])
    text = results.say("demo", "gain", "quick", tmp_path, holds="x", does_not_hold="y", inconclusive="z")
    assert "too few independent samples" in text and "n = 2" in text


def test_say_follows_the_record(tmp_path):
    results.write("demo", "study", {"a": 1}, "x", tmp_path, claims=[_claim("study")], seeds=[0, 1, 2])
    text = results.say("demo", "gain", "study", tmp_path, holds="Gain {estimate} [{low}, {high}], n={n}.",
                       does_not_hold="No gain.", inconclusive="Unclear.")
    assert text.startswith("Gain 2.5 [") and text.endswith("n=3.")
    with pytest.raises(ValueError, match="no sentence"):
        results.say("demo", "gain", "study", tmp_path, inconclusive="Unclear.")
    with pytest.raises(KeyError, match="no quick record"):
        results.say("demo", "gain", "quick", tmp_path, holds="x")
    with pytest.raises(ValueError, match="takes sentences"):
        results.say("demo", "gain", "study", tmp_path, maybe="x")


def test_scoreboard_has_one_row_per_paper(tmp_path):
    central = results.claim("regressor_beats_ddt", "The regressor beats DDT.", "loc, points", "study",
                            [2.0, 3.0, 2.5, 2.8])
    other = results.claim("ddt_beats_fixed_box", "DDT beats a box.", "loc, points", "study", [-1.0, 1.0, 0.5])
    results.write("psol", "study", {"a": 1}, "x", tmp_path, claims=[central, other], seeds=[0, 1, 2, 3])
    board = results.scoreboard(tmp_path)
    rows = board.splitlines()[2:]
    assert len(rows) == 10  # one per paper, the toolkit is not a paper
    psol = next(r for r in rows if "PSOL" in r)
    assert "{ref}`2. PSOL: pseudo-supervised object localization <psol-claims>`" in psol
    assert "| holds |" in psol and "+2.6 [" in psol and "n=4" in psol and "| 1 inconclusive |" in psol
    assert psol.endswith("| mixed |")
    assert sum("not run yet" in r for r in rows) == 9
    html = results.scoreboard_html(tmp_path)
    assert html.count("<tr>") == 11 and 'href="02_psol.html#psol-claims"' in html and "verdict-badge" in html


def test_paper_labels_follow_the_verdicts():
    def c(v):
        return {"verdict": v}
    assert results.paper_label([c("holds"), c("holds")]) == "reproduced"
    assert results.paper_label([c("does not hold"), c("inconclusive")]) == "not reproduced"
    assert results.paper_label([c("holds"), c("does not hold")]) == "mixed"
    assert results.paper_label([c("inconclusive"), c(results.TOO_FEW)]) == "undecided"
    assert results.paper_label([c(results.NOT_TESTABLE)]) == results.NOT_TESTABLE


def test_forest_plot_draws_every_claim_against_its_line(tmp_path):
    ni = results.claim("within", "At most 1 point worse.", "acc", "study", [-0.5, 0.2, 0.1, -0.2],
                       test="non-inferiority", margin=1.0)
    worse = results.claim("lower", "Lower is better here.", "err", "study", [-2.0, -1.5, -2.5], direction="less")
    results.write("s3l", "study", {"a": 1}, "x", tmp_path, claims=[ni, worse], seeds=[0, 1, 2, 3])
    fig = results.forest_plot(tmp_path)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["3. S3L", "within", "lower"]
    # the 'less' claim is mirrored: its whole bar lies right of 0, the paper's side
    bars = [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_ydata()[0] == 2]
    assert min(bars[0].get_xdata()) > 0
    assert "2 study claims from 1 papers" in results.forest_alt(tmp_path) and "2 holds" in results.forest_alt(tmp_path)
    # the book renders it as a figure: no warning (the build treats stderr as an error), nothing outside the figure
    import warnings

    from companion import viz

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert viz.layout_problems(results.forest_plot(tmp_path)) == []
        viz.figure(results.forest_plot(tmp_path), caption="c", alt="a", name="fig-x")


def test_claims_table_has_one_row_per_claim_with_tiers_side_by_side(tmp_path):
    for tier, values in (("quick", (2.0, 3.0)), ("study", (2.0, 3.0, 2.5, 2.7))):
        results.write("demo", tier, {"a": 1}, "x", tmp_path, claims=[_claim(tier, values)], seeds=range(len(values)),
                      command="python -m companion.demo --preset `quick`")
    table = results.claims_table("demo", directory=tmp_path)
    rows = [line for line in table.splitlines() if line.startswith("| The method")]
    assert len(rows) == 1
    assert "n=2: **too few samples**" in rows[0] and "n=4: **holds**" in rows[0]
    # a backtick in a stored command cannot break the code span; plurals are real words
    assert "`` python -m companion.demo --preset `quick` ``" in table
    assert "(s)" not in table and "(1 threads)" not in table


def test_committed_records_have_claims_at_quick_and_study_tiers():
    """Done-when of the evidence issue: every chapter has a study claim with enough samples."""
    minimum = 5
    for chapter, (page, _, _) in results.CHAPTERS.items():
        if chapter == "ssl_toolkit":
            continue
        recorded = results.read(chapter, ROOT / "results")
        assert recorded.get("quick", {}).get("claims"), f"{chapter}: no quick claims"
        study = recorded.get("study", {}).get("claims")
        assert study, f"{chapter}: no study claims (run `make study STUDY_CHAPTERS={chapter}`)"
        assert max(c["n"] for c in study) >= minimum, f"{chapter}: study claims need n >= {minimum}"
        for entry in (recorded["quick"], recorded["study"]):
            assert entry["provenance"]["seeds"], f"{chapter}: seeds not recorded"
            for c in entry["claims"]:
                results.check_claim(c)


def test_committed_study_records_are_fresh():
    stale = [c for c in results.CHAPTERS if results.study_status(c, ROOT / "results") == "stale"]
    assert not stale, f"study records made by older code: {stale}; re-run `make study STUDY_CHAPTERS=...`"


#: The chapters that pretrain a network without labels, and the toolkit's own benchmark record.
SSL_CHAPTERS = ("tobias", "s3l", "ssql", "us3l", "effssl", "vit2040", "ssl_toolkit")


#: Chapters whose premise claim checks what a sanity claim would (pretrained beats untrained), with a margin.
SANITY_AS_PREMISE = {"vit2040": {"sanity_knn": "premise_pretrain_learns"}}


@pytest.mark.parametrize("chapter", SSL_CHAPTERS)
def test_every_ssl_study_beats_its_untrained_network(chapter):
    """A self-supervised study whose encoder does not beat the same network at random weights shows
    nothing about its paper: each records both sanity claims (or a premise that checks the same with a
    margin), n >= 5, and both hold; or, where they do not, every paper claim rests on a premise that the
    pretraining helps the claims' own metric, and that premise holds (S3L on glyphs: fine-tuning)."""
    study = results.read(chapter, ROOT / "results").get("study")
    assert study, f"{chapter}: no study record (run `make study STUDY_CHAPTERS={chapter}`)"
    found = {c["id"]: c for c in study["claims"] if c["id"] in ("sanity_knn", "sanity_linear")}
    stronger = {c["id"]: c for c in study["claims"] if c["id"] in SANITY_AS_PREMISE.get(chapter, {}).values()}
    for sanity, premise in SANITY_AS_PREMISE.get(chapter, {}).items():
        if sanity not in found and premise in stronger:
            found[sanity] = stronger[premise]
    assert set(found) == {"sanity_knn", "sanity_linear"}, f"{chapter}: sanity claims missing: {sorted(found)}"
    if chapter == "ssl_toolkit":
        # the toolkit's sanity_knn is stricter (the worst of four methods, seed by seed) and is reported as
        # measured; what must hold is that each method's encoder beats the untrained one, by both probes
        found = {c["id"]: c for c in study["claims"] if c["id"].startswith(("sanity_knn_", "sanity_linear_"))}
        assert len(found) == 8, f"{chapter}: per-method sanity claims missing: {sorted(found)}"
    if not all(c["verdict"] == "holds" for c in found.values()):
        by_id = {c["id"]: c for c in study["claims"]}
        helps = by_id.get("premise_pretraining_helps")
        assert helps and helps["verdict"] == "holds" and helps["n"] >= 5, \
            f"{chapter}: the sanity checks fail and no premise shows the pretraining helps the claims' metric"
        for c in study["claims"]:
            if c["kind"] == "paper":
                assert "premise_pretraining_helps" in c["premises"], f"{chapter}: {c['id']} ignores the premise"
        return
    for c in found.values():
        assert c["n"] >= 5, f"{chapter}: {c['id']} has n = {c['n']}"
        assert c["ci95"][0] > 0 and c["verdict"] == "holds", f"{chapter}: {c['id']} {c['ci95']} -> {c['verdict']}"


@pytest.mark.parametrize("chapter", SSL_CHAPTERS)
def test_every_ssl_quick_run_beats_its_untrained_network_on_the_mean(chapter):
    """The quick tier (two seeds, each book build; `make test` checks that the build reproduces the
    committed record) cannot decide, but its mean must point the same way as the study's."""
    quick = results.read(chapter, ROOT / "results").get("quick")
    assert quick, f"{chapter}: no quick record (build the book)"
    found = {c["id"]: c for c in quick["claims"] if c["id"] in ("sanity_knn", "sanity_linear")}
    for sanity, premise in SANITY_AS_PREMISE.get(chapter, {}).items():
        found.setdefault(sanity, next((c for c in quick["claims"] if c["id"] == premise), None))
    found = {k: c for k, c in found.items() if c is not None}
    assert set(found) == {"sanity_knn", "sanity_linear"}, f"{chapter}: quick sanity claims missing"
    for c in found.values():
        assert c["n"] >= 2 and c["estimate"] > 0, f"{chapter}: quick {c['id']} mean {c['estimate']:+.2f}"


# --- the chapters' prose ------------------------------------------------------------------------------

_TYPED_VERDICT = re.compile(r"\b(claim|verdict)\b[^.\n]{0,80}\b(holds|does not hold|is inconclusive)\b", re.I)


def _prose(md: str) -> str:
    """The Markdown of a MyST notebook without its code cells."""
    return re.sub(r"```\{code-cell\}.*?```", "", md, flags=re.S)


@pytest.mark.parametrize("md", sorted((ROOT / "book").glob("[0-9][0-9]_*.md")), ids=lambda p: p.stem)
def test_chapter_states_verdicts_only_from_its_record(md):
    text = md.read_text()
    chapter = next(c for c, (page, _, _) in results.CHAPTERS.items() if page == md.stem and c != "ssl_toolkit")
    assert f"({chapter}-claims)=" in text, f"{md.name}: no claims section labelled ({chapter}-claims)="
    assert f'results.show_claims("{chapter}"' in text, f"{md.name}: no results.show_claims(\"{chapter}\")"
    typed = _TYPED_VERDICT.findall(_prose(text))
    assert not typed, f"{md.name} types a verdict by hand ({typed}); use results.show_say(...)"
    # every verdict sentence the page asks for names a claim its record has
    for cid, tier in re.findall(r'show_say\(\s*"' + chapter + r'",\s*"([a-z0-9_]+)",\s*"([a-z]+)"', text):
        assert results.find_claim(chapter, cid, tier, ROOT / "results"), f"{md.name}: {cid} ({tier}) not recorded"


def test_typed_verdict_detector():
    assert _TYPED_VERDICT.search("At this scale the claim holds, by 3 points.")
    assert _TYPED_VERDICT.search("The verdict: it does not hold.")
    assert not _TYPED_VERDICT.search("The folder holds the data.")
    assert not _TYPED_VERDICT.search("```{code-cell}\nclaim holds\n```".replace("claim holds", "x"))


# --- command lines --------------------------------------------------------------------------------

def test_cli_parser_and_errors(capsys):
    parser = runtime.cli_parser("demo", "Demo.")
    assert parser.prog == "python -m companion.demo"
    assert parser.parse_args(["--preset", "study"]).preset == "study"

    def failing(argv):
        raise ValueError("the data set is missing: put it in /x")

    assert runtime.run_cli(failing) == 1
    err = capsys.readouterr().err
    assert "error: the data set is missing: put it in /x" in err and "Traceback" not in err
    assert runtime.run_cli(lambda argv: None) == 0


def test_full_preset_refuses_the_cpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "pick_device", lambda prefer=None: torch.device(prefer or "cpu"))
    with pytest.raises(RuntimeError, match="needs a GPU.*--device cpu"):
        runtime.require_accelerator("full")
    assert runtime.require_accelerator("full", "cpu").type == "cpu"
    assert runtime.require_accelerator("quick").type == "cpu"
    with pytest.raises(ValueError, match="preset"):
        runtime.require_accelerator("medium")


#: The study tier's budget: minutes on the two cores of a laptop-class machine, not hours.
STUDY_BUDGET_S = 600


@pytest.mark.parametrize("chapter", sorted(results.CHAPTERS))
def test_every_study_record_states_its_wall_time_within_the_budget(chapter):
    """A study is rerun by readers and reviewers: its record says how long it took (on the machine the
    provenance names), and that stays under ten minutes."""
    study = results.read(chapter, ROOT / "results").get("study")
    assert study, f"{chapter}: no study record"
    wall = study["provenance"].get("wall_s") or study.get("timings", {}).get("wall_s")
    assert wall, f"{chapter}: the study record does not state its wall time"
    assert wall <= STUDY_BUDGET_S, f"{chapter}: the study took {wall:.0f} s, over the {STUDY_BUDGET_S} s budget"
