"""Typed configuration of the VAE family: :class:`VAEConfig` and the configs built on it: the
L-layer hierarchical VAE (:class:`HierarchicalVAEConfig`), Sønderby et al.'s Ladder VAE
(:class:`LadderVAEConfig`) and the NVAE/VDVAE-style top-down VAE (:class:`TopDownVAEConfig`).

Plain data only (names from :mod:`genlab.losses.names` and :mod:`genlab.nets.catalog`): this
module imports no torch, so a bad value is refused before any heavy import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from genlab.checks.values import (
    check_instance_shapes,
    check_int,
    check_non_negative,
    check_optimizer,
    check_scheduler,
    check_speed_options,
    number,
    positive_int,
    require,
)
from genlab.losses.names import LIKELIHOOD_NAMES
from genlab.nets.catalog import MLP_ACTIVATION_NAMES

VAE_ARCHS = ("conv", "mlp")
PRIORS = ("standard", "vamp")  # what genlab.models.vae.priors.build_prior builds
LADDER_BOTTOM_UP = ("hidden", "mean")  # what the Ladder VAE's next bottom-up MLP reads


@dataclass
class VAEConfig:
    """Every field of ``conf/model/vae.yaml`` (presets on top of it: ``beta_vae``, ``iwae``,
    ``vae_mlp``).

    Attributes:
        image_size: side of the square images (from ``${data.image_size}``).
        channels: image channels, 1 or 3 (from ``${data.channels}``).
        num_classes: classes in the data (unused by the VAE; kept so data configs compose).
        latent_dim: size of z; prior N(0, I), posterior N(mean, diag(exp(log_var))).
        arch: ``conv`` (28/32/64 px) or ``mlp`` (any size).
        base_channels: width of the first conv layer (conv arch).
        hidden_dims: hidden layer sizes (mlp arch), e.g. ``[400]``.
        activation: hidden activation of the mlp arch: ``tanh`` | ``relu`` | ``silu``.
        likelihood: ``discretized_logistic`` (the default of ``model=vae``: a pmf over the 256
            8-bit pixel values, so nats and bits/dim are a log-likelihood of any 8-bit image
            data) | ``gaussian`` (a discretised Gaussian, also a pmf over the 256 values) |
            ``bernoulli`` (a pmf over {0, 1}: a likelihood only of binarised data; on grey
            levels it is a reconstruction loss and no NLL or bits/dim is reported).
        data_binarized: whether the training/eval pixels are in {0, 1}, from
            ``${data.binarize}`` (``None`` = unknown, e.g. a model built by hand). Decides
            whether a ``bernoulli`` likelihood is a likelihood of the data.
        gaussian_std: std of the Gaussian likelihood (initial value when ``learn_std``).
        learn_std: learn one scalar std for the Gaussian likelihood.
        num_mixtures: components of the ``discretized_logistic_mixture`` likelihood (PixelCNN++
            mixture of discretised logistics, RGB channels coupled; Salimans et al.: 10).
        beta: weight on the KL term (beta-VAE; 1 = ELBO).
        kl_warmup_steps: linear KL warm-up from 0 to ``beta`` over this many optimizer steps
            (0 = off); counted by Lightning's ``global_step``, so it resumes with the checkpoint.
        free_bits: minimum nats per latent dim in the KL term (batch mean per dim, clamped;
            0 = off; Kingma et al. 2016). ELBO training only (``k = 1``).
        k: importance samples in the training bound (1 = ELBO, >1 = IWAE, Burda et al. 2015;
            during warm-up the prior ratio inside the weights is scaled by the KL weight).
        optimizer: ``{_target_: torch.optim.X, lr: .., ...}``.
        lr_scheduler: ``None`` or ``{_target_: torch.optim.lr_scheduler.X, ...}``, stepped once
            per epoch (its state is in the checkpoint, so it resumes where it stopped).
        nll_k: importance samples for ``val/nll`` during training (``val/nll`` and
            ``val/elbo`` are logged only when the likelihood is one of the data, see
            ``likelihood``).
        nll_every_n_epochs: log ``val/nll`` every this many epochs (0 = never).
        nll_num_images: ``val/nll`` uses the first this many validation images (``None`` = all;
            the estimate costs ``nll_k`` decoder passes per image).
        prior: ``standard`` (N(0, I)) | ``vamp`` (the VampPrior of Tomczak & Welling 2018:
            the mixture of the posteriors at ``num_pseudo_inputs`` learned pseudo-inputs,
            :mod:`genlab.models.vae.priors`; its KL is the one-sample estimate, so
            ``free_bits`` must be 0).
        num_pseudo_inputs: K, the mixture components of the VampPrior (Tomczak & Welling:
            500 on MNIST).
        compile: ``torch.compile`` the networks (a bool; false = eager).
        channels_last: ``channels_last`` memory format for the conv nets (a bool).
    """

    image_size: int
    channels: int
    num_classes: int | None = None
    latent_dim: int = 16
    arch: str = "conv"
    base_channels: int = 32
    hidden_dims: list[int] = field(default_factory=lambda: [400])
    activation: str = "tanh"
    likelihood: str = "discretized_logistic"
    data_binarized: bool | None = None
    gaussian_std: float = 0.1
    learn_std: bool = False
    num_mixtures: int = 10
    beta: float = 1.0
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    k: int = 1
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "torch.optim.Adam", "lr": 1e-3}
    )
    lr_scheduler: dict[str, Any] | None = None
    nll_k: int = 100
    nll_every_n_epochs: int = 0
    nll_num_images: int | None = 1000
    prior: str = "standard"
    num_pseudo_inputs: int = 500
    compile: bool = False
    channels_last: bool = False

    #: the names ``activation`` takes (a family with its own MLPs may allow more)
    activations: ClassVar[tuple[str, ...]] = MLP_ACTIVATION_NAMES

    def __post_init__(self):
        check_instance_shapes(self)  # a mapping where a value belongs, or the reverse: one line
        check_int("model.latent_dim", self.latent_dim)
        require(self.channels in (1, 3), "model.channels", self.channels, "1 or 3")
        ok = self.activation in self.activations
        require(ok, "model.activation", self.activation, f"one of {list(self.activations)}")
        require(self.arch in VAE_ARCHS, "model.arch", self.arch, f"one of {list(VAE_ARCHS)}")
        ok = self.likelihood in LIKELIHOOD_NAMES
        require(ok, "model.likelihood", self.likelihood, f"one of {list(LIKELIHOOD_NAMES)}")
        ok = self.data_binarized is None or isinstance(self.data_binarized, bool)
        require(ok, "model.data_binarized", self.data_binarized, "true, false or null")
        for key in ("beta", "free_bits"):
            check_non_negative(f"model.{key}", getattr(self, key))
        require(
            number(self.gaussian_std) and self.gaussian_std > 0,
            "model.gaussian_std",
            self.gaussian_std,
            "a number > 0",
        )
        ok = isinstance(self.kl_warmup_steps, int) and self.kl_warmup_steps >= 0
        require(ok, "model.kl_warmup_steps", self.kl_warmup_steps, "an integer >= 0")
        for key in ("k", "nll_k"):
            check_int(f"model.{key}", getattr(self, key))
        check_int("model.nll_every_n_epochs", self.nll_every_n_epochs, 0)
        n = self.nll_num_images
        ok = n is None or positive_int(n)
        require(ok, "model.nll_num_images", n, "null or an integer >= 1")
        require(
            self.k == 1 or self.free_bits == 0,
            "model.free_bits",
            self.free_bits,
            "0 when model.k > 1 (free bits act on the analytic KL of the ELBO, not on the IWAE "
            "bound)",
        )
        check_int("model.num_mixtures", self.num_mixtures)
        require(self.prior in PRIORS, "model.prior", self.prior, f"one of {list(PRIORS)}")
        check_int("model.num_pseudo_inputs", self.num_pseudo_inputs)
        require(
            self.prior == "standard" or self.free_bits == 0,
            "model.free_bits",
            self.free_bits,
            "0 with model.prior=vamp (its KL per latent dim has no closed form)",
        )
        check_optimizer("model.optimizer", self.optimizer)
        check_scheduler("model.lr_scheduler", self.lr_scheduler)
        check_speed_options(self)


@dataclass
class HierarchicalVAEConfig(VAEConfig):
    """The fields of :class:`VAEConfig` (``arch`` must be ``mlp``, ``prior`` ``standard``;
    ``latent_dim`` and ``hidden_dims`` are unused) plus:

    Attributes:
        latent_dims: sizes of z_1 (nearest x) .. z_L, e.g. ``[100, 50]`` (Burda et al.).
        layer_hidden_dims: deterministic hidden layers below each stochastic layer, e.g.
            ``[[200, 200], [100, 100]]``: x -200-200- z_1 -100-100- z_2 (the decoder runs them
            reversed). ``free_bits`` is per latent dim: layer l's batch-mean KL is clamped
            below at ``free_bits * latent_dims[l]`` nats (ELBO training only, ``k = 1``).
    """

    latent_dims: list[int] = field(default_factory=lambda: [100, 50])
    layer_hidden_dims: list[list[int]] = field(default_factory=lambda: [[200, 200], [100, 100]])

    def __post_init__(self):
        super().__post_init__()
        ok = isinstance(self.latent_dims, list | tuple) and len(self.latent_dims) >= 1
        ok = ok and all(positive_int(d) for d in self.latent_dims)
        require(ok, "model.latent_dims", self.latent_dims, "a list of integers >= 1")
        ok = isinstance(self.layer_hidden_dims, list | tuple) and len(
            self.layer_hidden_dims
        ) == len(self.latent_dims)
        ok = ok and all(
            isinstance(h, list | tuple) and all(positive_int(d) for d in h)
            for h in self.layer_hidden_dims
        )
        require(
            ok,
            "model.layer_hidden_dims",
            self.layer_hidden_dims,
            f"{len(self.latent_dims)} lists of integers >= 1 (one per entry of model.latent_dims)",
        )
        require(self.arch == "mlp", "model.arch", self.arch, "mlp (the hierarchical VAE)")
        require(self.prior == "standard", "model.prior", self.prior, "standard (hierarchical)")


@dataclass
class LadderVAEConfig(HierarchicalVAEConfig):
    """The fields of :class:`HierarchicalVAEConfig` (``arch`` mlp, ``prior`` standard; the
    defaults are the reference's README command, casperkaae/LVAE: 3 layers) plus:

    Attributes:
        latent_dims: sizes of z_1 (nearest x) .. z_L (reference: ``[64, 32, 16]``).
        layer_hidden_dims: the deterministic layers of each bottom-up MLP d_l (reference:
            two layers of 512, 256, 128); the top-down MLP of p(z_l | z_{l+1}) uses those of
            layer l+1, the decoder p(x | z_1) those of layer 1 (reversed).
        activation: ``leaky_relu`` (slope 0.01, the reference's lasagne ``leaky_rectify``) |
            ``tanh`` | ``relu`` | ``silu``.
        batch_norm: batch normalisation after every linear layer of the MLPs and of the
            Gaussian heads, not the output layer (the reference's ``-batch_norm True``); in
            eval mode (validation, ``genlab.eval``, sampling) the running statistics.
        share_top_down: the precision-weighted merge uses the generative prior's
            (mu_p, sigma_p) (Sønderby et al. 2016, section 2.2; the reference's
            ``-ladder_share_params True``); false: a separate inference top-down MLP gives the
            merged term (the reference's README runs ``False``).
        bottom_up_from: what the next bottom-up MLP reads: ``hidden`` (the deterministic
            d_l, the paper's d_n = MLP(d_{n-1})) | ``mean`` (mu_hat_l, the reference's
            ``-only_mu_up True``).
        variance_epsilon: added to every variance (softplus output; the reference's
            ``-lv_eps_z 1e-5``).
    """

    arch: str = "mlp"
    activation: str = "leaky_relu"
    latent_dims: list[int] = field(default_factory=lambda: [64, 32, 16])
    layer_hidden_dims: list[list[int]] = field(
        default_factory=lambda: [[512, 512], [256, 256], [128, 128]]
    )
    batch_norm: bool = True
    share_top_down: bool = True
    bottom_up_from: str = "hidden"
    variance_epsilon: float = 1e-5

    activations: ClassVar[tuple[str, ...]] = (*MLP_ACTIVATION_NAMES, "leaky_relu")

    def __post_init__(self):
        super().__post_init__()
        for key in ("batch_norm", "share_top_down"):
            value = getattr(self, key)
            require(isinstance(value, bool), f"model.{key}", value, "true or false")
        ok = self.bottom_up_from in LADDER_BOTTOM_UP
        require(ok, "model.bottom_up_from", self.bottom_up_from, f"one of {list(LADDER_BOTTOM_UP)}")
        ok = number(self.variance_epsilon) and self.variance_epsilon > 0
        require(ok, "model.variance_epsilon", self.variance_epsilon, "a number > 0")


@dataclass
class TopDownVAEConfig(VAEConfig):
    """The fields of :class:`VAEConfig` (``prior`` standard; ``arch``, ``latent_dim``,
    ``hidden_dims`` unused) plus:

    Attributes:
        width: channels of the bottom-up and top-down residual stacks.
        num_resolutions: R; the stacks run at S, S/2, ..., S/2^(R-1) (S divisible by 2^(R-1)).
        blocks_per_resolution: top-down cells (each with one latent layer) and bottom-up
            residual blocks per resolution; L = R * blocks_per_resolution latent layers.
        z_channels: channels of each latent layer (z_l is z_channels x r x r).
    """

    width: int = 64
    num_resolutions: int = 3
    blocks_per_resolution: int = 2
    z_channels: int = 8

    def __post_init__(self):
        super().__post_init__()
        for key in ("width", "num_resolutions", "blocks_per_resolution", "z_channels"):
            check_int(f"model.{key}", getattr(self, key))
        factor = 2 ** (self.num_resolutions - 1)
        ok = self.image_size % factor == 0
        require(ok, "model.image_size", self.image_size, f"a multiple of {factor}")
        require(self.prior == "standard", "model.prior", self.prior, "standard (top-down VAE)")
