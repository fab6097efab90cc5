"""Compression latency of the trained EFPC compressor, per 1,000 words of prompt, on one CPU thread.

Two compressors are trained as in the chapter's quick run (seed 0): the quick model (MiniLM cut
to 4 blocks) and the 6-block MiniLM; each is timed in float32 and with its linear layers
dynamically quantized to int8 (``compress.quantize_linear``), on a prompt of about 1,000 words with
the question prepended (task-aware, the slower mode). Chunks are cut at sentence ends to the
model's 512-token window and scored in one batch under ``torch.inference_mode``. The answer recall
on the chapter's hand-written passages is printed beside each time, so the cost of int8 is seen.
Wall and CPU seconds are both printed: on a shared machine wall time is inflated by other work.
Writes ``benchmarks/results/efpc.json``.

    python benchmarks/efpc_speed.py                 # targets: < 0.5 s (4 blocks), < 1 s (6 blocks)
    python benchmarks/efpc_speed.py --device cuda --words 8000
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
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


def time_it(compressor: Compressor, prompt: str, question: str, rate: float, repeats: int, device) -> dict:
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
    return {"wall_s_per_1000_words": statistics.median(wall) * k, "min_wall_s_per_1000_words": min(wall) * k,
            "cpu_s_per_1000_words": statistics.median(cpu) * k, "words": len(comp.words),
            "chunks": len(comp.chunks), "achieved_rate": comp.rate}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the targets are for one)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per setting (after one warm-up)")
    parser.add_argument("--words", type=int, default=1000, help="prompt length in words")
    parser.add_argument("--rate", type=float, default=0.25)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "efpc.json"))
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.words < 1 or args.threads < 1:
        parser.error("--repeats, --words and --threads must be positive")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    prompt, question = build_prompt(args.words)
    results = {}
    for blocks in (4, 6):
        pair = train_pair(presets.quick(num_layers=blocks, progress=False), seed=0)
        model = pair.efpc.model.to(device).eval()
        variants = {"float32": Compressor(model, pair.efpc.tokenizer, device=device)}
        if device.type == "cpu":
            variants["int8"] = Compressor(quantize_linear(model), pair.efpc.tokenizer)
        for name, comp in variants.items():
            r = time_it(comp, prompt, question, args.rate, args.repeats, device)
            r["answer_recall_handwritten_4x"] = recall(comp)
            results[f"{blocks}_blocks_{name}"] = r
            print(f"{blocks} blocks {name:7s}: {r['wall_s_per_1000_words']:.3f} s wall, "
                  f"{r['cpu_s_per_1000_words']:.3f} s CPU per 1,000 words ({r['words']} words, {r['chunks']} chunks); "
                  f"answer recall at 4x on the hand-written passages {r['answer_recall_handwritten_4x']:.1f}%")
    record = {
        "device": str(device), "threads": torch.get_num_threads(), "rate": args.rate, "repeats": args.repeats,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "targets_s_per_1000_words": {"4_blocks": 0.5, "6_blocks": 1.0},
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
