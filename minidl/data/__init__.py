"""Data sets and input pipelines: the Sonar loader and image iterators."""

from minidl.data.augmentation import ImageDataGenerator
from minidl.data.image import DirectoryIterator, flow_from_directory, img_to_array, load_img
from minidl.data.sonar import load_sonar

__all__ = [
    "DirectoryIterator",
    "ImageDataGenerator",
    "flow_from_directory",
    "img_to_array",
    "load_img",
    "load_sonar",
]
