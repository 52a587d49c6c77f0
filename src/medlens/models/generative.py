"""Class-conditional image generators from MONAI core's generative networks, 2D, 16-128 px.

Registered as ``kind="generator"``; each model holds all its parts in one module, so one
optimiser, one checkpoint and one ``model.safetensors`` carry it:

* ``cgan``: MONAI ``Generator`` + ``Discriminator`` (trained as DCGAN or WGAN-GP). MONAI has
  no class-conditional pair, so the class enters by concatenation: a one-hot code joins the
  noise vector of the generator, and one constant map per class joins the critic's input
  channels. The generator ends in ``tanh`` (images in [-1, 1]).
* ``ldm``: MONAI ``AutoencoderKL`` + ``DiffusionModelUNet`` with class embeddings
  (``num_class_embeds``); a buffer keeps the latent scale factor fitted at the start of
  the diffusion stage.

MONAI is imported when a model is built.
"""

from __future__ import annotations

import torch
from torch import nn

from medlens.errors import ConfigError
from medlens.models._base import ModelCfg
from medlens.models.registry import register_model

__all__ = ["ConditionalGAN", "LatentDiffusion", "cgan", "ldm"]

_CFG = ModelCfg(
    input_size=28, mean=(0.5,), std=(0.5,), imagenet=None, spatial_dims=(2,), kind="generator"
)


def _check_size(name: str, image_size: int, factor: int) -> None:
    if not 16 <= image_size <= 128 or image_size % factor:
        raise ConfigError(
            f"{name}: image_size must be in 16-128 and a multiple of {factor}, got {image_size}"
        )


def upsampling_stages(image_size: int) -> int:
    """How many times (1-4) the generator doubles its start grid (>= 4 px) to ``image_size``."""
    stages, side = 0, image_size
    while stages < 4 and side % 2 == 0 and side // 2 >= 4:
        stages, side = stages + 1, side // 2
    return max(stages, 1)


class ConditionalGAN(nn.Module):
    """A generator and a critic, both told the class (see the module docstring)."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        image_size: int,
        latent_dim: int = 64,
        base_channels: int = 32,
        critic: bool = False,
    ) -> None:
        from monai.networks.nets import Discriminator, Generator

        super().__init__()
        _check_size("cgan", image_size, 4)
        self.num_classes, self.in_chans, self.image_size = num_classes, in_chans, image_size
        self.latent_dim = latent_dim
        stages = upsampling_stages(image_size)
        start = image_size // 2**stages
        widths = [base_channels * 2 ** (stages - 1 - i) for i in range(stages)]
        self.generator = Generator(
            latent_shape=(latent_dim + num_classes,),
            start_shape=(base_channels * 2**stages, start, start),
            channels=[*widths[1:], in_chans],
            strides=[2] * stages,
            num_res_units=1,
            norm="BATCH",
        )
        self.discriminator = Discriminator(
            in_shape=(in_chans + num_classes, image_size, image_size),
            channels=list(reversed(widths)) + [widths[0] * 2],
            strides=[2] * (stages + 1),
            num_res_units=1,
            norm="INSTANCE",  # per sample: the gradient penalty stays per sample
            dropout=0.0 if critic else 0.25,
            last_act=None,  # logits (DCGAN) or critic scores (WGAN-GP)
        )

    def generate(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from ``(B, latent_dim)`` noise and ``(B,)`` class indices."""
        code = nn.functional.one_hot(labels, self.num_classes).to(noise.dtype)
        return torch.tanh(self.generator(torch.cat([noise, code], dim=1)))

    def critic(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One score per image (a logit for DCGAN), given the class."""
        b, _, h, w = images.shape
        maps = nn.functional.one_hot(labels, self.num_classes).to(images.dtype)
        maps = maps[:, :, None, None].expand(b, self.num_classes, h, w)
        return self.discriminator(torch.cat([images, maps], dim=1)).reshape(b)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.generate(noise, labels)


class LatentDiffusion(nn.Module):
    """A KL autoencoder and a class-conditional diffusion U-Net on its latents."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        image_size: int,
        base_channels: int = 32,
        latent_channels: int = 3,
    ) -> None:
        from monai.networks.nets import AutoencoderKL, DiffusionModelUNet

        super().__init__()
        _check_size("ldm", image_size, 4)
        self.num_classes, self.in_chans, self.image_size = num_classes, in_chans, image_size
        self.latent_channels = latent_channels
        groups = min(16, base_channels)
        self.autoencoder = AutoencoderKL(
            spatial_dims=2,
            in_channels=in_chans,
            out_channels=in_chans,
            num_res_blocks=1,
            channels=(base_channels, base_channels * 2),
            attention_levels=(False, False),
            latent_channels=latent_channels,
            norm_num_groups=groups,
            with_encoder_nonlocal_attn=False,
            with_decoder_nonlocal_attn=False,
        )
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=latent_channels,
            out_channels=latent_channels,
            num_res_blocks=1,
            channels=(base_channels * 2, base_channels * 4),
            attention_levels=(False, False),  # attention needs einops (not installed)
            norm_num_groups=groups,
            num_head_channels=base_channels,
            num_class_embeds=num_classes,
        )
        # 0 until the diffusion stage starts: then 1 / std of the training latents
        self.register_buffer("scale_factor", torch.zeros(()))

    @property
    def latent_size(self) -> int:
        return self.image_size // 2

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Scaled latents of images in [-1, 1] (a sample of the posterior)."""
        return self.autoencoder.encode_stage_2_inputs(images) * self.scale_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from scaled latents."""
        return self.autoencoder.decode_stage_2_outputs(latents / self.scale_factor).clamp(-1, 1)

    def forward(
        self, latents: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The predicted noise of noisy latents at ``timesteps``, given the class."""
        return self.unet(latents, timesteps, class_labels=labels)


@register_model(_CFG)
def cgan(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    latent_dim: int = 64,
    base_channels: int = 32,
    critic: bool = False,
) -> nn.Module:
    """Class-conditional GAN: MONAI Generator + Discriminator (DCGAN or WGAN-GP)."""
    return ConditionalGAN(
        num_classes=num_classes, in_chans=in_chans, image_size=image_size,
        latent_dim=latent_dim, base_channels=base_channels, critic=critic,
    )  # fmt: skip


@register_model(_CFG)
def ldm(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    base_channels: int = 32,
    latent_channels: int = 3,
) -> nn.Module:
    """Class-conditional latent diffusion: MONAI AutoencoderKL + DiffusionModelUNet."""
    return LatentDiffusion(
        num_classes=num_classes, in_chans=in_chans, image_size=image_size,
        base_channels=base_channels, latent_channels=latent_channels,
    )  # fmt: skip
