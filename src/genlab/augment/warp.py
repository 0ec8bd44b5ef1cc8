"""Per-sample affine warps of images for ADA's geometric augmentations.

``g_inv`` (B, 3, 3) maps an output pixel to the input pixel it reads, in pixel units with the
origin at the image centre (pixel (i, j) of an H x W image is at x = j - (W - 1) / 2,
y = i - (H - 1) / 2).

:func:`warp_antialiased` is the pipeline of stylegan2-ada-pytorch (``training/augment.py``,
"Execute geometric transformations"), for the whole batch at once:

1. reflection-pad the images by the margin the warped corners need, plus 2 * 3 px for the
   filter (at most H - 1 / W - 1 per side, as reflection allows; beyond that the warp reads
   zeros);
2. upsample 2x: zero insertion, then the 12-tap ``sym6`` wavelet low-pass filter (gain 2 per
   axis);
3. bilinear resampling at the upsampled resolution (zeros outside);
4. filter with ``sym6`` again, keep every other pixel and crop back to H x W.

The filter is the low-pass half of an orthogonal wavelet (``sum_k h_k h_{k+2n} = delta_n``),
so step 4 undoes step 2 exactly where the warp is the identity, and the 2x supersampling with
a low-pass filter on both sides keeps the rotations and fractional scalings from aliasing
(bilinear resampling at the image's own resolution blurs some frequencies and folds others).
sym6 is not symmetric (its centre of mass is at tap 5.1, not 5.5) while step 2 places the
upsampled grid as for a symmetric filter, as the reference does: flips and rotations come out
about 0.1 px off the exact ones, and genlab keeps that to give the reference's numbers (equal
to them up to float rounding for the same ``g_inv``).

:func:`warp_bilinear` is the plain warp genlab used before: bilinear resampling at the input
resolution with reflection padding, no filter.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

# The low-pass filter of the sym6 wavelet (least-asymmetric Daubechies, 6 vanishing moments),
# in the order training/augment.py lists it: sum sqrt(2), sum of squares 1, orthogonal to its
# own even shifts.
SYM6 = (
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
)
FILTER_PAD = len(SYM6) // 4  # extra margin (input pixels) the filter needs on each side: 3


def matrix(rows, batch: int, device) -> torch.Tensor:
    """Rows of scalars / (B,) tensors -> (B, n, m) float32."""
    elems = [
        torch.as_tensor(e, dtype=torch.float32, device=device).expand(batch)
        for row in rows
        for e in row
    ]
    return torch.stack(elems, dim=-1).view(batch, len(rows), len(rows[0]))


def translate2d(tx, ty, batch: int, device) -> torch.Tensor:
    return matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], batch, device)


def scale2d(sx, sy, batch: int, device) -> torch.Tensor:
    return matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], batch, device)


_TAPS = torch.tensor(SYM6, dtype=torch.float64) / sum(SYM6)  # normalised to sum 1
_UP_PAD = len(SYM6) - 1 - (len(SYM6) + 1) // 2  # 5: output n = sum_i x_i h_{n + 5 - 2i}
_DENSE_MAX = 256  # sides up to this length are filtered by a (banded) matrix product


def _up_conv(x: torch.Tensor) -> torch.Tensor:
    """(N, L) -> (N, 2L): zeros between the samples, then convolution with 2 h."""
    taps = (2 * _TAPS).to(x).view(1, 1, -1)
    return F.conv_transpose1d(x[:, None], taps, stride=2, padding=_UP_PAD)[:, 0]


def _down_conv(x: torch.Tensor, crop: int) -> torch.Tensor:
    """(N, L) -> (N, L / 2 - crop + ...): drop ``crop`` samples at both ends, correlate with h,
    keep every other output."""
    taps = _TAPS.to(x).view(1, 1, -1)
    return F.conv1d(x[:, None, crop : x.shape[1] - crop], taps, stride=2)[:, 0]


@functools.lru_cache(maxsize=128)  # at most 128 x 256 x 512 floats (64 MiB)
def _dense(kind: str, length: int, crop: int, device: str) -> torch.Tensor:
    """The (length, out) matrix M of :func:`_up_conv` / :func:`_down_conv` (x @ M), built by
    applying them to the identity: on the CPU a matrix product is several times faster than
    these one-channel convolutions at the sizes ADA meets."""
    eye = torch.eye(length, dtype=torch.float32)
    with torch.autocast("cpu", enabled=False):  # cached: float32 whatever the caller's autocast
        matrix = _up_conv(eye) if kind == "up" else _down_conv(eye, crop)
    return matrix.to(device)


def _filter(x: torch.Tensor, kind: str, dim: int, crop: int = 0) -> torch.Tensor:
    """Apply the up- or downsampling filter of kind ``up``/``down`` to x (B, C, H, W) along
    ``dim`` (2: H, 3: W)."""
    if dim == 2:
        return _filter(x.transpose(2, 3), kind, 3, crop).transpose(2, 3)
    x = x.contiguous()  # one (B C H, W) @ (W, W') product, not B C H small ones
    b, c, h, length = x.shape
    if length <= _DENSE_MAX:
        return x @ _dense(kind, length, crop, str(x.device))
    flat = x.reshape(b * c * h, length)
    out = _up_conv(flat) if kind == "up" else _down_conv(flat, crop)
    return out.view(b, c, h, -1)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W): zero insertion, then the sym6 filter (sum 1) with gain
    2 per axis, as a convolution (upfirdn2d.upsample2d's padding: 6 before, 5 after)."""
    return _filter(_filter(x, "up", 3), "up", 2)


def downsample2x(x: torch.Tensor, crop: int = 0) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, (H - 2 crop) / 2 ...): drop ``crop`` pixels on each side, then
    correlate with the sym6 filter (sum 1; the adjoint of :func:`upsample2x`'s convolution)
    and keep every other pixel."""
    return _filter(_filter(x, "down", 3, crop), "down", 2, crop)


def warp_antialiased(images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    """images (B, C, H, W) warped by ``g_inv`` (B, 3, 3), 2x supersampled with the sym6 filter
    (stylegan2-ada-pytorch's geometric pipeline); float32 inside (also under mixed-precision
    autocast), the input's dtype out."""
    with torch.autocast(images.device.type, enabled=False):
        return _warp_antialiased(images, g_inv.float())


def _warp_antialiased(images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    b, c, h, w = images.shape
    dev = images.device
    # 1. the margin the warped output corners reach into, over the whole batch
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor(
        [[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1.0, 1.0, 1.0, 1.0]], device=dev
    )
    reach = g_inv @ corners  # (B, 3, 4): input coordinates of the four corners
    xs, ys = reach[:, 0].flatten(), reach[:, 1].flatten()
    margin = torch.stack([(-xs).max() - cx, (-ys).max() - cy, xs.max() - cx, ys.max() - cy])
    limit = torch.tensor([w - 1, h - 1, w - 1, h - 1], dtype=margin.dtype, device=dev)
    margin = (margin + 2 * FILTER_PAD).clamp(min=0).minimum(limit).ceil()
    mx0, my0, mx1, my1 = (int(m) for m in margin.tolist())
    x = F.pad(images.float(), [mx0, mx1, my0, my1], mode="reflect")
    g = translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, b, dev) @ g_inv
    # 2. upsample; the transform in upsampled pixels, about the same half-pixel origin as
    # the reference code
    x = upsample2x(x)
    g = scale2d(2, 2, b, dev) @ g @ scale2d(0.5, 0.5, b, dev)
    g = translate2d(-0.5, -0.5, b, dev) @ g @ translate2d(0.5, 0.5, b, dev)
    # 3. resample onto the upsampled output (plus the filter's margin), in affine_grid units
    out_h, out_w = 2 * (h + 2 * FILTER_PAD), 2 * (w + 2 * FILTER_PAD)
    to_unit = scale2d(2 / x.shape[3], 2 / x.shape[2], b, dev)
    from_unit = scale2d(out_w / 2, out_h / 2, b, dev)
    theta = (to_unit @ g @ from_unit)[:, :2, :]
    grid = F.affine_grid(theta, [b, c, out_h, out_w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # 4. low-pass, downsample and crop to H x W
    # the filter's own padding is (5, 5): crop (2 * FILTER_PAD - 5) = 1 px per side first
    return downsample2x(x, crop=1).to(images.dtype)


def warp_bilinear(images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    """images (B, C, H, W) warped by ``g_inv`` (B, 3, 3) with bilinear resampling at their own
    resolution and reflection padding (no supersampling, no filter)."""
    b, _, h, w = images.shape
    dev = images.device
    to_unit = scale2d(2 / w, 2 / h, b, dev)
    from_unit = scale2d(w / 2, h / 2, b, dev)
    theta = (to_unit @ g_inv @ from_unit)[:, :2, :]
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(
        images.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False
    ).to(images.dtype)
