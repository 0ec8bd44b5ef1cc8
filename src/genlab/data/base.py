"""Shared machinery of genlab's image datamodules.

Design (the contract every model in genlab relies on):

* Datasets yield ``(uint8 image (C, H, W), int64 label)``; unlabelled images have label -1.
  Fixed-shape datasets hold all images in memory once as a uint8 tensor (N, C, H, W).
* Normalisation happens on the *batch*, after it reached the device, in
  :meth:`ImageDataModule.on_after_batch_transfer`; the model receives
  ``{"image": float32 (B, C, H, W) in [0, 1], "label": int64 (B,)}``.
  (This needs the datamodule to be passed to the trainer: ``trainer.fit(model, datamodule=dm)``.)
* ``binarize=True``:

  - training batches get a fresh ``torch.bernoulli(image)`` draw every time they are seen
    (dynamic binarisation, uses the global torch RNG, so it follows ``seed_everything``);
  - val/test images are binarised ONCE, in :meth:`setup`, with a ``torch.Generator`` seeded
    by ``seed`` (stored in the eval dataset as uint8 0/255), so they are identical every
    epoch, every run and in every datamodule instance with the same ``seed``.
    ``bernoulli`` of an already binary batch is the identity, so eval batches are left
    untouched by the hook (it does not even draw when a trainer is evaluating).

* Splits: ``train_dataloader`` shuffles with ``drop_last=True`` (falls back to
  ``drop_last=False`` with a warning when the training split is smaller than one batch);
  ``val_dataloader`` and ``test_dataloader`` both iterate the held-out split (for the
  labelled datasets val = the held-out *test* split), in order.
* :meth:`images` returns real (never binarised) uint8 images for metrics and
  :meth:`fingerprint` a short content hash for metric caching.
* Resumable data order (:mod:`genlab.data.samplers`): the training order comes from
  :class:`ResumableRandomSampler` (a permutation per epoch drawn from ``(shuffle_seed, epoch)`` with its own generator, never
  the global RNG; ``shuffle_seed`` is the run seed). The datamodule's ``state_dict`` (stored in
  every checkpoint) records the epoch and how many training batches of it were done, so a run
  resumed from a mid-epoch checkpoint sees exactly the batches the uninterrupted run would
  have seen. Under multi-process DDP the order is the distributed sampler's (each rank its own
  shard of the ``(seed, epoch)`` permutation, exactly the indices of the ``DistributedSampler``
  Lightning would inject) through :class:`ResumableDistributedSampler`, which can also start
  mid-epoch; the position is per rank and the same on every rank.
* ``subset`` (every datamodule, ``data.subset``): train on a seeded subset of the *training*
  split only (val/test untouched): an integer number of images or a fraction in (0, 1]
  (``round(fraction * N)`` images, at least 1). Labelled data is class-balanced (each class
  gets ``n // K`` images, the remainder goes one each to classes picked by ``subset_seed``;
  a class with fewer images gives what it has and the rest is taken round-robin from the
  others); unlabelled data (labels -1) is plain seeded sampling. The subset depends only on
  the split content, ``subset`` and ``subset_seed``; it changes ``fingerprint("train")``
  (so metric caches and protocols against the training split tell subsets apart) and is
  described by :meth:`ImageDataModule.subset_protocol`. Subclasses need no code for it: the
  keyword arguments ``subset`` and ``subset_seed`` are added to every subclass ``__init__``
  and ``fingerprint`` by :meth:`ImageDataModule.__init_subclass__`.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from genlab.checks.errors import ConfigError
from genlab.compat import batches_processed_this_epoch
from genlab.data.hashing import short_hash, tensor_hash
from genlab.data.samplers import ResumableDistributedSampler, ResumableRandomSampler
from genlab.data.tensor_dataset import (
    PADDED_SIZES,
    TensorImageDataset,
    collate_images,
    fixed_binarize,
    materialise,
    zero_padded,
)

SPLITS = ("train", "val", "test")
# Generator seed used by ``images(max_images=...)`` to pick a subset; a constant so that the
# subset depends only on the split content and ``max_images`` (i.e. on the fingerprint).
_SUBSET_SEED = 0


_SUBSET_ALLOWED = "null (the whole training split), an integer >= 1 or a fraction in (0, 1]"


def check_subset(subset: Any) -> int | float | None:
    """``data.subset``: None, an int >= 1 or a float in (0, 1] (ConfigError otherwise)."""
    if subset is None:
        return None
    if isinstance(subset, bool) or not isinstance(subset, int | float):
        raise ConfigError("data.subset", subset, _SUBSET_ALLOWED)
    if isinstance(subset, int):
        if subset < 1:
            raise ConfigError("data.subset", subset, _SUBSET_ALLOWED)
        return subset
    if not (math.isfinite(subset) and 0.0 < subset <= 1.0):
        raise ConfigError("data.subset", subset, _SUBSET_ALLOWED)
    return float(subset)


def subset_size(subset: int | float | None, n: int) -> int:
    """Images the subset keeps of a split of ``n`` (ConfigError when an int exceeds ``n``)."""
    if subset is None:
        return n
    if isinstance(subset, float):
        return min(n, max(1, round(subset * n)))
    if subset > n:
        raise ConfigError(
            "data.subset", subset, f"{_SUBSET_ALLOWED}; at most {n} (the training split)"
        )
    return subset


def subset_indices(
    labels: torch.Tensor | None, n: int, seed: int, total: int | None = None
) -> torch.Tensor:
    """Sorted indices of a seeded subset of ``n`` of ``total`` (default ``len(labels)``) items,
    class-balanced.

    ``labels`` None or all negative: ``n`` items of a seeded permutation. Otherwise each class
    (label >= 0; items with label < 0 are never picked) contributes ``n // K`` of its items in
    a seeded order and the remainder ``n % K`` goes one each to the first classes of a seeded
    class order; a class short of items gives all it has and the shortfall is filled
    round-robin (same class order) from the classes with items left.
    """
    gen = torch.Generator().manual_seed(int(seed))
    if labels is None or not bool((labels >= 0).any()):
        total = total if total is not None else len(labels)  # type: ignore[arg-type]
        return torch.randperm(total, generator=gen)[:n].sort().values
    labels = torch.as_tensor(labels, dtype=torch.int64)
    classes = torch.unique(labels[labels >= 0])
    k = len(classes)
    if n > int((labels >= 0).sum()):
        raise ConfigError("data.subset", n, f"at most {int((labels >= 0).sum())} labelled images")
    members = []
    for c in classes.tolist():
        idx = torch.nonzero(labels == c).flatten()
        members.append(idx[torch.randperm(len(idx), generator=gen)])
    order = torch.randperm(k, generator=gen).tolist()
    quota = [n // k] * k
    for j in order[: n % k]:
        quota[j] += 1
    short = 0
    for j in range(k):
        if quota[j] > len(members[j]):
            short += quota[j] - len(members[j])
            quota[j] = len(members[j])
    while short:  # fill what the short classes could not give, one each in the seeded order
        for j in order:
            if short and quota[j] < len(members[j]):
                quota[j] += 1
                short -= 1
    return torch.cat([m[:q] for m, q in zip(members, quota, strict=True)]).sort().values


def _check_int(key: str, value: Any, minimum: int, allowed: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, value, allowed)
    return value


class ImageDataModule(pl.LightningDataModule):
    """Base class of genlab's image datamodules (see the module docstring for the contract).

    Subclasses set ``name``, ``image_size``, ``channels`` and ``num_classes`` in ``__init__``
    and implement :meth:`_load` (and usually :meth:`fingerprint`).

    Args:
        data_dir: where datasets are stored / downloaded to.
        batch_size: images per training/eval batch (>= 1).
        num_workers: DataLoader worker processes (>= 0; 0 loads in the main process).
        image_size: side of the (square) images the model sees.
        channels: 1 (grayscale) or 3 (RGB).
        binarize: Bernoulli-binarise images (fresh draw per training batch, fixed for eval).
        pin_memory: DataLoader ``pin_memory``.
        seed: seed of the fixed eval binarisation (and of the folder held-out split).
        subset: train on a seeded, class-balanced subset of the training split: an integer
            number of images or a fraction in (0, 1]; None = all (see the module docstring).
            Keyword-only in every subclass (added by ``__init_subclass__``).
        subset_seed: seed of that subset (independent of the run seed).
    """

    name: str = "images"
    subset: int | float | None = None
    subset_seed: int = 0

    hflip: bool = False  # data.hflip where a subclass offers it (_set_hflip)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give every subclass ``__init__`` the keyword arguments ``subset``/``subset_seed``
        (so ``data.subset`` works for every datamodule and ``inspect.signature`` lists it) and
        make every ``fingerprint("train")`` depend on the subset."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_genlab_subset", False):
            cls.__init__ = _with_subset_kwargs(init)  # type: ignore[method-assign]
        fingerprint = cls.__dict__.get("fingerprint")
        if fingerprint is not None and not getattr(fingerprint, "_genlab_subset", False):
            cls.fingerprint = _with_subset_fingerprint(fingerprint)  # type: ignore[method-assign]

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int | None = None,
        channels: int | None = None,
        binarize: bool = False,
        pin_memory: bool = False,
        seed: int = 0,
        *,
        subset: int | float | None = None,
        subset_seed: int = 0,
    ):
        super().__init__()
        self.subset = check_subset(subset)
        self.subset_seed = _check_int("data.subset_seed", subset_seed, 0, "an integer >= 0")
        self._subset_index: torch.Tensor | None = None  # training indices kept (setup)
        self.data_dir = str(data_dir) if data_dir is not None else "data"
        self.batch_size = _check_int("data.batch_size", batch_size, 1, "an integer >= 1")
        self.num_workers = _check_int("data.num_workers", num_workers, 0, "an integer in [0, 256]")
        if self.num_workers > 256:  # a typo like 1000000 would fork until the machine dies
            raise ConfigError("data.num_workers", num_workers, "an integer in [0, 256]")
        if image_size is not None:
            _check_int("data.image_size", image_size, 1, "an integer >= 1")
        if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
            raise ConfigError("data.channels", channels, [1, 3])
        if not isinstance(binarize, bool):
            raise ConfigError("data.binarize", binarize, "true or false")
        self.image_size: int = image_size  # type: ignore[assignment]  # subclasses finalise
        self.channels: int = channels  # type: ignore[assignment]
        self.num_classes: int | None = None
        self.binarize = binarize
        self.pin_memory = bool(pin_memory)
        self.seed = int(seed)
        self._datasets: dict[str, Dataset] = {}
        self._raw_eval: Dataset | None = None  # eval split before fixed binarisation
        self._pad = 0  # pixels of zero border added on each side at load (_check_fixed_shape)
        # data order: the run seed (seed_everything) without drawing from the global RNG
        self.shuffle_seed = int(torch.initial_seed()) % 2**63
        self._train_sampler: ResumableRandomSampler | ResumableDistributedSampler | None = None
        self._resume_position: dict[str, int] | None = None  # set by load_state_dict

    # ------------------------------------------------------------------ helpers for subclasses
    def _check_num_classes(self, num_classes: int | None, native: int | None) -> None:
        """``num_classes`` is informational (model configs read ``${data.num_classes}``):
        ``None`` means the dataset's own value; anything else must equal it."""
        if num_classes is not None and num_classes != native:
            allowed = f"{native} or null" if native is not None else "null (unlabelled images)"
            raise ConfigError("data.num_classes", num_classes, f"{allowed} ({self.name})")
        self.num_classes = native

    def _check_fixed_shape(self, image_size: int | None, channels: int | None, size: int, ch: int):
        """Fixed-shape datasets: ``None`` means native; any other value must equal it, or be
        the side :data:`PADDED_SIZES` zero-pads the native images to (28 -> 32: a 2-pixel
        black border, for nets that start at 32 px; nothing is resized)."""
        padded = PADDED_SIZES.get(size)
        if image_size is not None and image_size not in (size, padded):
            allowed = f"{size} or {padded} (zero-padded)" if padded else str(size)
            raise ConfigError(
                "data.image_size",
                image_size,
                f"{allowed} ({self.name} images are {size}x{size}; genlab does not resize them, "
                "use data=folder for other sizes)",
            )
        if channels is not None and channels != ch:
            raise ConfigError("data.channels", channels, f"{ch} ({self.name} has {ch} channel(s))")
        self.image_size, self.channels = image_size or size, ch
        self._pad = (self.image_size - size) // 2

    def _load(self) -> dict[str, Dataset]:
        """Return ``{"train": ds, "test": ds}`` (``"val"`` defaults to ``"test"``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ lightning hooks
    def setup(self, stage: str | None = None) -> None:
        """Load all splits once (idempotent) and precompute the fixed eval binarisation."""
        if self._datasets:
            return
        datasets = dict(self._load())
        if self._pad:
            datasets = {split: zero_padded(ds, self._pad) for split, ds in datasets.items()}
        datasets.setdefault("val", datasets["test"])
        if self.subset is not None:
            datasets["train"] = self._take_subset(datasets["train"])
        self._raw_eval = datasets["test"]
        if self.binarize:
            binarized: dict[int, Dataset] = {}
            for split in ("val", "test"):
                ds = datasets[split]
                if id(ds) not in binarized:
                    binarized[id(ds)] = self._binarized_eval(ds)
                datasets[split] = binarized[id(ds)]
        self._datasets = datasets

    def _take_subset(self, ds: Dataset) -> Dataset:
        """The ``subset`` of the training dataset ``ds`` (labels from ``ds.labels`` when it has
        them, else unlabelled: plain seeded sampling)."""
        n = subset_size(self.subset, len(ds))
        labels = getattr(ds, "labels", None)
        labels = torch.as_tensor(labels, dtype=torch.int64) if labels is not None else None
        if labels is not None and len(labels) != len(ds):
            labels = None
        index = subset_indices(labels, n, self.subset_seed, total=len(ds))
        self._subset_index = index
        if isinstance(ds, TensorImageDataset):
            return TensorImageDataset(ds.images[index].contiguous(), ds.labels[index])
        return torch.utils.data.Subset(ds, index.tolist())

    def subset_protocol(self) -> dict[str, Any] | None:
        """What ``data.subset`` kept (None without a subset): the requested value, its seed,
        the number of training images kept out of the split, the images per class and a hash
        of the kept indices."""
        if self.subset is None:
            return None
        self.setup()
        index = self._subset_index
        assert index is not None
        train = self._datasets["train"]
        labels = getattr(train, "labels", None)
        if labels is None and isinstance(train, torch.utils.data.Subset):
            base = getattr(train.dataset, "labels", None)
            labels = None if base is None else torch.as_tensor(base)[index]
        per_class: dict[str, int] | None = None
        if labels is not None and bool((torch.as_tensor(labels) >= 0).any()):
            values, counts = torch.unique(torch.as_tensor(labels), return_counts=True)
            per_class = {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
        return {
            "subset": self.subset,
            "subset_seed": self.subset_seed,
            "num_train": int(len(index)),
            "per_class": per_class,
            "indices_hash": tensor_hash(index),
        }

    def _binarized_eval(self, ds: Dataset) -> Dataset:
        if isinstance(ds, TensorImageDataset):
            return TensorImageDataset(fixed_binarize(ds.images, self.seed), ds.labels)
        images, labels = materialise(ds)
        return TensorImageDataset(fixed_binarize(images, self.seed), labels)

    def dataset(self, split: str) -> Dataset:
        """The dataset behind ``split`` (eval splits are already binarised if ``binarize``)."""
        _check_split(split)
        self.setup()
        return self._datasets[split]

    def train_dataloader(self) -> DataLoader:
        ds = self.dataset("train")
        drop_last = True
        if len(ds) < self.batch_size:
            warnings.warn(
                f"{self.name}: the training split has {len(ds)} images, fewer than "
                f"data.batch_size={self.batch_size}; using drop_last=False so that an epoch "
                "is not empty",
                stacklevel=2,
            )
            drop_last = False
        trainer = getattr(self, "trainer", None)
        position = self._resume_position or {}
        self._resume_position = None
        epoch, start = position.get("epoch", 0), position.get("samples_done", 0)
        if trainer is not None and trainer.world_size > 1:
            # one seed on every rank, also for seed=null (random per process)
            self.shuffle_seed = int(trainer.strategy.broadcast(self.shuffle_seed, src=0))
            self._train_sampler = ResumableDistributedSampler(
                ds,
                **trainer.distributed_sampler_kwargs,  # num_replicas, rank
                shuffle=not trainer.overfit_batches,  # as Lightning's own injected sampler
                seed=self.shuffle_seed,
                epoch=epoch,
                start=start,
            )
        else:
            self._train_sampler = ResumableRandomSampler(len(ds), self.shuffle_seed, epoch, start)
        return self._loader(ds, shuffle=False, drop_last=drop_last, sampler=self._train_sampler)

    # ------------------------------------------------------------------ resume (checkpoints)
    def state_dict(self) -> dict[str, int]:
        """Data-order position: shuffle seed, epoch and training samples done in it (per rank
        under DDP: every rank has done as many batches)."""
        state = {"shuffle_seed": self.shuffle_seed, "epoch": 0, "samples_done": 0}
        sampler, trainer = self._train_sampler, getattr(self, "trainer", None)
        if sampler is not None and trainer is not None:
            done = batches_processed_this_epoch(trainer)  # genlab.compat
            state["epoch"] = sampler.epoch
            if done >= trainer.num_training_batches:  # epoch finished: next one from its start
                state["epoch"], done = sampler.epoch + 1, 0
            state["samples_done"] = int(done) * self.batch_size
        return state

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Continue the data order of a checkpoint (applied by the next train_dataloader())."""
        self.shuffle_seed = int(state_dict.get("shuffle_seed", self.shuffle_seed))
        self._resume_position = {
            "epoch": int(state_dict.get("epoch", 0)),
            "samples_done": int(state_dict.get("samples_done", 0)),
        }

    def val_dataloader(self) -> DataLoader:
        """The held-out split (for torchvision/bundled datasets: their *test* split)."""
        return self._loader(self.dataset("val"), shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), shuffle=False, drop_last=False)

    def _loader(
        self, ds: Dataset, shuffle: bool, drop_last: bool, sampler: Sampler | None = None
    ) -> DataLoader:
        # own generator: creating a loader iterator does not draw from the global RNG
        generator = None if sampler is None else torch.Generator().manual_seed(self.shuffle_seed)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            generator=generator,
            collate_fn=collate_images,  # in-memory datasets: one indexing op per batch
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> dict[str, torch.Tensor]:
        """``(uint8 images, labels)`` -> ``{"image": float32 in [0, 1], "label": int64}``.

        With ``binarize`` a fresh Bernoulli sample is drawn unless a trainer is attached and
        is not training (eval batches are binarised once in :meth:`setup` anyway, and
        ``bernoulli`` of a {0, 1} image is the identity). With ``hflip`` (datamodules that
        offer ``data.hflip``) each training image is mirrored along W with probability 1/2.
        """
        if isinstance(batch, dict):
            image, label = batch["image"], batch.get("label")
        else:
            image, label = batch[0], (batch[1] if len(batch) > 1 else None)
        if image.dtype == torch.uint8:
            image = image.to(torch.float32).div_(255.0)
        else:
            image = image.to(torch.float32)
        if label is None:
            label = torch.full((image.shape[0],), -1, dtype=torch.int64, device=image.device)
        else:
            label = torch.as_tensor(label, device=image.device).to(torch.int64)
        trainer = getattr(self, "trainer", None)
        if self.binarize and (trainer is None or trainer.training):
            image = torch.bernoulli(image)
        if self.hflip and trainer is not None and trainer.training:
            flip = torch.rand(image.shape[0], device=image.device) < 0.5
            image = torch.where(flip[:, None, None, None], image.flip(3), image)
        return {"image": image, "label": label}

    def _set_hflip(self, hflip: Any) -> None:
        """``data.hflip`` of the datamodules that offer it (checked, then used by
        :meth:`on_after_batch_transfer`)."""
        if not isinstance(hflip, bool):
            raise ConfigError("data.hflip", hflip, "true or false")
        self.hflip = hflip

    # ------------------------------------------------------------------ metrics support
    def images(self, split: str = "train", max_images: int | None = None) -> torch.Tensor:
        """Real (never binarised) uint8 images (N, C, H, W) of ``split``.

        With ``max_images`` smaller than the split, a subset chosen by a constant-seeded
        permutation (kept in dataset order), so it depends only on the split content.
        """
        _check_split(split)
        self.setup()
        ds = self._raw_eval if split in ("val", "test") else self._datasets["train"]
        assert ds is not None
        n = len(ds)
        index: Sequence[int] | None = None
        if max_images is not None and max_images < n:
            gen = torch.Generator().manual_seed(_SUBSET_SEED)
            index = torch.randperm(n, generator=gen)[: max(0, max_images)].sort().values.tolist()
        if isinstance(ds, TensorImageDataset):
            return (
                ds.images if index is None else ds.images[torch.as_tensor(index, dtype=torch.long)]
            )
        return materialise(ds, index)[0]

    def num_images(self, split: str = "train") -> int:
        """Number of images of ``split`` (what ``images(split)`` returns without a cap)."""
        _check_split(split)
        self.setup()
        ds = self._raw_eval if split in ("val", "test") else self._datasets["train"]
        assert ds is not None
        return len(ds)

    def fingerprint(self, split: str) -> str:
        """Short hash that changes when the content of ``split`` changes."""
        _check_split(split)
        self.setup()
        ds = self._raw_eval if split in ("val", "test") else self._datasets["train"]
        if isinstance(ds, TensorImageDataset):
            return tensor_hash(ds.images, ds.labels)
        images, labels = materialise(ds)
        return tensor_hash(images, labels)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, image_size={self.image_size}, "
            f"channels={self.channels}, batch_size={self.batch_size}, binarize={self.binarize})"
        )

    # LightningDataModule.__str__ builds every dataloader (and would trigger setup()).
    __str__ = __repr__


def _with_subset_kwargs(init: Any) -> Any:
    """``init`` with the keyword-only ``subset``/``subset_seed`` (checked and set after it)."""

    @functools.wraps(init)
    def __init__(self, *args: Any, subset: Any = None, subset_seed: Any = 0, **kwargs: Any):
        init(self, *args, **kwargs)
        self.subset = check_subset(subset)
        self.subset_seed = _check_int("data.subset_seed", subset_seed, 0, "an integer >= 0")
        self._subset_index = None

    sig = inspect.signature(init)
    params = [p for p in sig.parameters.values() if p.name not in ("subset", "subset_seed")]
    extra = [
        inspect.Parameter("subset", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("subset_seed", inspect.Parameter.KEYWORD_ONLY, default=0),
    ]
    var_kw = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    params = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    __init__.__signature__ = sig.replace(parameters=params + extra + var_kw)  # type: ignore[attr-defined]
    __init__._genlab_subset = True  # type: ignore[attr-defined]
    return __init__


def _with_subset_fingerprint(fingerprint: Any) -> Any:
    """``fingerprint`` whose ``"train"`` value also hashes the subset (value, seed, indices)."""

    @functools.wraps(fingerprint)
    def wrapped(self, split: str) -> str:
        fp = fingerprint(self, split)
        if split != "train" or getattr(self, "subset", None) is None:
            return fp
        self.setup()
        return short_hash(
            fp, "subset", self.subset, self.subset_seed, tensor_hash(self._subset_index)
        )

    wrapped._genlab_subset = True  # type: ignore[attr-defined]
    return wrapped


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is invalid: allowed one of {', '.join(SPLITS)}")
