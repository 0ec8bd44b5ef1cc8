"""genlab datamodules: uint8 images in memory/on disk, normalised per batch on the device.

Every datamodule yields ``{"image": float32 (B, C, H, W) in [0, 1], "label": int64 (B,)}``
to the model (see :mod:`genlab.data.base` for the full contract).
"""

from genlab.data.base import ImageDataModule
from genlab.data.bundled import FashionMNISTMiniDataModule, bundled_path
from genlab.data.folder import IMAGE_EXTENSIONS, FolderDataModule, ImageFolderDataset
from genlab.data.registry import (
    DATAMODULE_CLASSES,
    datamodule_from_checkpoint,
    datamodule_from_config,
)
from genlab.data.tensor_dataset import TensorImageDataset
from genlab.data.torchvision_data import (
    CIFAR10DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)

__all__ = [
    "DATAMODULE_CLASSES",
    "IMAGE_EXTENSIONS",
    "CIFAR10DataModule",
    "FashionMNISTDataModule",
    "FashionMNISTMiniDataModule",
    "FolderDataModule",
    "ImageDataModule",
    "ImageFolderDataset",
    "MNISTDataModule",
    "TensorImageDataset",
    "bundled_path",
    "datamodule_from_checkpoint",
    "datamodule_from_config",
]
