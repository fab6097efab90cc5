"""Full-mode datasets: one cache folder, checked downloads and errors that say what to do.

Quick mode never calls anything here. Book section: *How to read this book*, "Full runs".
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path


class DatasetMissingError(FileNotFoundError):
    """A full-mode dataset is not on disk and could not be downloaded."""


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from and how its archive is checked."""

    name: str
    url: str
    filename: str
    checksum: str  # "sha256:<hex>" or "md5:<hex>"
    size_mb: int


#: CUB's publishers give an MD5 (the one every public loader checks); torchvision datasets
#: carry their own checks.
SOURCES = {
    "cub200": Source(
        "CUB-200-2011",
        "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
        "CUB_200_2011.tgz",
        "md5:97eceeb196236b17998738112f37df78",
        1150,
    ),
}


def data_root() -> Path:
    """``COMPANION_DATA`` or ``~/.cache/companion/data``: every full-mode dataset lives here."""
    return Path(os.environ.get("COMPANION_DATA", Path.home() / ".cache" / "companion" / "data")).expanduser()


def file_checksum(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, checksum: str) -> None:
    """Raise when ``path``'s digest differs from ``checksum`` (``"algo:hex"``)."""
    algorithm, expected = checksum.split(":", 1)
    actual = file_checksum(path, algorithm)
    if actual != expected:
        raise DatasetMissingError(
            f"{path} is corrupt or incomplete: {algorithm} {actual} != expected {expected}. "
            f"Delete it and download again."
        )


def _missing(what: str, source: str, where: Path, cause: Exception | None = None) -> DatasetMissingError:
    msg = (
        f"{what} is not in {where} and could not be downloaded"
        + (f" ({type(cause).__name__}: {cause})" if cause else "")
        + f".\nFetch it from {source} and put it in {where} "
        "(or set COMPANION_DATA to the folder that holds it). Quick mode needs no download."
    )
    return DatasetMissingError(msg)


def fetch(source: Source, root: Path | None = None, allow_download: bool = True) -> Path:
    """The verified archive of ``source`` under the data root, downloading it if allowed."""
    root = root or data_root()
    path = root / source.filename
    if not path.exists():
        if not allow_download:
            raise _missing(source.name, source.url, root)
        from torchvision.datasets.utils import download_url

        try:
            root.mkdir(parents=True, exist_ok=True)
            download_url(source.url, str(root), source.filename)
        except Exception as e:  # no network, HTTP error, disk full: one clear message
            path.unlink(missing_ok=True)
            raise _missing(source.name, source.url, root, e) from e
    verify(path, source.checksum)
    return path


def torchvision_dataset(name: str, split: str = "train", download: bool = True, transform=None, root: Path | None = None):
    """CIFAR-10/100, STL-10 or Flowers-102 via torchvision, with the clear error when missing.

    ``split``: ``train``/``test`` for CIFAR; ``train``/``test``/``unlabeled``/``train+unlabeled`` for
    STL-10; ``train``/``val``/``test`` for Flowers-102.
    """
    from torchvision import datasets

    root = root or data_root()
    makers = {
        "cifar10": (lambda d: datasets.CIFAR10(root, train=split == "train", download=d, transform=transform),
                    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
        "cifar100": (lambda d: datasets.CIFAR100(root, train=split == "train", download=d, transform=transform),
                     "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
        "stl10": (lambda d: datasets.STL10(root, split=split, download=d, transform=transform),
                  "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"),
        "flowers102": (lambda d: datasets.Flowers102(root, split=split, download=d, transform=transform),
                       "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"),
    }
    if name not in makers:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(makers)} or use cub200()")
    make, url = makers[name]
    try:
        return make(False)
    except RuntimeError as first:
        if not download:
            raise _missing(name, url, root, first) from first
        try:
            root.mkdir(parents=True, exist_ok=True)
            return make(True)
        except Exception as e:
            raise _missing(name, url, root, e) from e


@dataclass
class CUBRecord:
    path: Path
    label: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    is_train: bool


def cub200(root: Path | None = None, download: bool = True) -> list[CUBRecord]:
    """CUB-200-2011's 11,788 images with class labels, boxes (xyxy) and the official split."""
    root = root or data_root()
    folder = root / "CUB_200_2011"
    if not (folder / "images.txt").exists():
        archive = fetch(SOURCES["cub200"], root, allow_download=download)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    read = lambda name: [line.split() for line in (folder / name).read_text().splitlines() if line.strip()]  # noqa: E731
    images = {int(i): p for i, p in read("images.txt")}
    labels = {int(i): int(c) - 1 for i, c in read("image_class_labels.txt")}
    split = {int(i): s == "1" for i, s in read("train_test_split.txt")}
    boxes = {}
    for i, x, y, w, h in read("bounding_boxes.txt"):
        x, y, w, h = map(float, (x, y, w, h))
        boxes[int(i)] = (x, y, x + w, y + h)
    return [CUBRecord(folder / "images" / images[i], labels[i], boxes[i], split[i]) for i in sorted(images)]
