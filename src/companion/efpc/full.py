"""The full run: EFPC and LLMLingua-2 compressors trained on MeetingBank-LLMCompressed, judged on
LongBench single-document QA by a small instruction-tuned LLM answering from the compressed prompt.

Data (downloaded to ``COMPANION_DATA``, default ``~/.cache/companion/data``, from the Hugging Face hub):

- ``microsoft/MeetingBank-LLMCompressed``: meeting transcripts cut into chunks with GPT-4's
  compressions; labels come from :func:`~companion.compress.align.align_words` and the quality filter.
- ``rajpurkar/squad`` (train): the task-aware data this book adds in place of EFPC's GPT-4
  compressions given the question, which were not released. A passage's labels keep the content
  words of the sentence holding the answer, the quick corpus's rule. ``aware_fraction`` sets how
  many are added relative to MeetingBank's chunks (the paper reports 1% and 10% additional data).
- ``THUDM/LongBench`` (``data.zip``): NarrativeQA, Qasper and MultiFieldQA-en (the English
  single-document QA tasks), scored with the token F1 LongBench uses for them.

``datasets`` (for the first two) is an extra dependency of the full run: ``pip install datasets``.
Local copies work without it and without the hub: ``meetingbank`` and ``qa_dataset`` may name a
JSON-lines file of the hub's records (or a folder holding ``<split>.jsonl``), ``longbench`` a local
``data.zip``, ``model`` and ``llm`` folders written by ``save_pretrained``. When the hub cannot be
reached, the run stops with one :class:`~companion.compress.HubUnreachableError` saying what to do.

Book section: *EFPC* "Full run".
"""

from __future__ import annotations

import copy
import json
import random
import re
import string
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from .. import results, runtime
from ..compress.align import align_words, quality_filter
from ..compress.classifier import HubUnreachableError, hub_advice, hub_errors, load_token_classifier
from ..compress.inference import Compressor
from ..compress.words import SENTENCE_END_CHARS, is_content_word, segment, split_words, tokenizer_counter
from ..data import DatasetMissingError, data_root
from ..runtime import seed_everything
from .config import EFPCConfig
from .experiment import rate_label
from .method import LabelledPrompt, encode_examples, train_compressor

CHAPTER = "efpc"
LONGBENCH_REPO = "THUDM/LongBench"
SINGLE_DOC_TASKS = ("narrativeqa", "qasper", "multifieldqa_en")


def hf_cache() -> Path:
    """Where the full run's downloads go: ``data_root() / "huggingface"``."""
    return data_root() / "huggingface"


def require_datasets():
    """Import Hugging Face ``datasets`` or say how to get it."""
    try:
        import datasets
    except ImportError as err:
        raise ImportError("the EFPC full run reads MeetingBank-LLMCompressed and SQuAD with Hugging Face "
                          "`datasets`: pip install datasets") from err
    return datasets


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSON-lines file (one object a line; blank lines skipped)."""
    out = []
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}, line {n}: not JSON ({err.msg})") from None
    return out


def _load_hub_dataset(name: str, split: str):
    """Records of ``split`` of the hub dataset ``name``, or of a local copy: a JSON-lines file of the
    same records, or a folder holding ``<split>.jsonl``."""
    local = Path(name).expanduser()
    if local.exists():
        file = local / f"{split}.jsonl" if local.is_dir() else local
        if not file.is_file():
            raise DatasetMissingError(f"{name!r} is a folder without {split}.jsonl (the {split!r} split's records, "
                                      "one JSON object a line)")
        return read_jsonl(file)
    datasets = require_datasets()
    try:
        return datasets.load_dataset(name, split=split, cache_dir=str(hf_cache()))
    except Exception as err:  # offline, no such dataset, hub errors: one clear message
        raise HubUnreachableError(
            f"could not load {name!r} (split {split!r}) from the Hugging Face hub ({err}). The full run needs the "
            f"internet once; the files are then cached under {hf_cache()} (set COMPANION_DATA to move it). "
            + hub_advice(name, "dataset", hf_cache())
        ) from err


# ---------------------------------------------------------------------------------------------
# Training data


def meetingbank_examples(records: Iterable[dict], window: int = 400, quantile: float = 90.0,
                         limit: int | None = None) -> list[LabelledPrompt]:
    """LLMLingua-2's training set from MeetingBank-LLMCompressed records.

    Every (original chunk, GPT-4 compression) pair in ``prompt_list`` / ``compressed_prompt_list``
    (or the whole ``prompt`` / ``compressed_prompt``) is aligned into word labels; pairs in the top
    decile of variation rate or alignment gap are dropped.

    Book section: *EFPC* "Where the labels come from".
    """
    words, alignments = [], []
    for rec in records:
        pairs = list(zip(rec.get("prompt_list") or [rec["prompt"]], rec.get("compressed_prompt_list") or [rec["compressed_prompt"]]))
        for original, compressed in pairs:
            o, c = split_words(original), split_words(compressed)
            if not o or not c:
                continue
            words.append(o)
            alignments.append(align_words(o, c, window))
        if limit is not None and len(words) >= limit:
            break
    keep = quality_filter(alignments, quantile)
    return [LabelledPrompt(words[i], agnostic=alignments[i].labels) for i in keep]


def answer_sentence_labels(context: str, answer_start: int) -> tuple[list[str], list[int]]:
    """Words of ``context`` and task-aware labels: the content words of the sentence holding the answer.

    ``answer_start`` is a character offset (SQuAD's ``answer_start``).
    """
    spans = segment(context)
    words = [context[s:e] for s, e in spans]
    before = next((i for i, (_, e) in enumerate(spans) if e > answer_start), len(words))  # the answer's word
    if before >= len(words):
        raise ValueError(f"answer_start {answer_start} lies beyond the context's last word")
    start = before
    while start > 0 and not words[start - 1].endswith(tuple(SENTENCE_END_CHARS)):
        start -= 1
    end = before
    while end < len(words) and not words[end].endswith(tuple(SENTENCE_END_CHARS)):
        end += 1
    labels = [int(start <= i <= end and is_content_word(w)) for i, w in enumerate(words)]
    return words, labels


def squad_examples(records: Sequence[dict], n: int, seed: int = 0) -> list[LabelledPrompt]:
    """``n`` task-aware training prompts from SQuAD records (``context``, ``question``, ``answers``)."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    out = []
    for i in order[: max(0, n)]:
        rec = records[i]
        words, labels = answer_sentence_labels(rec["context"], int(rec["answers"]["answer_start"][0]))
        out.append(LabelledPrompt(words, aware=labels, question=rec["question"]))
    return out


# ---------------------------------------------------------------------------------------------
# LongBench


def load_longbench(tasks: Sequence[str] = SINGLE_DOC_TASKS, archive: str | Path | None = None,
                   repo: str = LONGBENCH_REPO) -> list[dict]:
    """LongBench examples of ``tasks``: dicts with ``task``, ``id``, ``context``, ``question``, ``answers``.

    Reads ``data/<task>.jsonl`` from LongBench's ``data.zip`` (downloaded from the hub dataset ``repo``
    unless ``archive`` points at a local copy).
    """
    if archive is None:
        try:
            from huggingface_hub import hf_hub_download

            archive = hf_hub_download(repo, "data.zip", repo_type="dataset", cache_dir=str(hf_cache()))
        except Exception as err:
            raise HubUnreachableError(
                f"could not download LongBench's data.zip from the hub ({repo}): {err}. Fetch "
                f"https://huggingface.co/datasets/{repo}/resolve/main/data.zip and set longbench to its path "
                "(efpc.config.full(longbench=...)). " + hub_advice(repo, "dataset", hf_cache())
            ) from err
    out = []
    with zipfile.ZipFile(archive) as zf:
        names = {Path(n).stem: n for n in zf.namelist() if n.endswith(".jsonl") and "_e.jsonl" not in n}
        for task in tasks:
            if task not in names:
                raise ValueError(f"LongBench has no task {task!r}; single-document QA is {SINGLE_DOC_TASKS}")
            with zf.open(names[task]) as f:
                for line in f:
                    rec = json.loads(line)
                    out.append({"task": task, "id": rec["_id"], "context": rec["context"],
                                "question": rec["input"], "answers": list(rec["answers"])})
    return out


def normalize_answer(text: str) -> list[str]:
    """Lower-case, drop punctuation and the articles a/an/the, split on whitespace (SQuAD-style)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def qa_f1(prediction: str, answers: Sequence[str]) -> float:
    """Token F1 between a prediction and the best-matching reference answer (LongBench's QA metric), in [0, 1]."""
    pred = normalize_answer(prediction)
    best = 0.0
    for answer in answers:
        ref = normalize_answer(answer)
        common = sum((Counter(pred) & Counter(ref)).values())
        if common:
            p, r = common / len(pred), common / len(ref)
            best = max(best, 2 * p * r / (p + r))
    return best


_PROMPT = ("Read the {kind} below and answer the question as briefly as you can, with a short phrase if "
           "possible. Give no explanation.{extra}\n\n{kind_title}:\n{context}\n\nQuestion: {question}\nAnswer:")
_KINDS = {
    "narrativeqa": ("story", ""),
    "qasper": ("scientific article",
               ' If the article does not answer the question, write "unanswerable"; answer a yes/no question with "yes" or "no".'),
    "multifieldqa_en": ("document", ""),
}


def qa_prompt(task: str, context: str, question: str) -> str:
    """The instruction given to the answering LLM (this book's wording)."""
    kind, extra = _KINDS.get(task, ("document", ""))
    return _PROMPT.format(kind=kind, kind_title=kind.capitalize(), extra=extra, context=context, question=question)


class Answerer:
    """A small instruction-tuned causal LLM answering from a (compressed) context, greedy decoding."""

    def __init__(self, name: str, device: torch.device, max_new_tokens: int = 64):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = torch.float16 if device.type == "cuda" else torch.float32
        with hub_errors(f"the answering LLM {name!r}", name):
            self.tokenizer = AutoTokenizer.from_pretrained(name)
            self.model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype).to(device).eval()
        self.device, self.max_new_tokens = device, max_new_tokens

    def __call__(self, prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.eos_token_id)
        text = self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        return text.strip().split("\n")[0]


# ---------------------------------------------------------------------------------------------
# The run


def _checkpoints(config: EFPCConfig) -> Path:
    return Path(config.checkpoint_dir) if config.checkpoint_dir else runtime.checkpoint_root(CHAPTER)


#: XLM-RoBERTa-large as the memory estimate needs it (model card: 560M parameters; 24 layers of 1,024, 16 heads).
XLMR_LARGE = {"n_params": 560_000_000, "hidden": 1024, "layers": 24, "heads": 16}
#: Multilingual BERT-base, LLMLingua-2-small's encoder (BERT's README: 179M parameters; 12 layers of 768, 12 heads).
MBERT_BASE = {"n_params": 179_000_000, "hidden": 768, "layers": 12, "heads": 12}
#: The encoders of the colab and full presets, by hub name.
ENCODERS = {"FacebookAI/xlm-roberta-large": XLMR_LARGE, "google-bert/bert-base-multilingual-cased": MBERT_BASE}


def encoder_shape(name: str) -> dict:
    """``hidden``, ``layers``, ``heads`` (and, for :data:`ENCODERS`, ``n_params``) of the encoder ``name``:
    from :data:`ENCODERS`, else from its ``config.json`` (a local ``save_pretrained`` folder or the hub)."""
    if name in ENCODERS:
        return ENCODERS[name]
    from transformers import AutoConfig

    with hub_errors(f"the configuration of the encoder {name!r}", name):
        cfg = AutoConfig.from_pretrained(name)
    try:
        return {"hidden": cfg.hidden_size, "layers": cfg.num_hidden_layers, "heads": cfg.num_attention_heads}
    except AttributeError as err:
        raise ValueError(f"the encoder {name!r} has no BERT-style hidden_size / num_hidden_layers / "
                         f"num_attention_heads in its config ({err}); the time estimate needs them") from None


def full_run_hours(config: EFPCConfig | None = None, answer_seconds: float = 3.0, flops: float | None = None):
    """The run's time on a Colab T4 (default: the full preset): training both compressors at 6 FLOPs per
    non-embedding parameter (12 L h^2 of the preset's encoder) and token (Kaplan et al. 2020) at ``flops``
    FLOP/s (default :data:`companion.runtime.T4_FLOPS`, an assumption), plus every LongBench question compressed and
    answered three times at an assumed ``answer_seconds`` each (a 1.5B model in fp16 writing up to 64
    tokens). Returns a :class:`companion.runtime.TimeEstimate`. Book section: *EFPC* "Full run"."""
    from ..runtime import T4_FLOPS, TimeEstimate, estimate_hours, items_per_second
    from .config import full

    config = config or full()
    flops = flops or T4_FLOPS
    dims = encoder_shape(config.model)
    per_sequence = 6 * 12 * dims["layers"] * dims["hidden"] ** 2 * config.max_length
    train = estimate_hours(config.steps * config.batch_size, 1, items_per_second(per_sequence, flops), runs=2)
    questions = (config.eval_per_task or 200) * len(config.longbench_tasks)
    answer = questions * 3 * answer_seconds / 3600
    return TimeEstimate(train.hours + answer,
                        f"training {train.hours:.1f} h: {train.basis} at an assumed {flops / 1e12:g} TFLOP/s; "
                        f"answering {answer:.1f} h: {questions} questions x 3 methods at an assumed {answer_seconds:g} s")


def run_hours(config: EFPCConfig | None = None):
    """:func:`full_run_hours` under the name every chapter uses: the T4 time of ``config`` (default: the full preset)."""
    return full_run_hours(config)


def preset_memory(config: EFPCConfig) -> dict:
    """The training memory estimate (GiB, :func:`~companion.compress.training_memory`) of ``config``'s
    encoder at its batch, micro-batches and length: what the chapter states for each preset."""
    from ..compress.classifier import training_memory

    if config.model not in ENCODERS:
        raise ValueError(f"model must be one of {sorted(ENCODERS)} for a stated memory estimate, got {config.model!r}; "
                         "for another model use compress.model_training_memory on the loaded model")
    dims = ENCODERS[config.model]
    return training_memory(**dims, batch_size=config.batch_size, seq_len=config.max_length,
                           accumulate=config.accumulate, checkpointing=config.gradient_checkpointing)


#: What a colab or full run should show, and on what that expectation rests.
EXPECT = ("EFPC with the question above LLMLingua-2 in LongBench single-doc F1 (task_aware_gain), and EFPC without "
          "it close to LLMLingua-2 (agnostic_no_loss). The paper reports +11.4% relative F1 over LLMLingua-2 "
          "with 10% added data; this run's added data (SQuAD answer sentences) and answering LLM differ, so only "
          "the direction is expected, not that number (not verified).")


def release(model) -> None:
    """Move ``model`` off the GPU and hand the memory back, so the next model trains alone on it."""
    import gc

    model.to("cpu")
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def check_memory(model, config: EFPCConfig, device: torch.device) -> dict:
    """The training memory estimate (:func:`~companion.compress.model_training_memory`) for ``model`` at
    ``config``'s batch, micro-batch and length; on a GPU with less memory, an error that says what to set."""
    from ..compress.classifier import model_training_memory

    need = model_training_memory(model, config.batch_size, config.max_length, accumulate=config.accumulate,
                                 checkpointing=config.gradient_checkpointing)
    if device.type == "cuda":
        have = torch.cuda.get_device_properties(device).total_memory / 2**30
        if need["total"] > have:
            raise RuntimeError(
                f"training {config.model} at batch {config.batch_size} in {config.accumulate} micro-batches of "
                f"{config.max_length} tokens needs about {need['total']:.1f} GiB, and this GPU has {have:.1f} GiB. "
                f"Raise accumulate (e.g. efpc.config.full(accumulate={2 * config.accumulate})) or set "
                "gradient_checkpointing=True; the steps stay the same.")
    return need


def train_pair(base, tokenizer, meeting: list, squad: list, config: EFPCConfig, fits: dict | None = None):
    """Train the LLMLingua-2 compressor (``base`` itself, ``p = 0``, MeetingBank only), move it off the GPU,
    then the EFPC one (a copy of ``base``'s starting weights, MeetingBank + task-aware data, ``p``).

    Only one model, with its gradients and optimizer state, is on the GPU at a time. Returns
    ``(efpc_model, llmlingua2_model)``, both on the CPU; ``fits``, when given, receives each training's
    :class:`~companion.train.FitResult` (``resumed_from`` says whether it resumed). Book section: *EFPC* "Full run".
    """
    fits = {} if fits is None else fits
    from .experiment import fit_config

    efpc_model = copy.deepcopy(base).cpu()  # the same start for both, kept off the GPU meanwhile
    ll2_model = base
    if config.gradient_checkpointing:
        for model in (ll2_model, efpc_model):
            model.gradient_checkpointing_enable()
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    check_memory(ll2_model, config, device)
    fits["llmlingua2"] = train_compressor(ll2_model, tokenizer, encode_examples(meeting, tokenizer, config.max_length),
                                          0.0, fit_config(config, "llmlingua2"))
    release(ll2_model)
    fits["efpc"] = train_compressor(efpc_model, tokenizer, encode_examples(meeting + squad, tokenizer, config.max_length),
                                    config.p_prepend, fit_config(config, "efpc"))
    release(efpc_model)
    return efpc_model, ll2_model


def run_full(config: EFPCConfig) -> dict:
    """Train EFPC and LLMLingua-2 compressors, compress LongBench single-doc QA, let an LLM answer, score F1.

    Checkpoints go to ``config.checkpoint_dir``, default :func:`companion.runtime.checkpoint_root`
    (``"efpc"``). Training resumes from ``<checkpoints>/efpc`` and ``<checkpoints>/llmlingua2``; answers are
    appended to ``<checkpoints>/predictions.jsonl`` so an interrupted evaluation continues where it
    stopped. Records tier ``full`` with the claims ``task_aware_gain`` and ``agnostic_no_loss`` (paired
    over the questions): in ``results/efpc.json`` for the full preset, in ``results/custom/`` for any
    other settings (the colab preset included). Returns the metrics and the claims.

    Book section: *EFPC* "Full run".
    """
    began_run = time.perf_counter()
    ckpt = _checkpoints(config)
    runtime.announce(f"EFPC and LLMLingua-2 on {config.model}, {config.steps} steps x {config.batch_size} each, then "
                     f"LongBench ({config.eval_per_task or 'all'} questions per task) answered by {config.llm}",
                     full_run_hours(config), EXPECT, ckpt)
    seed_everything(config.seed)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    meeting = meetingbank_examples(_load_hub_dataset(config.meetingbank, "train"), config.alignment_window)
    n_aware = int(round(config.aware_fraction * len(meeting)))
    squad = squad_examples(_load_hub_dataset(config.qa_dataset, "train"), n_aware, config.seed) if n_aware else []
    tokenizer, base = load_token_classifier(config.model, trainable_layers=config.trainable_layers,
                                            num_layers=config.num_layers, seed=config.seed)
    run_config = copy.copy(config)
    run_config.checkpoint_dir = str(ckpt)
    run_config.device = str(device)
    began = time.perf_counter()
    fits: dict = {}
    efpc_model, ll2_model = train_pair(base, tokenizer, meeting, squad, run_config, fits)
    train_seconds = time.perf_counter() - began
    if device.type == "cuda":
        efpc_model.half()
        ll2_model.half()
    efpc_model.to(device)  # train_pair leaves both on the CPU; compressing needs them both (in fp16, ~2.2 GB)
    ll2_model.to(device)
    compressors = {"efpc": Compressor(efpc_model, tokenizer, config.max_length, config.aggregation, device=device),
                   "llmlingua2": Compressor(ll2_model, tokenizer, config.max_length, config.aggregation, device=device)}
    answerer = Answerer(config.llm, device, config.max_new_tokens)
    counter = tokenizer_counter(answerer.tokenizer)  # rates in the answering LLM's tokens
    local_zip = Path(config.longbench).expanduser()
    data = load_longbench(config.longbench_tasks, local_zip if local_zip.is_file() else None, config.longbench)
    if config.eval_per_task is not None:
        by_task: dict[str, list] = {}
        for ex in data:
            by_task.setdefault(ex["task"], []).append(ex)
        data = [ex for exs in by_task.values() for ex in exs[: config.eval_per_task]]
    methods = {  # name -> (compressor, whether the question is prepended)
        "efpc_task_aware": ("efpc", True), "efpc_task_agnostic": ("efpc", False), "llmlingua2": ("llmlingua2", False),
    }
    rate = config.rates[0]
    pred_path = ckpt / "predictions.jsonl"
    done = {}
    if pred_path.exists():
        for line in pred_path.read_text().splitlines():
            r = json.loads(line)
            done[(r["method"], r["id"], r["rate"])] = r
    from tqdm.auto import tqdm

    pred_path.parent.mkdir(parents=True, exist_ok=True)
    with pred_path.open("a") as log:
        for ex in tqdm(data, desc="LongBench", disable=not config.progress):
            for method, (which, aware) in methods.items():
                if (method, ex["id"], rate) in done:
                    continue
                t0 = time.perf_counter()
                comp = compressors[which].compress(ex["context"], rate, instruction=ex["question"] if aware else None,
                                                   force_tokens=config.force_tokens, counter=counter)
                seconds = time.perf_counter() - t0
                answer = answerer(qa_prompt(ex["task"], comp.text, ex["question"]))
                rec = {"method": method, "id": ex["id"], "task": ex["task"], "rate": rate, "prediction": answer,
                       "f1": qa_f1(answer, ex["answers"]), "achieved_rate": comp.rate, "seconds": seconds}
                done[(method, ex["id"], rate)] = rec
                log.write(json.dumps(rec) + "\n")
                log.flush()
    metrics: dict = {}
    for method in methods:
        recs = [done[(method, ex["id"], rate)] for ex in data]
        per_task = {t: 100 * float(np.mean([r["f1"] for r in recs if r["task"] == t])) for t in config.longbench_tasks}
        metrics[method] = {
            **{f"f1_{t}": v for t, v in per_task.items()},
            "singledoc_f1": float(np.mean(list(per_task.values()))),
            "achieved_rate": 100 * float(np.mean([r["achieved_rate"] for r in recs])),
            "seconds_per_prompt": float(np.mean([r["seconds"] for r in recs])),
        }
    base_f1 = metrics["llmlingua2"]["singledoc_f1"]
    metrics["relative_f1_gain"] = 100 * (metrics["efpc_task_aware"]["singledoc_f1"] - base_f1) / max(base_f1, 1e-9)
    metrics.update({"train_seconds": train_seconds, "n_meetingbank": len(meeting), "n_task_aware": len(squad),
                    "rate": rate, "n_eval": len(data)})
    claims = _full_claims({m: [100 * done[(m, ex["id"], rate)]["f1"] for ex in data] for m in methods},
                          rate_label(rate))
    scale = (f"full: {config.model} on {len(meeting)} MeetingBank chunks (+{len(squad)} SQuAD task-aware), "
             f"{config.steps} steps x {config.batch_size}; LongBench {', '.join(config.longbench_tasks)} "
             f"({len(data)} questions) at {1 / rate:.3g}x, answered by {config.llm}; {device.type}")
    resumed = {name: getattr(fit, "resumed_from", None) for name, fit in fits.items()}
    # config: a colab or otherwise changed run is recorded as customised (results/custom/), never over the full preset's
    results.write(CHAPTER, "full", metrics, scale, claims=claims, seeds=[config.seed], config=config,
                  timings={"train_s": train_seconds, "wall_s": time.perf_counter() - began_run,
                           "resumed_from_step": resumed})
    metrics["claims"] = claims
    return metrics


def _full_claims(f1: dict, rate: str) -> list[dict]:
    """The full run's claims from per-question F1 (percent) of each method, paired over the questions."""
    over = "LongBench single-doc QA questions"
    return [
        results.claim(
            "task_aware_gain",
            f"Given the question, EFPC answers better than LLMLingua-2 at {rate} (the paper: task-aware EFPC "
            "above LLMLingua-2 on LongBench single-doc QA at 4x).",
            f"LongBench token F1 at {rate}, EFPC with the question minus LLMLingua-2, paired over {over}",
            "full", f1["efpc_task_aware"], f1["llmlingua2"]),
        results.claim(
            "agnostic_no_loss",
            f"Without a question, EFPC answers as well as LLMLingua-2: less than 5 F1 points worse at {rate}.",
            f"LongBench token F1 at {rate}, EFPC without the question minus LLMLingua-2, paired over {over}",
            "full", f1["efpc_task_agnostic"], f1["llmlingua2"], test="non-inferiority", margin=5.0),
    ]
