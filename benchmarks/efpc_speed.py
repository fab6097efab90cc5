"""Compression latency of the EFPC / LLMLingua-2 compressor, per 1,000 words of prompt.

The prompt is built from the quick corpus's passages; it is chunked at sentence ends to the model's
window, all chunks go through the model in batches under ``torch.inference_mode``, and words are
selected at the rate. Prints the numbers and writes ``benchmarks/results/efpc.json``.

    python benchmarks/efpc_speed.py                      # CPU, packaged MiniLM, small
    python benchmarks/efpc_speed.py --device cuda --steps 20 --words 8000

LLMLingua-2 reports 0.4-0.5 s per MeetingBank prompt on a V100 with XLM-RoBERTa-large
(``--model FacebookAI/xlm-roberta-large`` if its weights are available).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from companion.compress.classifier import load_token_classifier
from companion.compress.inference import Compressor
from companion.efpc.corpus import make_corpus


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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed repeats per setting (after one warm-up)")
    parser.add_argument("--words", type=int, default=1000, help="prompt length in words")
    parser.add_argument("--batch-size", type=int, default=32, help="chunks per forward pass")
    parser.add_argument("--max-length", type=int, default=512, help="model window in sub-tokens")
    parser.add_argument("--model", default="minilm", help="'minilm' (packaged) or a Hugging Face name")
    parser.add_argument("--rate", type=float, default=0.33)
    parser.add_argument("--half", action="store_true", help="fp16 weights (CUDA)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "efpc.json"))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.words < 1:
        parser.error("--steps and --words must be positive")

    device = torch.device(args.device)
    tokenizer, model = load_token_classifier(args.model)
    model.to(device).eval()
    if args.half:
        model.half()
    compressor = Compressor(model, tokenizer, max_length=args.max_length, batch_size=args.batch_size, device=device)
    prompt, question = build_prompt(args.words)
    results = {}
    for mode, instruction in (("task_agnostic", None), ("task_aware", question)):
        compressor.compress(prompt, args.rate, instruction=instruction)  # warm-up
        times, cpu_times = [], []
        for _ in range(args.steps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            comp = compressor.compress(prompt, args.rate, instruction=instruction)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        n_words = len(comp.words)
        per_k = [t * 1000 / n_words for t in times]
        results[mode] = {
            "seconds_per_1000_words": statistics.median(per_k), "min_seconds_per_1000_words": min(per_k),
            "seconds_per_prompt": statistics.median(times), "words": n_words, "chunks": len(comp.chunks),
            # CPU seconds of this process (all threads): on a shared machine wall time is inflated
            "cpu_seconds_per_1000_words": statistics.median(c * 1000 / n_words for c in cpu_times),
            "achieved_rate": comp.rate,
        }
        print(f"{mode:14s} {n_words} words in {len(comp.chunks)} chunks: "
              f"{results[mode]['seconds_per_1000_words']:.3f} s per 1,000 words (median of {args.steps}; "
              f"{results[mode]['cpu_seconds_per_1000_words']:.3f} CPU s), "
              f"kept {comp.rate:.2f}")
    record = {
        "model": args.model, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(), "batch_size": args.batch_size, "max_length": args.max_length,
        "half": args.half, "rate": args.rate, "steps": args.steps, "torch": torch.__version__, "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
