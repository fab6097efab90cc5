"""EFPC's colab preset end to end on the CPU: fabricated MeetingBank-LLMCompressed, SQuAD and LongBench
files in the formats the full loader reads, a tiny random encoder and answering LLM saved with
``save_pretrained`` in place of the hub models, one interruption mid-training and a rerun that resumes."""

import json
import zipfile
from dataclasses import replace

import pytest

from fabricate import interrupt_fit_after

TOWNS = ["Alder", "Birch", "Cedar", "Dover", "Elton", "Fenwick", "Garth", "Holt"]


def _meetingbank(folder):
    """``train.jsonl``: records with the hub dataset's ``prompt_list`` / ``compressed_prompt_list``."""
    folder.mkdir(parents=True)
    with (folder / "train.jsonl").open("w") as f:
        for i, town in enumerate(TOWNS * 3):
            prompt = [f"The council of {town} met on day {i} and approved the new budget for the park.",
                      f"Members of {town} then discussed the library hours and agreed to extend them."]
            compressed = [f"council {town} approved budget park.", f"{town} discussed library hours extend."]
            f.write(json.dumps({"idx": i, "prompt_list": prompt, "compressed_prompt_list": compressed}) + "\n")


def _squad(folder):
    """``train.jsonl``: SQuAD records (``context``, ``question``, ``answers`` with ``text`` and ``answer_start``)."""
    folder.mkdir(parents=True)
    with (folder / "train.jsonl").open("w") as f:
        for i, town in enumerate(TOWNS):
            context = f"{town} is a small town. Its bridge opened in {1900 + i}. The river is wide."
            answer = str(1900 + i)
            f.write(json.dumps({"id": str(i), "title": town, "context": context,
                                "question": f"When did the bridge of {town} open?",
                                "answers": {"text": [answer], "answer_start": [context.index(answer)]}}) + "\n")


def _longbench(path):
    """LongBench's ``data.zip``: ``data/<task>.jsonl`` (and the ``_e`` variants the reader skips)."""
    with zipfile.ZipFile(path, "w") as zf:
        for task in ("narrativeqa", "qasper", "multifieldqa_en"):
            lines = []
            for i, town in enumerate(TOWNS[:2]):
                rec = {"_id": f"{task}-{i}", "input": f"Who leads {town}?", "answers": [f"Mayor {town}"],
                       "context": f"{town} is by the river. Mayor {town} leads the town. " * 6, "length": 40,
                       "dataset": task, "language": "en", "all_classes": None}
                lines.append(json.dumps(rec))
            zf.writestr(f"data/{task}.jsonl", "\n".join(lines) + "\n")
            zf.writestr(f"data/{task}_e.jsonl", lines[0] + "\n")


def _models(root):
    """A tiny random BERT token classifier and a tiny random Qwen2 causal LM, both with the packaged
    MiniLM's tokenizer (a chat template added for the LLM), written by ``save_pretrained``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification, Qwen2Config, Qwen2ForCausalLM

    from companion.compress import minilm_path

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    encoder = root / "encoder"
    BertForTokenClassification(BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=32, num_labels=2)
                               ).save_pretrained(encoder)
    tok.save_pretrained(encoder)
    llm = root / "llm"
    Qwen2ForCausalLM(Qwen2Config(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1, intermediate_size=32,
                                 eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)).save_pretrained(llm)
    tok.eos_token = tok.sep_token
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}{% if add_generation_prompt %} answer:{% endif %}"
    tok.save_pretrained(llm)
    return encoder, llm


@pytest.mark.fullpath
def test_colab_preset_end_to_end_with_a_resume(tmp_path, monkeypatch, capsys):
    from companion import efpc, results
    from companion.efpc import config as presets

    data, ckpt, out = tmp_path / "data", tmp_path / "checkpoints", tmp_path / "results"
    for key, value in (("COMPANION_DATA", data), ("COMPANION_CHECKPOINTS", ckpt), ("COMPANION_RESULTS", out)):
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    _meetingbank(data / "meetingbank")
    _squad(data / "squad")
    _longbench(data / "longbench.zip")
    encoder, llm = _models(tmp_path)
    colab = presets.colab()
    # the colab preset's recipe, only the sizes cut down and the data and models local
    config = replace(colab, model=str(encoder), llm=str(llm), meetingbank=str(data / "meetingbank"),
                     qa_dataset=str(data / "squad"), longbench=str(data / "longbench.zip"), steps=4, batch_size=4,
                     accumulate=2, warmup_steps=1, checkpoint_every=2, max_length=64, eval_per_task=2,
                     max_new_tokens=3, device="cpu", progress=False)
    assert (config.p_prepend, config.rates, config.aware_fraction, config.lr) == (
        colab.p_prepend, colab.rates, colab.aware_fraction, colab.lr)

    stop = interrupt_fit_after(monkeypatch, 3 * config.accumulate)  # it counts micro-batches: 3 steps
    with pytest.raises(KeyboardInterrupt):
        efpc.run(config)
    assert stop["fired"]
    shown = capsys.readouterr().out  # what the run announced before it started
    assert "on a Colab T4 (estimate: training" in shown and "Expect: EFPC with the question" in shown
    assert f"Checkpoints: {ckpt / 'efpc'} (rerun" in shown
    first = ckpt / "efpc" / "llmlingua2"
    assert [p.name for p in first.iterdir() if p.is_file()], "the interrupted run left no checkpoint"
    assert not out.exists() or not list(out.rglob("*.json"))

    metrics = efpc.run(config)  # the rerun resumes from the checkpoint of step 2
    # a colab-preset run is a customised full run: recorded beside, never over, the full preset's record
    (path,) = (out / "custom").glob("efpc-full-*.json")
    assert not (out / "efpc.json").exists()
    entry = results.latest("efpc", "full", out)
    assert entry == json.loads(path.read_text())["full"]
    assert entry["customised"]["model"] == [presets.full().model, str(encoder)]
    assert entry["timings"]["resumed_from_step"] == {"llmlingua2": 2, "efpc": None}
    assert {c["id"] for c in entry["claims"]} == {"task_aware_gain", "agnostic_no_loss"}
    assert all(c["tier"] == "full" and c["n"] == 6 for c in entry["claims"])
    results.check_record(entry, "full", str(path))
    assert entry["metrics"]["n_eval"] == metrics["n_eval"] == 6
    assert entry["metrics"]["n_task_aware"] > 0 and "LongBench" in entry["scale"]
    predictions = (ckpt / "efpc" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 6 * 3  # three methods per question, each answered once
