"""genlab's networks as plain data, readable without importing torch: the GAN arch names, the
image sizes each arch takes and the options (constructor keyword arguments) a
``model.generator``/``model.discriminator`` dict may set, plus the name choices the model
configs check.

The typed model configs (``genlab.models.*.config``) validate against this catalog, so a bad
value is refused before torch is imported; the classes it describes are in
:mod:`genlab.nets.zoo` (GAN nets by arch), :mod:`genlab.nets.vae` (MLP activations).
``tests/test_config_errors_early.py`` pins every entry against those classes' signatures.
"""

from __future__ import annotations

from genlab.nets.shapes import CONV_LAYOUTS

RESNET_SIZES = (32, 48, 64, 128)  # the image sizes of genlab.nets.resnet.G_LAYOUTS/D_LAYOUTS
STYLEGAN2_SIZES = (32, 64, 128, 256, 512, 1024)
GAN_ARCHS = ("dcgan", "mlp", "resnet", "stylegan2")
# arch -> the image sizes it takes (None: any size)
ARCH_SIZES: dict[str, tuple[int, ...] | None] = {
    "dcgan": tuple(sorted(CONV_LAYOUTS)),
    "mlp": None,
    "resnet": RESNET_SIZES,
    "stylegan2": STYLEGAN2_SIZES,
}
# Constructor arguments filled by the GAN itself, not by the generator/discriminator dict.
SHAPE_ARGS = ("latent_dim", "channels", "image_size", "num_classes")
# arch -> the other constructor arguments of its generator / discriminator, in signature order
GENERATOR_OPTIONS: dict[str, tuple[str, ...]] = {
    "dcgan": ("base_channels", "kernel_size", "init", "bias", "bn_eps"),
    "mlp": ("hidden_dims",),
    "resnet": (
        "base_channels",
        "spectral_norm",
        "attention_resolution",
        "class_embedding_dim",
        "hierarchical_z",
        "upsample",
        "init",
        "bn_eps",
        "bias_init",
        "default_init_layers",
    ),
    "stylegan2": (
        "w_dim",
        "mapping_layers",
        "channel_base",
        "channel_max",
        "mapping_lr_multiplier",
        "w_avg_beta",
        "style_mixing_prob",
    ),
}
DISCRIMINATOR_OPTIONS: dict[str, tuple[str, ...]] = {
    "dcgan": (
        "base_channels",
        "norm",
        "spectral_norm",
        "kernel_size",
        "init",
        "bias",
        "bn_eps",
    ),
    "mlp": ("hidden_dims", "spectral_norm", "norm"),
    "resnet": (
        "base_channels",
        "spectral_norm",
        "attention_resolution",
        "wide",
        "pooling",
        "init",
        "bias_init",
        "default_init_layers",
    ),
    "stylegan2": (
        "channel_base",
        "channel_max",
        "mbstd_group_size",
        "cmap_dim",
        "class_mapping_layers",
        "architecture",
    ),
}
# StyleGAN2 discriminator layouts (stylegan2-ada-pytorch training/networks.py ``architecture``):
# orig: plain conv stack; skip: FromRGB of the downsampled image at every resolution; resnet:
# residual blocks (the default; the ``cifar`` config of stylegan2-ada-pytorch uses orig)
STYLEGAN2_D_ARCHITECTURES = ("orig", "skip", "resnet")
D_NORMS = ("batch", "instance", "layer", "none")  # normalisation of the DCGAN discriminator
MLP_ACTIVATION_NAMES = ("tanh", "relu", "silu")  # keys of genlab.nets.vae.MLP_ACTIVATIONS
