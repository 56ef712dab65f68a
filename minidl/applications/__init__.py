"""Ready-made networks (VGG16, U-Net) and VGG16's ImageNet input and output helpers."""

from minidl.applications.imagenet_utils import decode_predictions, preprocess_input
from minidl.applications.keras_weights import load_keras_h5_weights
from minidl.applications.unet import UNet
from minidl.applications.vgg16 import VGG16, finetune, vgg_like

__all__ = [
    "UNet",
    "VGG16",
    "decode_predictions",
    "finetune",
    "load_keras_h5_weights",
    "preprocess_input",
    "vgg_like",
]
