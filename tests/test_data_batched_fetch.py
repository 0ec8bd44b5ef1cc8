"""In-memory datasets fetch a batch with one indexing operation (``__getitems__``): the
batches, their order and a mid-epoch resume are exactly those of the per-image path."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from genlab.data import FashionMNISTMiniDataModule, TensorImageDataset
from genlab.data.samplers import ResumableRandomSampler
from genlab.data.tensor_dataset import ImageBatch, collate_images


class PerImage(Dataset):
    """The same dataset without ``__getitems__``: torch fetches image by image."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


def assert_same_batches(got, expected):
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        assert isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == 2
        for x, y in zip(a, b, strict=True):
            assert x.dtype == y.dtype and x.shape == y.shape and x.stride() == y.stride()
            assert torch.equal(x, y)


def per_image_batches(dm, sampler):
    loader = DataLoader(PerImage(dm.dataset("train")), batch_size=dm.batch_size,
                        sampler=sampler, drop_last=True)  # fmt: skip
    return list(loader)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_training_batches_equal_the_per_image_path(monkeypatch, num_workers):
    dm = FashionMNISTMiniDataModule(batch_size=16, num_workers=num_workers)
    calls = []
    original = TensorImageDataset.__getitem__
    monkeypatch.setattr(
        TensorImageDataset, "__getitem__", lambda s, i: calls.append(i) or original(s, i)
    )
    got = list(dm.train_dataloader())
    if num_workers == 0:
        assert calls == []  # no per-image fetch: one __getitems__ per batch
    sampler = ResumableRandomSampler(len(dm.dataset("train")), dm.shuffle_seed)
    assert_same_batches(got, per_image_batches(dm, sampler))
    assert_same_batches(list(dm.val_dataloader())[:3], list(DataLoader(
        PerImage(dm.dataset("val")), batch_size=16))[:3])  # fmt: skip


def test_mid_epoch_resume_continues_the_same_order():
    dm = FashionMNISTMiniDataModule(batch_size=16)
    full = list(dm.train_dataloader())
    resumed = FashionMNISTMiniDataModule(batch_size=16)
    resumed.load_state_dict({"shuffle_seed": dm.shuffle_seed, "epoch": 0, "samples_done": 48})
    assert_same_batches(list(resumed.train_dataloader()), full[3:])


def test_batched_fetch_under_any_collate():
    """A user's own DataLoader (default_collate, a Subset) builds the same batch from it."""
    images = torch.randint(0, 256, (20, 3, 4, 4), dtype=torch.uint8)
    ds = TensorImageDataset(images, torch.arange(20))
    indices = [7, 3, 19, 0, 3]
    fetched = ds.__getitems__(indices)
    assert isinstance(fetched, ImageBatch) and len(fetched) == 5
    expected = default_collate([ds[i] for i in indices])
    for batch in (default_collate(fetched), collate_images(fetched)):
        assert_same_batches([batch], [expected])
    assert [label for _, label in fetched[1:3]] == [3, 19] and fetched[-1][1] == 3
    assert all(torch.equal(image, images[i]) for (image, _), i in zip(fetched, indices))
    subset = DataLoader(Subset(ds, [5, 6, 7, 8]), batch_size=2)  # default collate
    assert_same_batches(list(subset), [default_collate([ds[5], ds[6]]),
                                       default_collate([ds[7], ds[8]])])  # fmt: skip
    with pytest.raises(IndexError):
        ds.__getitems__([20])
