"""The glyph testbed (companion.data.make_glyphs) and the benchmark's glyph data."""

import pytest
import torch

from companion.data import GLYPH_CLASSES, make_glyphs
from companion.ssl.bench import bench_data


def test_glyphs_are_deterministic_shaped_and_balanced():
    a = make_glyphs(48, seed=3)
    b = make_glyphs(48, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    a.images.zero_()  # a copy: the cache behind make_glyphs is not changed
    assert not torch.equal(make_glyphs(48, seed=3).images, a.images)
    g = make_glyphs(48, seed=3)
    assert g.images.shape == (48, 1, 32, 32) and g.images.dtype == torch.float32
    assert g.labels.dtype == torch.int64 and g.classes == GLYPH_CLASSES and len(g) == 48
    assert float(g.images.min()) >= 0.0 and float(g.images.max()) <= 1.0
    assert torch.equal(g.labels.bincount(minlength=12), torch.full((12,), 4))
    assert not torch.equal(g.images, make_glyphs(48, seed=4).images)
    assert make_glyphs(12, size=16, classes=GLYPH_CLASSES).images.shape == (12, 1, 16, 16)


def test_glyph_images_show_the_character():
    g = make_glyphs(24, seed=0, classes=("O", "I"), fonts=("DejaVu Sans",))
    for img, label in zip(g.images[:, 0], g.labels):
        mid = (img.quantile(0.05) + img.max()) / 2  # halfway from background to ink
        # an O is hollow (no ink at its centre); an I's stem crosses the centre
        if g.classes[label] == "O":
            assert img[15:17, 15:17].max() < mid
        else:
            assert img[12:20, 12:20].max() > mid


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=5), "n must be at least the number of classes"),
    (dict(n=0), "n must be at least 1"),
    (dict(n=2.5), "n must be an integer"),
    (dict(n=24, size=4), "size must be at least 8"),
    (dict(n=24, seed=-1), "seed must be at least 0"),
    (dict(n=24, classes=("O",)), "at least 2 characters"),
    (dict(n=24, classes=("O", "O")), "distinct"),
    (dict(n=24, classes=("O", "QQ")), "single visible characters"),
    (dict(n=24, fonts=("Arial",)), "unknown font 'Arial'"),
    (dict(n=24, fonts=()), "non-empty list"),
])
def test_glyphs_reject_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make_glyphs(**kwargs)


def test_bench_data_serves_glyphs_and_keeps_digits():
    d = bench_data(8, dataset="glyphs")
    assert d.train_x.shape == (1200, 1, 8, 8) and d.test_x.shape == (600, 1, 8, 8)
    assert float(d.train_x.min()) >= 0.0 and float(d.train_x.max()) <= 1.0
    assert bench_data(32, dataset="glyphs").train_x.shape == (1200, 1, 32, 32)
    assert torch.equal(bench_data(16).train_x, bench_data(16, dataset="digits").train_x)
    with pytest.raises(ValueError, match="dataset must be one of"):
        bench_data(8, dataset="cifar")
