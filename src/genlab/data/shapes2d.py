"""``data=shapes2d``: a procedural, deterministic equivalent of dSprites with known factors.

dSprites (Matthey et al. 2017) is the 737,280 binary 64x64 images of one white sprite on black
whose five generative factors take every combination of

==============  ======  ===========================================
factor          values  here
==============  ======  ===========================================
``shape``       3       square, ellipse, heart
``scale``       6       linspace(0.5, 1, 6)
``orientation`` 40      linspace(0, 2 pi, 40) (0 and 2 pi both, as dSprites)
``pos_x``       32      linspace(0, 1, 32)
``pos_y``       32      linspace(0, 1, 32)
==============  ======  ===========================================

shapes2d has the same factor grid and the same index order (shape slowest, ``pos_y``
fastest: ``index = (((shape * 6 + scale) * 40 + orientation) * 32 + pos_x) * 32 + pos_y``, the
order of dSprites' ``latents_classes`` without its constant colour), but its images are drawn
here, from the factor index, when a batch is fetched: nothing is downloaded or stored. They
are not dSprites' pixels: the sprites are genlab's own (sizes, the heart's outline and the
position margins differ), so numbers measured on shapes2d are comparable with each other and
only roughly with published dSprites numbers (a reference, not the same protocol). As in
dSprites, some factor values give identical images: orientation 0 and 2 pi, and the square
(4-fold) and ellipse (2-fold) symmetries.

Rendering is exact geometry at each pixel centre in float64 (a pixel is 255 when its centre
is inside the sprite, else 0), with the 40 rotations' cos/sin from Python's ``math``: the
same factors give the same bytes on every machine. :data:`RENDERER_VERSION` changes whenever
a pixel could change, and is part of every :meth:`Shapes2DDataModule.fingerprint`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from genlab.checks.errors import ConfigError
from genlab.data.base import _SUBSET_SEED, ImageDataModule, _check_split
from genlab.data.hashing import short_hash, tensor_hash
from genlab.data.tensor_dataset import ImageBatch

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
NUM_IMAGES = math.prod(FACTOR_SIZES)  # 737,280
IMAGE_SIZE = 64
RENDERER_VERSION = 1  # bump whenever a rendered pixel can change
_STRIDES = tuple(math.prod(FACTOR_SIZES[i + 1 :]) for i in range(len(FACTOR_SIZES)))
_RADIUS = 10.0  # pixels of sprite "radius" at scale 1 (extent about 20 px)
_MARGIN = 11.0  # pixels between the canvas edge and the extreme sprite centres
_RENDER_CHUNK = 1024  # images rendered at once (bounded memory)
_WINDOW = 26  # side of the square of pixels drawn around each sprite centre


def factors_from_index(index: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Factor classes (N, 5) int64 (:data:`FACTOR_NAMES` order) of flat indices (N,)."""
    index = torch.as_tensor(index, dtype=torch.int64).reshape(-1)
    if index.numel() and (index.min() < 0 or index.max() >= NUM_IMAGES):
        raise IndexError(f"shapes2d index outside [0, {NUM_IMAGES})")
    return torch.stack(
        [(index // stride) % size for stride, size in zip(_STRIDES, FACTOR_SIZES)], dim=1
    )


def index_from_factors(factors: torch.Tensor | Sequence[Sequence[int]]) -> torch.Tensor:
    """Flat indices (N,) int64 of factor classes (N, 5); each class in [0, size)."""
    factors = torch.as_tensor(factors, dtype=torch.int64).reshape(-1, len(FACTOR_SIZES))
    sizes = torch.tensor(FACTOR_SIZES)
    if factors.numel() and ((factors < 0).any() or (factors >= sizes).any()):
        raise IndexError(f"shapes2d factor classes outside [0, size) for sizes {FACTOR_SIZES}")
    return (factors * torch.tensor(_STRIDES)).sum(1)


def factor_values(factors: torch.Tensor) -> dict[str, torch.Tensor]:
    """The values (float64) of factor classes (N, 5): scale in [0.5, 1], orientation in
    [0, 2 pi] (radians), pos_x and pos_y in [0, 1]; shape stays a class."""
    f = torch.as_tensor(factors, dtype=torch.int64).reshape(-1, len(FACTOR_SIZES))
    return {
        "shape": f[:, 0],
        "scale": 0.5 + 0.5 * f[:, 1].double() / (FACTOR_SIZES[1] - 1),
        "orientation": 2 * math.pi * f[:, 2].double() / (FACTOR_SIZES[2] - 1),
        "pos_x": f[:, 3].double() / (FACTOR_SIZES[3] - 1),
        "pos_y": f[:, 4].double() / (FACTOR_SIZES[4] - 1),
    }


# cos/sin of the 40 orientations from libm (one table: no vectorised trig in the renderer)
_COS_SIN = torch.tensor(
    [
        (math.cos(a), math.sin(a))
        for a in (2 * math.pi * i / (FACTOR_SIZES[2] - 1) for i in range(FACTOR_SIZES[2]))
    ],
    dtype=torch.float64,
)


def _inside(shape: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether the sprite-frame points (u, v) (N, H, W), in units of the scaled radius, are
    inside the sprite of each image's ``shape`` (N,)."""
    shape = shape[:, None, None]
    square = (u.abs() <= 0.75) & (v.abs() <= 0.75)
    ellipse = u * u + (2 * v) * (2 * v) <= 1.0
    a, b = 1.2 * u, 1.2 * v + 0.12  # the heart curve (a^2 + b^2 - 1)^3 <= a^2 b^3, centred
    r = a * a + b * b - 1.0
    heart = r * r * r - a * a * (b * b * b) <= 0.0
    return torch.where(shape == 0, square, torch.where(shape == 1, ellipse, heart))


def render(factors: torch.Tensor | Sequence[Sequence[int]]) -> torch.Tensor:
    """Images uint8 (N, 1, 64, 64) in {0, 255} of factor classes (N, 5): the sprite of
    ``shape`` scaled by ``scale``, rotated counter-clockwise by ``orientation`` about its
    centre, which sits at ``pos_x`` (left to right) and ``pos_y`` (top to bottom) in
    [11, 53] px."""
    factors = torch.as_tensor(factors, dtype=torch.int64).reshape(-1, len(FACTOR_SIZES))
    index_from_factors(factors)  # range check
    out = torch.zeros(factors.shape[0], 1, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    span = IMAGE_SIZE - 2 * _MARGIN
    offsets = torch.arange(_WINDOW)
    for start in range(0, factors.shape[0], _RENDER_CHUNK):
        f = factors[start : start + _RENDER_CHUNK]
        values = factor_values(f)
        radius = (_RADIUS * values["scale"])[:, None, None]
        cx = _MARGIN + span * values["pos_x"]
        cy = _MARGIN + span * values["pos_y"]
        # only a window around the sprite is drawn (it holds the whole sprite: radius <= 11 px)
        x0 = (cx.floor().long() - _WINDOW // 2).clamp(0, IMAGE_SIZE - _WINDOW)
        y0 = (cy.floor().long() - _WINDOW // 2).clamp(0, IMAGE_SIZE - _WINDOW)
        cols, rows = x0[:, None] + offsets, y0[:, None] + offsets  # (n, window)
        dx = (cols[:, None, :] + 0.5 - cx[:, None, None]) / radius  # (n, 1, window)
        dy = (cy[:, None, None] - rows[:, :, None] - 0.5) / radius  # (n, window, 1): up > 0
        cos, sin = (t[:, None, None] for t in _COS_SIN[f[:, 2]].unbind(1))
        u = cos * dx + sin * dy  # the pixel in the sprite's frame (rotation by -orientation)
        v = cos * dy - sin * dx
        drawn = _inside(f[:, 0], u, v).to(torch.uint8) * 255
        n = torch.arange(start, start + len(f))[:, None, None]
        out[n, 0, rows[:, :, None], cols[:, None, :]] = drawn
    return out


class Shapes2DDataset(Dataset):
    """The shapes2d images of flat ``indices`` (N,), rendered when fetched.

    ``dataset[i]`` is ``(uint8 image (1, 64, 64), shape class)``; ``__getitems__`` renders a
    batch at once (an :class:`~genlab.data.tensor_dataset.ImageBatch`).

    Attributes:
        indices: int64 (N,) flat indices into the 737,280-image factor grid.
        factors: int64 (N, 5) factor classes (:data:`FACTOR_NAMES`) of each image.
        labels: int64 (N,) the shape class (``factors[:, 0]``).
    """

    def __init__(self, indices: torch.Tensor):
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.factors = factors_from_index(self.indices)
        self.labels = self.factors[:, 0].clone()

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return render(self.factors[index][None])[0], int(self.labels[index])

    def __getitems__(self, indices: Sequence[int]) -> ImageBatch:
        index = torch.as_tensor(indices, dtype=torch.long)
        return ImageBatch(render(self.factors[index]), self.labels[index])


def split_indices(seed: int, num_train: int | None, num_test: int) -> dict[str, torch.Tensor]:
    """Disjoint flat indices of the test and train splits: a permutation of all 737,280
    images drawn from ``seed``; test = its first ``num_test``, train = the next ``num_train``
    (None: all the rest); each sorted (the factor grid's order)."""
    perm = torch.randperm(NUM_IMAGES, generator=torch.Generator().manual_seed(int(seed)))
    end = NUM_IMAGES if num_train is None else num_test + num_train
    return {"test": perm[:num_test].sort().values, "train": perm[num_test:end].sort().values}


class Shapes2DDataModule(ImageDataModule):
    """shapes2d (module docstring): 64x64 binary sprites with five known factors, rendered on
    the fly; a seeded random split of the 737,280-image grid into ``num_test`` held-out and
    ``num_train`` training images (val = test). Labels are the shape class (3 classes).

    Args (beyond :class:`~genlab.data.base.ImageDataModule`'s):
        num_train: training images (a seeded subset, for CPU runs); None = every image not
            held out.
        num_test: held-out images (val/test), disjoint from the training ones.
        seed: seed of the split permutation (and of nothing else: rendering has no noise).

    ``binarize`` is accepted for uniform configs: the images are already 0/255, so Bernoulli
    binarisation leaves them unchanged; ``binarize: true`` (the shipped default) tells the
    models that a Bernoulli likelihood is a probability of this data (``model.data_binarized``).
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    renderer_version = RENDERER_VERSION

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int | None = 64,
        channels: int | None = 1,
        binarize: bool = False,
        num_classes: int | None = None,
        pin_memory: bool = False,
        seed: int = 0,
        num_train: int | None = None,
        num_test: int = 5000,
    ):
        super().__init__(
            data_dir, batch_size, num_workers, image_size, channels, binarize, pin_memory, seed
        )
        self.name = "shapes2d"
        self._check_num_classes(num_classes, len(SHAPES))
        self._check_fixed_shape(image_size, channels, IMAGE_SIZE, 1)
        if (
            isinstance(num_test, bool)
            or not isinstance(num_test, int)
            or not (1 <= num_test < NUM_IMAGES)
        ):
            raise ConfigError("data.num_test", num_test, f"an integer in [1, {NUM_IMAGES - 1}]")
        if num_train is not None and (
            isinstance(num_train, bool)
            or not isinstance(num_train, int)
            or not 1 <= num_train <= NUM_IMAGES - num_test
        ):
            raise ConfigError(
                "data.num_train",
                num_train,
                f"null (all {NUM_IMAGES} - data.num_test) or an integer in "
                f"[1, {NUM_IMAGES - num_test}]",
            )
        self.num_train, self.num_test = num_train, num_test

    def _load(self) -> dict[str, Dataset]:
        return {k: Shapes2DDataset(v) for k, v in split_indices(self.seed, self.num_train,
                                                                self.num_test).items()}  # fmt: skip

    def _binarized_eval(self, ds: Dataset) -> Dataset:
        """The images are already 0/255: Bernoulli binarisation is the identity."""
        return ds

    def _subset(self, split: str, max_images: int | None) -> torch.Tensor:
        """Factor classes of the images ``images(split, max_images)`` picks."""
        _check_split(split)
        ds = self.dataset("train" if split == "train" else "test")
        n = len(ds)
        if max_images is None or max_images >= n:
            return ds.factors
        gen = torch.Generator().manual_seed(_SUBSET_SEED)  # as ImageDataModule.images
        index = torch.randperm(n, generator=gen)[: max(0, max_images)].sort().values
        return ds.factors[index]

    def images(self, split: str = "train", max_images: int | None = None) -> torch.Tensor:
        """uint8 images (N, 1, 64, 64) of ``split`` (the same subset as the base class picks
        for ``max_images``), rendered in batches; row i has the factors ``factors(...)[i]``."""
        return render(self._subset(split, max_images))

    def factors(self, split: str = "train", max_images: int | None = None) -> torch.Tensor:
        """Factor classes (N, 5) int64 of the images ``images(split, max_images)`` returns,
        row for row (:attr:`factor_names`, sizes :attr:`factor_sizes`)."""
        return self._subset(split, max_images).clone()

    @staticmethod
    def render(factors: torch.Tensor) -> torch.Tensor:
        """Images uint8 (N, 1, 64, 64) of any factor classes (N, 5) (:func:`render`)."""
        return render(factors)

    def protocol(self) -> dict[str, object]:
        """What this data is, for results pages: name, renderer version, split seed and sizes,
        factor names and sizes."""
        return {
            "data": self.name,
            "renderer_version": RENDERER_VERSION,
            "seed": self.seed,
            "num_train": len(self.dataset("train")),
            "num_test": self.num_test,
            "factor_names": list(FACTOR_NAMES),
            "factor_sizes": list(FACTOR_SIZES),
        }

    def fingerprint(self, split: str) -> str:
        """Hash of the renderer version, the split seed and the split's indices (the content
        is a function of these alone)."""
        _check_split(split)
        ds = self.dataset("train" if split == "train" else "test")
        return short_hash(self.name, RENDERER_VERSION, self.seed, tensor_hash(ds.indices))
