"""Data: synthetic scenes, glyphs and bundled photos for quick runs; checked datasets for full runs."""

from .datasets import DatasetCorruptError, DatasetMissingError, cub200, data_root, torchvision_dataset
from .glyphs import GLYPH_CLASSES, GLYPH_FONTS, Glyphs, make_glyphs
from .photos import PHOTOS, load_digits_images, load_photo, load_photos
from .synthetic import SHAPES, Scenes, make_scenes

__all__ = [
    "DatasetCorruptError", "DatasetMissingError", "cub200", "data_root", "torchvision_dataset",
    "PHOTOS", "load_digits_images", "load_photo", "load_photos",
    "SHAPES", "Scenes", "make_scenes", "GLYPH_CLASSES", "GLYPH_FONTS", "Glyphs", "make_glyphs",
]
