"""EFPC: the quick corpus, selective prepending, training through fit, the full-run data helpers,
figures, presets, and (slow) the quick claim."""

import json
import sys
import zipfile

import numpy as np
import pytest
import torch

from companion.compress import Compressor, IGNORE, core, load_token_classifier, split_words
from companion.efpc import config as presets
from companion.efpc import full
from companion.efpc.corpus import make_corpus
from companion.efpc.figures import compression_widget, highlight_modes
from companion.efpc.method import LabelledPrompt, SelectivePrependDataset, encode_examples, train_compressor
from companion.train import FitConfig


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(n_train=12, n_test=6, seed=3)


# --- corpus --------------------------------------------------------------------------------------

def test_corpus_is_deterministic_and_held_out(corpus):
    again = make_corpus(n_train=12, n_test=6, seed=3)
    assert [e.passage for e in again.train] == [e.passage for e in corpus.train]
    assert make_corpus(n_train=12, n_test=6, seed=4).train[0].passage != corpus.train[0].passage
    assert not {e.town for e in corpus.train} & {e.town for e in corpus.test}


def test_corpus_labels_follow_their_rules(corpus):
    for e in corpus.train + corpus.test:
        words, aware, agnostic = np.array(e.words), np.array(e.aware, bool), np.array(e.agnostic, bool)
        assert len(words) == len(aware) == len(agnostic) == len(e.sentence_of)
        assert aware.any() and not (aware & ~agnostic).any()  # task-aware keeps a subset of the agnostic words
        assert set(np.array(e.sentence_of)[aware]) == {e.answer_sentence}
        answer = [core(w) for w in split_words(e.answer)]
        kept = [core(w) for w in words[aware]]
        assert any(kept[i : i + len(answer)] == answer for i in range(len(kept)))  # the answer is labelled keep
        assert e.question.endswith("?") and e.town in e.passage


def test_corpus_bad_arguments():
    with pytest.raises(ValueError, match="n_train"):
        make_corpus(n_train=0)
    with pytest.raises(ValueError, match="n_facts"):
        make_corpus(n_facts=20)


# --- selective prepending ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_model():
    return load_token_classifier("minilm", trainable_layers=1, num_layers=2, seed=0)


def test_prepending_probability_and_masking(corpus, small_model):
    tok, _ = small_model
    encoded = encode_examples(corpus.train, tok)
    torch.manual_seed(0)
    for p, expected in ((0.0, 0.0), (1.0, 1.0)):
        data = SelectivePrependDataset(encoded, p)
        assert np.mean([data[i] is encoded.prepended[i] for i in range(len(data))]) == expected
    data = SelectivePrependDataset(encoded, 0.5)
    share = np.mean([data[i % len(data)] is encoded.prepended[i % len(data)] for i in range(2000)])
    assert 0.45 < share < 0.55
    for e, item in zip(corpus.train, encoded.prepended):
        q = len(tok(split_words(e.question), is_split_into_words=True, add_special_tokens=False)["input_ids"])
        assert all(label == IGNORE for label in item["labels"][: q + 2])  # [CLS] question [SEP]
        assert [label for label in item["labels"] if label != IGNORE] == \
            [e.aware[w] for w in item["word_index"] if w >= 0]
    with pytest.raises(ValueError, match="p"):
        SelectivePrependDataset(encoded, 1.5)


def test_examples_with_one_kind_of_labels(small_model):
    tok, _ = small_model
    examples = [LabelledPrompt(["Paris", "is", "big", "."], agnostic=[1, 0, 1, 0]),
                LabelledPrompt(["Rome", "is", "old", "."], aware=[1, 0, 0, 0], question="Which city?")]
    encoded = encode_examples(examples, tok)
    assert encoded.prepended[0] is None and encoded.plain[1] is None
    assert len(SelectivePrependDataset(encoded, 0.0)) == 1  # LLMLingua-2 uses only the task-agnostic one
    mixed = SelectivePrependDataset(encoded, 0.5)
    assert mixed[0] is encoded.plain[0] and mixed[1] is encoded.prepended[1]
    with pytest.raises(ValueError, match="every example"):
        encode_examples([LabelledPrompt(["x"])], tok)


def test_training_resumes_exactly(corpus, small_model, tmp_path):
    tok, base = small_model
    import copy

    encoded = encode_examples(corpus.train, tok, model=base)
    assert encoded.start == 1 and "hidden" in encoded.plain[0]
    # constant schedule: a run stopped at step 2 has the same learning rates as the full one
    cfg = dict(steps=4, batch_size=4, lr=1e-3, schedule="constant", progress=False)
    straight = copy.deepcopy(base)
    train_compressor(straight, tok, encoded, 0.5, FitConfig(**cfg))
    resumed = copy.deepcopy(base)
    train_compressor(resumed, tok, encoded, 0.5, FitConfig(**{**cfg, "steps": 2}, checkpoint_dir=tmp_path))
    again = copy.deepcopy(base)
    result = train_compressor(again, tok, encoded, 0.5,
                              FitConfig(**cfg, checkpoint_dir=tmp_path, allow_new_steps=True))
    assert result.resumed_from == 2
    for a, b in zip(straight.parameters(), again.parameters()):
        assert torch.equal(a, b)
    changed = any(not torch.equal(a, b) for a, b in zip(straight.parameters(), base.parameters()))
    assert changed
    unfrozen = copy.deepcopy(base).requires_grad_(True)
    with pytest.raises(ValueError, match="frozen"):
        train_compressor(unfrozen, tok, encoded, 0.5, FitConfig(**cfg))


# --- full-run helpers (no download) -------------------------------------------------------------

def test_meetingbank_pairs_become_filtered_labels():
    good = {"prompt_list": ["We approved the budget for the park today."] * 18,
            "compressed_prompt_list": ["approved budget park"] * 18}
    bad = {"prompt": "We approved the budget.", "compressed_prompt": "Council okayed spending plans"}
    examples = full.meetingbank_examples([good, bad])
    assert len(examples) == 18
    assert examples[0].words[examples[0].agnostic.index(1)] == "approved"
    assert sum(examples[0].agnostic) == 3 and examples[0].aware is None


def test_squad_labels_keep_the_answer_sentence():
    context = "Paris is big. The Eiffel Tower opened in 1889. It is tall."
    words, labels = full.answer_sentence_labels(context, context.index("1889"))
    assert [w for w, k in zip(words, labels) if k] == ["Eiffel", "Tower", "opened", "1889."]  # punctuation stays on its word
    records = [{"context": context, "question": "When did it open?", "answers": {"answer_start": [context.index("1889")]}}]
    (ex,) = full.squad_examples(records, 5)
    assert ex.agnostic is None and ex.question == "When did it open?"


def test_longbench_reader_and_qa_f1(tmp_path):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        rec = {"_id": "a1", "context": "Long text.", "input": "Who?", "answers": ["Clara Finch"]}
        zf.writestr("data/qasper.jsonl", json.dumps(rec) + "\n")
        zf.writestr("data/qasper_e.jsonl", json.dumps(rec) + "\n")
    data = full.load_longbench(["qasper"], archive)
    assert data == [{"task": "qasper", "id": "a1", "context": "Long text.", "question": "Who?", "answers": ["Clara Finch"]}]
    with pytest.raises(ValueError, match="no task"):
        full.load_longbench(["narrativeqa"], archive)
    assert full.qa_f1("Clara Finch.", ["clara finch"]) == 1.0
    assert full.qa_f1("The mayor Clara", ["Clara Finch", "nobody"]) == pytest.approx(0.5)
    assert full.qa_f1("no", ["yes"]) == 0.0
    assert "Question: Who?" in full.qa_prompt("qasper", "ctx", "Who?")


def test_full_run_says_which_dependency_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match="pip install datasets"):
        full.require_datasets()


def _hub_unreachable(monkeypatch):
    """Online mode (HF_HUB_OFFLINE unset) with every network connection refused and no retry waits."""
    import socket

    import huggingface_hub.constants

    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # the hub client's retry back-off


def test_the_chapter_leaves_hub_access_alone():
    """Offline mode is the quick model's own business (local_files_only), not the kernel's: a global
    HF_HUB_OFFLINE=1 would keep the full run in the same notebook from downloading its models."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "book" / "10_efpc.md").read_text()
    cells = page.split("```{code-cell}")[1:]
    assert cells and not [c for c in cells if "HF_HUB_OFFLINE" in c.split("```")[0]]


def test_quick_model_loads_with_the_network_blocked_and_leaves_offline_mode_unset(monkeypatch):
    import os

    _hub_unreachable(monkeypatch)
    tok, model = load_token_classifier("minilm", num_layers=2, trainable_layers=1)
    assert model.config.num_hidden_layers == 2 and tok.is_fast
    assert "HF_HUB_OFFLINE" not in os.environ


def test_full_loaders_say_what_to_do_when_the_hub_is_unreachable(monkeypatch, tmp_path):
    from companion.compress import HubUnreachableError

    monkeypatch.setenv("COMPANION_DATA", str(tmp_path / "data"))
    _hub_unreachable(monkeypatch)
    cfg = presets.full()
    with pytest.raises(HubUnreachableError) as err:
        load_token_classifier(cfg.model)
    message = str(err.value)
    assert cfg.model in message and "HF_ENDPOINT" in message and f"hf download {cfg.model}" in message
    with pytest.raises(HubUnreachableError, match="hf download THUDM/LongBench --repo-type dataset"):
        full.load_longbench()
    with pytest.raises(HubUnreachableError, match=r"Qwen/Qwen2\.5-1\.5B-Instruct.*HF_ENDPOINT"):
        full.Answerer(cfg.llm, torch.device("cpu"))


# --- presets and figures -------------------------------------------------------------------------

def test_presets():
    q, st, f = presets.quick(), presets.study(), presets.full()
    assert q.mode == "quick" and q.model == "minilm" and q.rates == (0.5, 0.25) and q.seeds == (0,)
    assert st.tier == "study" and len(st.seeds) >= 5 and st.steps == q.steps and st.n_train == q.n_train
    assert f.mode == "full" and "xlm-roberta" in f.model and f.trainable_layers is None
    with pytest.raises(ValueError, match="p_prepend"):
        presets.quick(p_prepend=2.0)
    with pytest.raises(ValueError, match="rate"):
        presets.quick(rates=(0.5, 0.0))
    with pytest.raises(ValueError, match="claim_rate"):
        presets.quick(rates=(0.5,))
    with pytest.raises(ValueError, match="seeds"):
        presets.quick(seeds=(1, 1))


def test_colab_preset_is_the_full_comparison_in_under_an_hour_and_the_page_states_its_numbers(monkeypatch, tmp_path):
    import re
    from pathlib import Path

    from companion import efpc

    colab, whole = presets.colab(), presets.full()
    assert presets.PRESETS["colab"] is presets.colab and colab.tier == "full"
    same = ("qa_dataset", "meetingbank", "longbench", "longbench_tasks", "rates", "p_prepend", "aware_fraction",
            "llm", "batch_size", "max_length")
    assert all(getattr(colab, k) == getattr(whole, k) for k in same)
    assert colab.steps < whole.steps and colab.eval_per_task < whole.eval_per_task
    hours = {"colab": efpc.run_hours(colab).hours, "full": efpc.run_hours().hours}
    assert hours["colab"] < 1 < hours["full"] and efpc.full_run_hours() == efpc.run_hours()
    training = full.full_run_hours(colab, answer_seconds=0).hours
    page = (Path(__file__).resolve().parents[1] / "book" / "10_efpc.md").read_text()
    stated = re.search(r"Colab preset on a T4 \(an estimate, not a measurement\):\*\* about (\d+) minutes, from\s+"
                       r"`efpc.run_hours\(efpc.config.colab\(\)\)`: about (\d+) minutes training the two compressors "
                       r"and about\s+(\d+) compressing", page)
    assert stated and [int(g) for g in stated.groups()] == [
        round(60 * hours["colab"]), round(60 * training), round(60 * (hours["colab"] - training))]
    assert re.findall(r"about (\d+) hours for `--preset full`", page) == [str(round(hours["full"]))]
    memory = re.findall(r"the colab preset trains in about (\d+) GB of GPU memory", page)
    assert memory == [str(round(full.preset_memory(colab)["total"]))]
    # checkpoints: the shared root, the chapter's own folder
    monkeypatch.setenv("COMPANION_CHECKPOINTS", str(tmp_path))
    assert full._checkpoints(colab) == tmp_path / "efpc"


def test_speed_benchmark_reports_the_fastest_repeat_with_its_cpu_time_and_the_machine(monkeypatch):
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("efpc_speed", root / "benchmarks" / "efpc_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    walls, cpus = iter([0.0, 3.0, 10.0, 12.0, 20.0, 21.0, 30.0, 34.0]), iter([0.0, 0.5, 0.0, 1.5, 0.0, 0.9, 0.0, 2.0])
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(walls))
    monkeypatch.setattr(bench.time, "process_time", lambda: next(cpus))
    done = SimpleNamespace(words=["w"] * 500, chunks=[0], rate=0.25)
    fake = SimpleNamespace(compress=lambda *args, **kwargs: done)
    r = bench.time_it(fake, "p", "q", 0.25, 4, torch.device("cpu"))
    # repeats took 3, 2, 1 and 4 s wall: the fastest is the third, with its own 0.9 s of CPU; per 1,000 words
    assert r["min_wall_s_per_1000_words"] == pytest.approx(2.0) and r["cpu_s_per_1000_words"] == pytest.approx(1.8)
    # the committed record, which the chapter reads, says how and where it was measured
    record = json.loads((root / "benchmarks" / "results" / "efpc.json").read_text())
    assert record["threads"] == 1 and len(record["pinned_cores"]) == 1 and record["repeats"] >= 10
    assert record["device_name"] and record["logical_cpus"] >= 1 and "minimum" in record["statistic"]
    for r in record["results"].values():
        assert 0 < r["cpu_s_per_1000_words"] and 0 < r["min_wall_s_per_1000_words"]


def test_handwritten_passages_are_varied_and_answerable():
    from companion.efpc.experiment import handwritten_passages

    passages = handwritten_passages()
    assert len(passages) >= 20 and len({p["kind"] for p in passages}) >= 10
    for p in passages:
        assert p["answer"] in p["passage"] and p["question"].endswith("?")
    assert any("\n" in p["passage"] for p in passages) and any("/" in p["answer"] for p in passages)


def test_cli_refuses_full_without_a_gpu_and_rejects_unknown_presets(capsys):
    from companion.efpc.__main__ import main
    from companion.runtime import run_cli

    if not torch.cuda.is_available():
        for preset in ("full", "colab"):
            assert run_cli(main, ["--preset", preset]) == 1
            assert f"the {preset} preset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--preset", "huge"])


def test_highlighted_text_and_the_live_widget(corpus, small_model):
    tok, model = small_model
    comp = Compressor(model, tok)
    e = corpus.test[0]
    page = highlight_modes(comp, e.passage, e.question, 0.25, answer=e.answer)
    # both modes, each word a span with its probability, the question escaped as text
    assert page.count("EFPC, question prepended") == 1 and page.count("EFPC, no question") == 1
    n_words = len(comp.compress(e.passage, 0.25).words)
    assert page.count('title="p(keep)=') == 2 * n_words
    assert "answer kept" in page or "answer lost" in page
    tagged = highlight_modes(comp, "A <i>bold</i> claim here.", "Is <i> kept?", 0.5)
    assert "<i>" not in tagged and "Is &lt;i&gt; kept?" in tagged  # prompt and question shown as text
    widget = compression_widget(comp, e.passage, e.question, 0.5)
    box, ask, slider, view = widget.children
    assert view.value == highlight_modes(comp, e.passage, e.question, 0.5)  # drawn before any change
    slider.value = 0.25
    assert view.value == highlight_modes(comp, e.passage, e.question, 0.25)  # redrawn on a change
    box.value = ""  # an empty prompt: the compressor's message, not a traceback
    assert "prompt is empty" in view.value and "p(keep)" not in view.value


# --- the quick claim -----------------------------------------------------------------------------

@pytest.mark.slow
def test_quick_run_claims_and_rates(tmp_path, monkeypatch):
    from companion import results
    from companion.efpc import experiment

    monkeypatch.setattr(results, "results_dir", lambda: tmp_path)
    out = experiment.run(presets.quick(progress=False))
    claims = {c["id"]: c for c in out.claims}
    assert set(claims) == {"task_aware_gain", "agnostic_no_loss", "int8_no_loss"}
    assert all(c["n"] == 24 and c["tier"] == "quick" for c in claims.values())  # paired over passages
    # the headline on hand-written text: given the question, EFPC keeps at least as much of the answer
    assert claims["task_aware_gain"]["estimate"] > 0
    gen = out.metrics["generated"]["4x"]
    # training learned the rule (not evidence, a check): the question moves the kept words
    assert gen["efpc_task_aware"]["f1_aware"] > gen["efpc_task_agnostic"]["f1_aware"] + 10
    for name in ("efpc_task_agnostic", "llmlingua2"):
        assert gen[name]["f1_agnostic"] > gen["random"]["f1_agnostic"] + 20
    hand = out.metrics["handwritten"]["4x"]
    assert hand["efpc_task_aware"]["recall"] > hand["random"]["recall"] + 10
    for source in ("generated", "handwritten"):
        for r, block in out.metrics[source].items():
            target = 100 / float(r[:-1])
            rates = [m["rate"] for m in block.values() if isinstance(m, dict)]
            assert all(abs(x - target) < 4 for x in rates), (source, r, rates)
    assert isinstance(out.efpc, Compressor)
    assert json.loads((tmp_path / "efpc.json").read_text())["quick"]["claims"][0]["id"] == "task_aware_gain"
