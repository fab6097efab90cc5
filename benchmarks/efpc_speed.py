"""Compression latency of the trained EFPC compressor, per 1,000 words of prompt, on one CPU thread.

Two compressors are trained as in the chapter's quick run (seed 0): the quick model (MiniLM cut
to 4 blocks) and the 6-block MiniLM; each is timed in float32 and with its linear layers
dynamically quantized to int8 (``compress.quantize_linear``), on a prompt of about 1,000 words with
the question prepended (task-aware, the slower mode). Chunks are cut at sentence ends to the
model's 512-token window and scored in one batch under ``torch.inference_mode``. The answer recall
on the chapter's hand-written passages is printed beside each time, so the cost of int8 is seen.

Each setting is timed ``--repeats`` times after one warm-up, with the process pinned to one CPU core
(``os.sched_setaffinity``) and torch on one thread. The number reported is the **minimum** wall time
over the repeats (other work on the machine can only add to a run's time, never remove from it), with
the CPU time (``time.process_time``) of that same repeat beside it; the CPU model, core count and
threads are recorded with them. Writes ``benchmarks/results/efpc.json``.

    OMP_NUM_THREADS=1 python benchmarks/efpc_speed.py   # targets: < 0.5 s (4 blocks), < 1 s (6 blocks)
    python benchmarks/efpc_speed.py --device cuda --words 8000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from companion.compress import Compressor, answer_recall, quantize_linear
from companion.efpc import config as presets
from companion.efpc.corpus import make_corpus
from companion.efpc.experiment import handwritten_passages, train_pair


def build_prompt(n_words: int, seed: int = 0) -> tuple[str, str]:
    """A prompt of at least ``n_words`` words (corpus passages, one after another) and a question."""
    corpus = make_corpus(n_train=1, n_test=max(1, n_words // 30), seed=seed)
    text, count = [], 0
    for e in corpus.test:
        text.append(e.passage)
        count += len(e.words)
        if count >= n_words:
            break
    return " ".join(text), corpus.test[0].question


def recall(compressor: Compressor, rate: float = 0.25) -> float:
    """Mean answer-word recall (percent) on the hand-written passages, question prepended."""
    values = [answer_recall(compressor.compress(p["passage"], rate, instruction=p["question"]).kept_words, p["answer"])
              for p in handwritten_passages()]
    return 100 * float(np.mean(values))


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def pin(threads: int) -> list[int] | None:
    """Pin this process to ``threads`` CPU cores (Linux) and torch to ``threads`` threads; the cores used."""
    torch.set_num_threads(threads)
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cores)
    return cores


def time_it(compressor: Compressor, prompt: str, question: str, rate: float, repeats: int, device) -> dict:
    """The fastest of ``repeats`` timed compressions (after one warm-up), per 1,000 words: its wall time
    and the CPU time of that same repeat."""
    compressor.compress(prompt, rate, instruction=question)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        comp = compressor.compress(prompt, rate, instruction=question)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    k = 1000 / len(comp.words)
    best = min(range(repeats), key=wall.__getitem__)
    return {"min_wall_s_per_1000_words": wall[best] * k, "cpu_s_per_1000_words": cpu[best] * k,
            "words": len(comp.words), "chunks": len(comp.chunks), "achieved_rate": comp.rate}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU cores pinned and torch threads (the targets are for one)")
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per setting (after one warm-up); the minimum is reported")
    parser.add_argument("--words", type=int, default=1000, help="prompt length in words")
    parser.add_argument("--rate", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=presets.quick().steps, help="training steps per compressor")
    parser.add_argument("--model", default="minilm", help="the encoder (default: the packaged MiniLM), cut to 4 and 6 blocks")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "efpc.json"))
    args = parser.parse_args(argv)
    if min(args.repeats, args.words, args.threads, args.steps) < 1:
        parser.error("--repeats, --words, --threads and --steps must be positive")
    cores = pin(args.threads)
    device = torch.device(args.device)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model())
    print(f"{machine}; {os.cpu_count()} logical CPUs; pinned to cores {cores}, {torch.get_num_threads()} torch "
          f"thread(s); minimum over {args.repeats} repeats")
    prompt, question = build_prompt(args.words)
    results = {}
    for blocks in (4, 6):
        pair = train_pair(presets.quick(model=args.model, num_layers=blocks, steps=args.steps,
                                        warmup_steps=min(presets.quick().warmup_steps, args.steps), progress=False), seed=0)
        model = pair.efpc.model.to(device).eval()
        variants = {"float32": Compressor(model, pair.efpc.tokenizer, device=device)}
        if device.type == "cpu":
            variants["int8"] = Compressor(quantize_linear(model), pair.efpc.tokenizer)
        for name, comp in variants.items():
            r = time_it(comp, prompt, question, args.rate, args.repeats, device)
            r["answer_recall_handwritten_4x"] = recall(comp)
            results[f"{blocks}_blocks_{name}"] = r
            print(f"{blocks} blocks {name:7s}: {r['min_wall_s_per_1000_words']:.3f} s wall (fastest of {args.repeats}), "
                  f"{r['cpu_s_per_1000_words']:.3f} s CPU per 1,000 words ({r['words']} words, {r['chunks']} chunks); "
                  f"answer recall at 4x on the hand-written passages {r['answer_recall_handwritten_4x']:.1f}%")
    record = {
        "device": str(device), "threads": torch.get_num_threads(), "pinned_cores": cores, "logical_cpus": os.cpu_count(),
        "rate": args.rate, "repeats": args.repeats, "statistic": "minimum wall time over the repeats; CPU time of that repeat",
        "device_name": machine, "torch": torch.__version__, "model": args.model, "steps": args.steps,
        "targets_s_per_1000_words": {"4_blocks": 0.5, "6_blocks": 1.0}, "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
