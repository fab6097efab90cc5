import numpy as np
import pytest
import torch

from companion.data import DatasetCorruptError, DatasetMissingError, cub200, load_digits_images, load_photo, make_scenes, torchvision_dataset
from companion.data import datasets


def test_scenes_are_deterministic_by_seed():
    a, b = make_scenes(12, size=48, seed=5), make_scenes(12, size=48, seed=5)
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes) and torch.equal(a.labels, b.labels)
    c = make_scenes(12, size=48, seed=6)
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("size", [32, 64, 97])
def test_boxes_lie_inside_and_cover_the_object(size):
    s = make_scenes(20, size=size, classes=8, seed=1)
    assert s.images.shape == (20, 3, size, size) and s.images.dtype == torch.float32
    assert 0 <= s.images.min() and s.images.max() <= 1
    for mask, box in zip(s.masks, s.boxes):
        x1, y1, x2, y2 = box.int().tolist()
        assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
        assert mask.any()
        inside = torch.zeros_like(mask)
        inside[y1:y2, x1:x2] = True
        assert not (mask & ~inside).any()  # every object pixel is in the box
        # and the box is tight: each edge row/column touches the object
        assert mask[y1, x1:x2].any() and mask[y2 - 1, x1:x2].any() and mask[y1:y2, x1].any() and mask[y1:y2, x2 - 1].any()


def test_mixed_object_sizes_and_class_background_control():
    s = make_scenes(200, size=64, seed=0, scale=(0.15, 0.6))
    area = s.object_area()
    assert area.min() < 0.03 and area.max() > 0.15
    tied = make_scenes(100, size=32, seed=0, class_background=1.0)
    assert torch.equal(tied.backgrounds, tied.labels % 4)


@pytest.mark.parametrize("kwargs, msg", [({"n": 0}, "positive"), ({"n": 2, "size": 8}, "16 pixels"),
                                          ({"n": 2, "classes": ("blob",)}, "unknown shape"),
                                          ({"n": 2, "scale": (0.5, 0.2)}, "scale")])
def test_bad_scene_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        make_scenes(**kwargs)


def test_bundled_photos_and_digits_load_offline():
    cat = load_photo("chelsea", size=64)
    assert cat.shape == (3, 64, 64) and 0 <= cat.min() and cat.max() <= 1
    cam = load_photo("camera", size=32)  # grayscale becomes three equal channels
    assert torch.equal(cam[0], cam[1])
    x, y = load_digits_images()
    assert x.shape == (1797, 1, 8, 8) and y.unique().numel() == 10
    with pytest.raises(ValueError, match="unknown photo"):
        load_photo("lily")


def _no_network(*args, **kwargs):
    raise OSError("network is unreachable")


def test_missing_dataset_error_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.utils.download_url", _no_network)
    monkeypatch.setattr("torchvision.datasets.utils.urllib.request.urlopen", _no_network, raising=False)
    with pytest.raises(DatasetMissingError) as e:
        cub200(root=tmp_path)
    msg = str(e.value)
    assert "CUB-200-2011" in msg and str(tmp_path) in msg and "data.caltech.edu" in msg and "COMPANION_DATA" in msg
    with pytest.raises(DatasetMissingError, match="cifar10"):
        torchvision_dataset("cifar10", root=tmp_path, download=False)


def test_corrupt_archive_fails_the_checksum(tmp_path):
    (tmp_path / "CUB_200_2011.tgz").write_bytes(b"not the archive")
    with pytest.raises(DatasetCorruptError, match="CUB_200_2011.tgz is corrupt or incomplete: md5 .* != expected "
                                                  "97eceeb196236b17998738112f37df78. Delete it and download again"):
        cub200(root=tmp_path, download=False)


def test_quick_mode_never_touches_the_network(monkeypatch):
    import socket

    def refuse(*a, **k):
        raise AssertionError("quick data tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    make_scenes(4, size=32)
    load_photo("astronaut", size=32)
    load_digits_images(size=16)


def test_data_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_DATA", str(tmp_path))
    assert datasets.data_root() == tmp_path


# --- damaged or mistyped full-mode data: tiny fake files, no network ---

def test_a_mistyped_split_raises_instead_of_loading_the_test_set(tmp_path):
    for name, bad in (("cifar10", "tset"), ("cifar100", "training"), ("stl10", "val"), ("flowers102", "valid")):
        with pytest.raises(ValueError, match=f"split must be one of .* for {name}, got '{bad}'"):
            torchvision_dataset(name, split=bad, root=tmp_path, download=False)


def test_a_corrupt_cifar_archive_is_reported_as_corrupt_not_missing(tmp_path, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.utils.download_url", _no_network)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"half an archive")
    for download in (False, True):  # corrupt is never silently re-downloaded, nor called missing
        with pytest.raises(DatasetCorruptError) as e:
            torchvision_dataset("cifar10", root=tmp_path, download=download)
        msg = str(e.value)
        assert f"{tmp_path / 'cifar-10-python.tar.gz'} is corrupt or incomplete" in msg
        assert "expected c58f30108f718f92721af3b95e74349a" in msg and "Delete it and download again" in msg
        assert not isinstance(e.value, DatasetMissingError)


def test_an_unreadable_archive_is_reported(tmp_path, monkeypatch):
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"x")

    def unreadable(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(datasets, "file_checksum", unreadable)
    with pytest.raises(DatasetCorruptError, match=r"cifar-100-python.tar.gz could not be read \(PermissionError.*"
                                                  r"expected md5 eb9058c3a382ffc7106e4002c42a8d85"):
        torchvision_dataset("cifar100", root=tmp_path, download=False)


def test_a_damaged_extracted_cifar_folder_lists_its_bad_files(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"not a batch")
    with pytest.raises(DatasetCorruptError) as e:
        torchvision_dataset("cifar10", split="test", root=tmp_path, download=False)
    msg = str(e.value)
    assert f"{folder} is incomplete or damaged; missing: data_batch_2, data_batch_3" in msg
    assert "failing their MD5: data_batch_1." in msg and f"Delete {folder} and run again" in msg


def _fake_cifar_archive(tmp_path, monkeypatch):
    """A two-image CIFAR-10 archive, with torchvision's checksums pointed at it."""
    import io
    import pickle
    import tarfile
    from torchvision.datasets import CIFAR10

    def pickled(obj):
        return pickle.dumps(obj)

    batch = {"data": np.zeros((2, 3072), dtype=np.uint8), "labels": [3, 5]}
    members = {"data_batch_1": pickled(batch), "test_batch": pickled(batch),
               "batches.meta": pickled({"label_names": [str(i) for i in range(10)]})}
    md5 = lambda b: __import__("hashlib").md5(b).hexdigest()  # noqa: E731
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(CIFAR10, "train_list", [["data_batch_1", md5(members["data_batch_1"])]])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(members["test_batch"])]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5(members["batches.meta"])})
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive.read_bytes()))
    return archive


def test_a_verified_cifar_archive_is_extracted_offline(tmp_path, monkeypatch):
    monkeypatch.setattr("torchvision.datasets.utils.download_url", _no_network)
    monkeypatch.setattr("torchvision.datasets.utils.urllib.request.urlopen", _no_network, raising=False)
    _fake_cifar_archive(tmp_path, monkeypatch)
    ds = torchvision_dataset("cifar10", split="test", root=tmp_path, download=False)
    assert len(ds) == 2 and ds[1][1] == 5


def _fake_cub(root, n=3, drop=()):
    folder = root / "CUB_200_2011"
    (folder / "images" / "001.Bird").mkdir(parents=True)
    files = {
        "images.txt": [f"{i} 001.Bird/{i}.jpg" for i in range(1, n + 1)],
        "image_class_labels.txt": [f"{i} 1" for i in range(1, n + 1)],
        "train_test_split.txt": [f"{i} {i % 2}" for i in range(1, n + 1)],
        "bounding_boxes.txt": [f"{i} 1.0 2.0 3.0 4.0" for i in range(1, n + 1)],
    }
    for name, lines in files.items():
        if name not in drop:
            (folder / name).write_text("\n".join(lines) + "\n")
    for i in range(1, n + 1):
        if f"{i}.jpg" not in drop:
            (folder / "images" / "001.Bird" / f"{i}.jpg").write_bytes(b"jpeg")
    return folder


def test_a_complete_fake_cub_folder_reads(tmp_path):
    folder = _fake_cub(tmp_path)
    records = cub200(root=tmp_path, download=False)
    assert [r.path for r in records] == [folder / "images" / "001.Bird" / f"{i}.jpg" for i in (1, 2, 3)]
    assert records[0].box == (1.0, 2.0, 4.0, 6.0) and records[0].label == 0 and records[0].is_train


def test_a_half_extracted_cub_folder_names_what_is_missing(tmp_path):
    folder = _fake_cub(tmp_path, drop=("bounding_boxes.txt", "train_test_split.txt"))
    with pytest.raises(DatasetCorruptError) as e:
        cub200(root=tmp_path, download=False)
    msg = str(e.value)
    assert msg.startswith(f"{folder} is incomplete (an extraction cut short?): missing train_test_split.txt, bounding_boxes.txt.")
    assert f"Delete {folder} and run again" in msg and f"tar -xzf {tmp_path / 'CUB_200_2011.tgz'} -C {tmp_path}" in msg


def test_cub_with_images_or_rows_missing_is_reported(tmp_path):
    folder = _fake_cub(tmp_path / "a", n=4, drop=("2.jpg", "4.jpg"))
    with pytest.raises(DatasetCorruptError, match=r"2 of 4 images are missing from .*images, e.g. 001.Bird/2.jpg, 001.Bird/4.jpg"):
        cub200(root=folder.parent, download=False)
    folder = _fake_cub(tmp_path / "b", n=4)
    (folder / "bounding_boxes.txt").write_text("1 1.0 2.0 3.0 4.0\n2 1.0 2.0\n")  # cut short mid-write
    with pytest.raises(DatasetCorruptError, match="line 2 of bounding_boxes.txt is cut short or malformed"):
        cub200(root=folder.parent, download=False)
    (folder / "bounding_boxes.txt").write_text("1 1.0 2.0 3.0 4.0\n")
    with pytest.raises(DatasetCorruptError, match="bounding_boxes.txt lists 1 images, images.txt 4"):
        cub200(root=folder.parent, download=False)
