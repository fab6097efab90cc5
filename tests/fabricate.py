"""Tiny datasets in the real on-disk formats the full presets read, for the ``fullpath`` tests.

Each writer produces the exact files and folder layout of the published dataset (the CIFAR python
pickles, STL-10's binary arrays, Flowers-102's jpg folder and .mat labels, the CUB_200_2011 tree), only
with a handful of random images, so a full or colab preset runs end to end on the CPU in seconds. The
files cannot match the published checksums: a test runs with ``COMPANION_VERIFY_DATA=0``, the documented
switch for a local copy.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def _images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``n`` random RGB images, uint8, (n, size, size, 3), with some structure (a bright square per image)."""
    x = rng.integers(0, 120, size=(n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        s = max(2, size // 4)
        r, c = rng.integers(0, size - s, size=2)
        x[i, r:r + s, c:c + s] = rng.integers(150, 256, size=3, dtype=np.uint8)
    return x


def cifar(root: str | Path, name: str = "cifar10", n_train: int = 64, n_test: int = 32, seed: int = 0) -> Path:
    """CIFAR-10 (``cifar-10-batches-py``: five data batches, a test batch, ``batches.meta``) or CIFAR-100
    (``cifar-100-python``: ``train``, ``test``, ``meta``) as python pickles of (N, 3072) uint8 rows in
    channel-major order. Returns the dataset folder."""
    if name not in ("cifar10", "cifar100"):
        raise ValueError(f"name must be 'cifar10' or 'cifar100', got {name!r}")
    rng = np.random.default_rng(seed)
    classes = 10 if name == "cifar10" else 100
    root = Path(root)

    def rows(n: int, start: int = 0) -> tuple[np.ndarray, list[int]]:
        x = _images(rng, n, 32).transpose(0, 3, 1, 2).reshape(n, 3072)  # (N, 3*32*32), channel-major
        return x, [int(v) for v in (start + np.arange(n)) % classes]  # image i has class i mod classes

    def dump(path: Path, obj: dict) -> None:
        path.write_bytes(pickle.dumps(obj, protocol=2))

    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        if n_train < 5:
            raise ValueError(f"CIFAR-10 has five training batches: n_train must be >= 5, got {n_train}")
        edges = np.linspace(0, n_train, 6).astype(int)
        for b in range(5):
            x, y = rows(int(edges[b + 1] - edges[b]), int(edges[b]))
            dump(folder / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5", "data": x, "labels": y})
        x, y = rows(n_test)
        dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "data": x, "labels": y})
        dump(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072})
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", n_train), ("test", n_test)):
            x, y = rows(n)
            dump(folder / split, {"data": x, "fine_labels": y, "coarse_labels": [v // 5 for v in y]})
        dump(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                               "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return folder


def stl10(root: str | Path, n_train: int = 20, n_test: int = 20, n_unlabeled: int = 20, seed: int = 0) -> Path:
    """STL-10's ``stl10_binary`` folder: ``{train,test,unlabeled}_X.bin`` (uint8, N x 3 x 96 x 96 stored
    column-major, as the original), ``{train,test}_y.bin`` (labels 1..10), ``class_names.txt`` and
    ``fold_indices.txt``."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        x = _images(rng, n, 96).transpose(0, 3, 2, 1)  # (N, 3, W, H): torchvision transposes back
        (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(x).tobytes())
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes((np.arange(n) % 10 + 1).astype(np.uint8).tobytes())
    (folder / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    (folder / "fold_indices.txt").write_text("\n".join(" ".join(str(i) for i in range(k, n_train, 10))
                                                      for k in range(10)) + "\n")
    return folder


def flowers102(root: str | Path, per_split: int = 4, classes: int = 102, size: int = 64, seed: int = 0) -> Path:
    """Flowers-102's ``flowers-102`` folder: ``jpg/image_00001.jpg ...``, ``imagelabels.mat`` (``labels``,
    1..102) and ``setid.mat`` (``trnid``, ``valid``, ``tstid``, 1-based image ids). ``per_split`` images per
    class in each of the three splits."""
    from PIL import Image
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    folder = Path(root) / "flowers-102"
    (folder / "jpg").mkdir(parents=True, exist_ok=True)
    n = 3 * per_split * classes
    labels = np.repeat(np.arange(1, classes + 1), 3 * per_split)
    for i, img in enumerate(_images(rng, n, size), 1):
        Image.fromarray(img).save(folder / "jpg" / f"image_{i:05d}.jpg", quality=90)
    ids = np.arange(1, n + 1).reshape(classes, 3, per_split)
    savemat(folder / "imagelabels.mat", {"labels": labels[None, :]})
    savemat(folder / "setid.mat", {"trnid": ids[:, 0].reshape(1, -1), "valid": ids[:, 1].reshape(1, -1),
                                   "tstid": ids[:, 2].reshape(1, -1)})
    return folder


def cub(root: str | Path, classes: int = 200, per_class: int = 2, size: int = 64, seed: int = 0) -> Path:
    """A ``CUB_200_2011`` tree: ``images/<NNN.Name>/<file>.jpg``, ``images.txt``, ``classes.txt``,
    ``image_class_labels.txt``, ``train_test_split.txt`` (alternating train/test per class) and
    ``bounding_boxes.txt`` (x y width height around each image's bright square)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = Path(root) / "CUB_200_2011"
    images, labels, split, boxes, names = [], [], [], [], []
    i = 0
    for c in range(1, classes + 1):
        cname = f"{c:03d}.Bird_{c}"
        names.append(f"{c} {cname}")
        (folder / "images" / cname).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            i += 1
            img = rng.integers(0, 100, size=(size, size, 3), dtype=np.uint8)
            w, h = rng.integers(size // 4, size // 2, size=2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            img[y:y + h, x:x + w] = rng.integers(150, 256, size=3, dtype=np.uint8)
            rel = f"{cname}/Bird_{c}_{k:04d}.jpg"
            Image.fromarray(img).save(folder / "images" / rel, quality=90)
            images.append(f"{i} {rel}")
            labels.append(f"{i} {c}")
            split.append(f"{i} {1 if k % 2 == 0 else 0}")
            boxes.append(f"{i} {float(x)} {float(y)} {float(w)} {float(h)}")
    for name, lines in (("images.txt", images), ("classes.txt", names), ("image_class_labels.txt", labels),
                        ("train_test_split.txt", split), ("bounding_boxes.txt", boxes)):
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


class Interrupted(KeyboardInterrupt):
    """The simulated disconnect of :func:`interrupt_fit_after`."""


def interrupt_fit_after(monkeypatch, steps: int) -> dict:
    """Make ``companion.train.fit`` raise :class:`Interrupted` (a ``KeyboardInterrupt``, as a Colab
    disconnect or Ctrl-C) once, when it is about to compute step ``steps + 1``: ``steps`` optimizer steps
    have run, and what was checkpointed by then survives. Returns a dict whose ``"fired"`` says whether
    the interruption happened; later calls run normally, so a rerun resumes."""
    from companion import train

    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    original = train._check_loss
    state = {"calls": 0, "fired": False}

    def check(logs, step):
        state["calls"] += 1
        if not state["fired"] and state["calls"] > steps:
            state["fired"] = True
            raise Interrupted(f"simulated disconnect after {steps} steps")
        return original(logs, step)

    monkeypatch.setattr(train, "_check_loss", check)
    return state


def record_resumes(monkeypatch, module, name: str = "fit") -> list:
    """Wrap ``module.<name>`` (a ``train.fit``-like function) so that every call appends its result's
    ``resumed_from`` to the returned list: which step each training resumed from (None: from scratch)."""
    real = getattr(module, name)
    resumed = []

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        resumed.append(out.resumed_from)
        return out

    monkeypatch.setattr(module, name, spy)
    return resumed


def full_run_folders(monkeypatch, tmp_path) -> dict:
    """Fresh ``data``, ``checkpoints`` and ``results`` folders under ``tmp_path``, named by the
    environment variables a full run reads (data not re-hashed: it is fabricated); ``{name: Path}``."""
    folders = {k: Path(tmp_path) / k for k in ("data", "checkpoints", "results")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setenv("COMPANION_DATA", str(folders["data"]))
    monkeypatch.setenv("COMPANION_VERIFY_DATA", "0")
    monkeypatch.setenv("COMPANION_CHECKPOINTS", str(folders["checkpoints"]))
    monkeypatch.setenv("COMPANION_RESULTS", str(folders["results"]))
    return folders
