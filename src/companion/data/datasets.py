"""Full-mode datasets: one cache folder, checked downloads and errors that say what to do.

Quick mode never calls anything here. Book section: *How to read this book*, "Full runs".
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
import tarfile
from dataclasses import dataclass
from pathlib import Path


class DatasetMissingError(FileNotFoundError):
    """A full-mode dataset is not on disk and could not be downloaded."""


class DatasetCorruptError(OSError):
    """A full-mode dataset is on disk but damaged: a bad checksum, an unreadable file, or an
    extraction cut short. Not a :class:`DatasetMissingError`: downloading again will not happen by
    itself; the message says what to delete."""


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


def verify_data() -> bool:
    """Whether local dataset copies must match their published checksums: yes, unless
    ``COMPANION_VERIFY_DATA=0`` asks otherwise (a local copy of another release, or fabricated files of the
    real format in the tests). Any other value than ``0`` or ``1`` is an error, never a guess."""
    value = os.environ.get("COMPANION_VERIFY_DATA", "1").strip()
    if value not in ("0", "1"):
        raise ValueError(f"COMPANION_VERIFY_DATA must be 0 or 1, got {value!r}")
    return value == "1"


def _unverified(what: str, where: Path) -> None:
    import warnings

    warnings.warn(f"{what} in {where} is used WITHOUT checking its published checksum (COMPANION_VERIFY_DATA=0); "
                  "numbers from it are not comparable with the paper's unless the files are the originals.",
                  UnverifiedDataWarning, stacklevel=3)


class UnverifiedDataWarning(UserWarning):
    """A dataset was read with its checksum check switched off (``COMPANION_VERIFY_DATA=0``)."""


@contextmanager
def _exists_is_enough():
    """torchvision's dataset classes with their MD5 checks reduced to "the file is there"."""
    from torchvision.datasets import cifar, flowers102, stl10

    modules = (cifar, stl10, flowers102)
    saved = [m.check_integrity for m in modules]
    for m in modules:
        m.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)
    try:
        yield
    finally:
        for m, f in zip(modules, saved):
            m.check_integrity = f


def file_checksum(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, checksum: str) -> None:
    """Raise :class:`DatasetCorruptError` when ``path``'s digest differs from ``checksum`` (``"algo:hex"``)
    or the file cannot be read."""
    algorithm, expected = checksum.split(":", 1)
    try:
        actual = file_checksum(path, algorithm)
    except OSError as e:
        raise DatasetCorruptError(
            f"{path} could not be read ({type(e).__name__}: {e}); expected {algorithm} {expected}. "
            "Fix its permissions, or delete it and download again."
        ) from e
    if actual != expected:
        raise DatasetCorruptError(
            f"{path} is corrupt or incomplete: {algorithm} {actual} != expected {expected}. "
            f"Delete it and download again (for a local copy that is not the published file, "
            f"COMPANION_VERIFY_DATA=0 uses it unchecked)."
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
    if verify_data():
        verify(path, source.checksum)
    else:
        _unverified(source.name, path)
    return path


def torchvision_dataset(name: str, split: str = "train", download: bool = True, transform=None, root: Path | None = None):
    """CIFAR-10/100, STL-10 or Flowers-102 via torchvision, with the clear error when missing.

    ``split``: ``train``/``test`` for CIFAR; ``train``/``test``/``unlabeled``/``train+unlabeled`` for
    STL-10; ``train``/``val``/``test`` for Flowers-102; any other split raises ``ValueError``.
    An archive already on disk is checked and extracted without the network (also with
    ``download=False``); a damaged archive or extracted folder raises :class:`DatasetCorruptError`.
    """
    from torchvision import datasets

    root = Path(root or data_root())
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
    if split not in SPLITS[name]:
        raise ValueError(f"split must be one of {SPLITS[name]} for {name}, got {split!r}")
    make, url = makers[name]
    if not verify_data():
        _unverified(name, root)
        with _exists_is_enough():
            try:
                return make(False)
            except RuntimeError as e:
                raise _missing(name, url, root, e) from e
    try:
        return make(False)
    except RuntimeError as first:
        archived = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100, "stl10": datasets.STL10}.get(name)
        if archived is not None and _archive_on_disk(archived, root, url):
            from torchvision.datasets.utils import extract_archive

            extract_archive(str(root / archived.filename), str(root))  # verified and local: no network
            return make(False)
        if name == "flowers102":
            _flowers_checksums(root, url)  # files there but damaged: say so, never "not in"
        if not download:
            raise _missing(name, url, root, first) from first
        try:
            root.mkdir(parents=True, exist_ok=True)
            return make(True)
        except Exception as e:
            raise _missing(name, url, root, e) from e


SPLITS = {
    "cifar10": ("train", "test"), "cifar100": ("train", "test"),
    "stl10": ("train", "test", "unlabeled", "train+unlabeled"), "flowers102": ("train", "val", "test"),
}


def _archive_on_disk(cls, root: Path, url: str) -> bool:
    """For a torchvision dataset shipped as one archive: ``True`` when its archive is on disk and
    verified, ``False`` when neither the archive nor its folder is; :class:`DatasetCorruptError`
    when the archive fails its MD5 or the extracted folder lacks files or holds damaged ones."""
    archive = root / cls.filename
    if archive.exists():
        verify(archive, f"md5:{cls.tgz_md5}")
        return True
    folder = root / cls.base_folder
    if not folder.exists():
        return False
    from torchvision.datasets.utils import check_integrity

    expected = list(cls.train_list) + list(cls.test_list)
    if getattr(cls, "meta", None):
        expected.append([cls.meta["filename"], cls.meta["md5"]])
    missing = [f for f, _ in expected if not (folder / f).exists()]
    damaged = [f for f, md5 in expected if f not in missing and not check_integrity(str(folder / f), md5)]
    if not missing and not damaged:
        return False  # complete: the first error was something else
    raise DatasetCorruptError(
        f"{folder} is incomplete or damaged"
        + (f"; missing: {', '.join(missing)}" if missing else "")
        + (f"; failing their MD5: {', '.join(damaged)}" if damaged else "")
        + f". Delete {folder} and run again to download {cls.filename} from {url} "
        f"(or put that archive in {root}; for a local copy that is not the published one, "
        f"COMPANION_VERIFY_DATA=0 uses it unchecked)."
    )


def _flowers_checksums(root: Path, url: str) -> None:
    """Raise :class:`DatasetCorruptError` when Flowers-102's label files are in ``root/flowers-102`` but
    fail torchvision's MD5 (torchvision then says only "not found or corrupted"); return otherwise."""
    from torchvision.datasets import Flowers102
    from torchvision.datasets.utils import check_integrity

    folder = root / "flowers-102"
    files = [Flowers102._file_dict[key] for key in ("label", "setid")]
    damaged = [f for f, md5 in files if (folder / f).exists() and not check_integrity(str(folder / f), md5)]
    if damaged:
        raise DatasetCorruptError(
            f"Flowers-102 is in {folder}, but {' and '.join(damaged)} failed "
            f"{'their MD5 checksums' if len(damaged) > 1 else 'its MD5 checksum'} (torchvision "
            f"checks {', '.join(f'{f}: {md5}' for f, md5 in files)}). Delete {' and '.join(damaged)} and run "
            f"again to download {'them' if len(damaged) > 1 else 'it'} from {url}, or copy the original "
            f"file{'s' if len(damaged) > 1 else ''} from there into {folder}."
        )


@dataclass
class CUBRecord:
    path: Path
    label: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    is_train: bool


def cub200(root: Path | None = None, download: bool = True) -> list[CUBRecord]:
    """CUB-200-2011's 11,788 images with class labels, boxes (xyxy) and the official split.

    A folder with files missing (an extraction cut short) raises :class:`DatasetCorruptError`
    naming them and how to extract again.
    """
    root = Path(root or data_root())
    folder = root / "CUB_200_2011"
    if not (folder / "images.txt").exists():
        archive = fetch(SOURCES["cub200"], root, allow_download=download)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    source = SOURCES["cub200"]

    def incomplete(what: str) -> DatasetCorruptError:
        archive = root / source.filename
        return DatasetCorruptError(
            f"{folder} is incomplete (an extraction cut short?): {what}. Delete {folder} and run again to "
            f"extract {archive} anew (or run: tar -xzf {archive} -C {root}); without the archive, "
            f"fetch it from {source.url}."
        )

    def read(name: str, fields: int) -> list[list[str]]:
        rows = [line.split() for line in (folder / name).read_text().splitlines() if line.strip()]
        bad = next((n for n, r in enumerate(rows, 1) if len(r) != fields), None)
        if bad is not None:
            raise incomplete(f"line {bad} of {name} is cut short or malformed")
        return rows

    missing = [n for n in CUB_FILES if not (folder / n).exists()]
    if missing:
        raise incomplete(f"missing {', '.join(missing)}")
    images = {int(i): p for i, p in read("images.txt", 2)}
    labels = {int(i): int(c) - 1 for i, c in read("image_class_labels.txt", 2)}
    split = {int(i): s == "1" for i, s in read("train_test_split.txt", 2)}
    boxes = {}
    for i, x, y, w, h in read("bounding_boxes.txt", 5):
        x, y, w, h = map(float, (x, y, w, h))
        boxes[int(i)] = (x, y, x + w, y + h)
    for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", split), ("bounding_boxes.txt", boxes)):
        if set(table) != set(images):
            raise incomplete(f"{name} lists {len(table)} images, images.txt {len(images)}")
    lost = [images[i] for i in sorted(images) if not (folder / "images" / images[i]).exists()]
    if lost:
        raise incomplete(f"{len(lost)} of {len(images)} images are missing from {folder / 'images'}, e.g. {', '.join(lost[:3])}")
    return [CUBRecord(folder / "images" / images[i], labels[i], boxes[i], split[i]) for i in sorted(images)]


CUB_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt")
