"""Fit and predict time of NRS, its MLP baseline, a random forest and gradient boosting, per data set.

    python benchmarks/nrs_speed.py                      # CPU, bundled data sets, 20 epochs
    python benchmarks/nrs_speed.py --device cuda --steps 20 --datasets digits synthetic

``--steps`` is the number of training epochs of NRS and the MLP. ``synthetic`` is a
``make_classification`` problem of ``--n`` rows and ``--d`` features (a size where a GPU matters).
Times are wall seconds (CUDA work is finished before a clock stops: predictions are copied back to
the host). Prints a table and writes ``benchmarks/results/nrs.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from companion.nrs import config
from companion.nrs.tabular import Table, load_table, make_model, splits


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="torch device for NRS and the MLP (cpu, cuda, ...)")
    p.add_argument("--steps", type=int, default=20, help="training epochs of NRS and the MLP")
    p.add_argument("--datasets", nargs="+", default=["iris", "wine", "breast_cancer", "digits"])
    p.add_argument("--rounds", type=int, default=1, help="timed repeats (different splits)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for every model (0: library defaults)")
    p.add_argument("--n", type=int, default=20000, help="rows of the synthetic data set")
    p.add_argument("--d", type=int, default=100, help="features of the synthetic data set")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "nrs.json"))
    args = p.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        p.error("--steps and --rounds must be positive")
    threads = args.threads or None

    cfg = config.quick()
    report = {"device": args.device, "epochs": args.steps, "threads": threads, "rounds": args.rounds,
              "torch": torch.__version__, "python": platform.python_version(),
              "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None, "datasets": {}}
    # one warm-up fit so library start-up costs (kernels, thread pools) are not billed to the first data set
    make_model("nrs", {**cfg.nrs, "max_epochs": 1, "device": args.device}).fit(*make_classification(64, 8, random_state=0))

    print(f"{'data set':>14} {'model':>5} {'fit s':>8} {'predict s':>10} {'rows/s':>10} {'acc %':>6}")
    for name in args.datasets:
        if name == "synthetic":
            X, y = make_classification(args.n, args.d, n_informative=args.d // 2, n_classes=4, random_state=0)
            table = Table("synthetic", X, y)
        else:
            table = load_table(name)
        rows = {}
        for kind, params in cfg.model_params(name).items():
            if kind in ("nrs", "mlp"):
                params = {**params, "device": args.device, "max_epochs": args.steps, "n_threads": threads}
            fit_s, pred_s, accs = [], [], []
            for r, (tr, te) in enumerate(splits(table, args.rounds, 0.3, 0)):
                model = make_model(kind, params, random_state=r)
                with threadpool_limits(threads):  # None: no limit
                    _sync(args.device)
                    t = time.perf_counter()
                    model.fit(table.X[tr], table.y[tr])
                    _sync(args.device)
                    fit_s.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    pred = model.predict(table.X[te])
                    pred_s.append(time.perf_counter() - t)
                accs.append(100.0 * float(np.mean(pred == table.y[te])))
            n_test = len(te)
            rows[kind] = {"fit_s": float(np.median(fit_s)), "predict_s": float(np.median(pred_s)),
                          "predict_rows_per_s": n_test / max(float(np.median(pred_s)), 1e-9),
                          "acc": float(np.mean(accs)), "n_train": len(tr), "n_test": n_test}
            print(f"{name:>14} {kind:>5} {rows[kind]['fit_s']:8.3f} {rows[kind]['predict_s']:10.4f} "
                  f"{rows[kind]['predict_rows_per_s']:10.0f} {rows[kind]['acc']:6.1f}", flush=True)
        report["datasets"][name] = rows

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
