"""benchmarks/gpu_check.sh, the script a session with a GPU runs: it must cover the recipes'
options (StyleGAN2's orig D, EMA ramp-up and separate lazy R1; BigGAN's attention; the
DCGAN/WGAN-GP source inits) and run end to end (its --cpu-dry-run, slow here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genlab.models.gan.config import GANConfig

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_check  # noqa: E402


@pytest.mark.parametrize("arch", list(gpu_check.ARCHS))
def test_every_arch_is_a_valid_gan_config(arch):
    GANConfig(**gpu_check.preset_settings(arch, dry_run=False))
    GANConfig(**gpu_check.preset_settings(arch, dry_run=True))


def test_the_check_runs_the_recipes_options():
    stylegan2 = gpu_check.preset_settings("stylegan2", dry_run=False)
    assert stylegan2["discriminator"]["architecture"] == "orig"
    assert (stylegan2["lazy_reg"], stylegan2["ema_rampup"]) == ("separate", 0.05)
    assert stylegan2["ema_kimg"] is not None and stylegan2["augment"] == "ada"
    biggan = gpu_check.preset_settings("biggan", dry_run=False)
    assert biggan["generator"]["attention_resolution"] == 16
    assert biggan["discriminator"]["attention_resolution"] == 16
    radford = gpu_check.preset_settings("dcgan_radford", dry_run=False)
    assert radford["generator"]["kernel_size"] == 5 and radford["discriminator"]["bias"] is False
    resnet = gpu_check.preset_settings("resnet", dry_run=False)
    assert resnet["discriminator"]["default_init_layers"] == ["shortcut"]


@pytest.mark.slow
def test_cpu_dry_run_trains_every_arch_in_bf16_and_ends_finite():
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh"), "--cpu-dry-run"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gpu_check: all finite" in done.stdout
    for arch in gpu_check.ARCHS:
        assert f"\n{arch} " in done.stdout
