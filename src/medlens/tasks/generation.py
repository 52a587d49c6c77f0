"""Class-conditional image generation (``task: generation``) on the shared trainer.

The registry's generators (:mod:`medlens.models.generative`) train with the task's own
step (:data:`~medlens.training.loop.StepFn`) and one Adam optimiser whose parameter groups
are the model's parts; a part without gradients in a step is not updated by it:

* ``dcgan``: non-saturating GAN loss (logits), one critic step and one generator step per
  batch;
* ``wgan_gp``: Wasserstein critic with gradient penalty (Gulrajani et al. 2017), one
  generator step every ``n_critic`` critic steps;
* ``ldm``: the KL autoencoder (L1 + ``kl_weight`` KL) for ``autoencoder_epochs`` epochs,
  then the class-conditional diffusion U-Net on its frozen latents (DDPM noise MSE).
  MONAI's ``LatentDiffusionInferer`` passes no ``class_labels`` to the U-Net, so the step
  (and :func:`medlens.generation.sample`) call MONAI's DDPM/DDIM schedulers directly. The
  autoencoder has no adversarial or perceptual loss (no pretrained network offline).

Images are cached once in [-1, 1]. Noise comes from torch's global generator, which the
trainer seeds and checkpoints, so a resumed run continues bit-for-bit. There is no
validation figure: the last epoch's weights are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from medlens.config import GenerationConfig
from medlens.errors import ConfigError
from medlens.tasks.base import Task, TaskSetup

if TYPE_CHECKING:
    from medlens.training.distributed import DistContext
    from medlens.training.loop import Trainer

__all__ = ["DEFAULT_LR", "GenerationTask", "sampler_settings"]

DEFAULT_LR = {"dcgan": 2e-4, "wgan_gp": 1e-4, "ldm": 1e-4}
_BETAS = {"dcgan": (0.5, 0.999), "wgan_gp": (0.0, 0.9), "ldm": (0.9, 0.999)}
DEFAULT_BATCH_SIZE = 64


class GenerationTask(Task):
    """Images of each class from noise; the card's ``generation`` section says how."""

    name = "generation"
    monitor = "none"  # no validation figure: the last weights are kept

    @property
    def options(self) -> GenerationConfig:
        return self.config.generation or GenerationConfig()

    @property
    def default_model(self) -> str:  # type: ignore[override]
        return "ldm" if self.options.method == "ldm" else "cgan"

    def check(self) -> None:
        from medlens.models import model_info

        info = model_info(self.model_name)
        if info.kind != "generator":
            raise ConfigError(f"model {self.model_name!r} is a {info.kind}; generation needs a "
                              "generator (`medlens models --kind generator`)")  # fmt: skip
        wanted = "ldm" if self.options.method == "ldm" else "cgan"
        if self.model_name != wanted:
            raise ConfigError(f"generation.method {self.options.method} trains {wanted}")
        if self.manifest.task != "multiclass":
            raise ConfigError("generation needs one class label per image (class folders)")
        if self.data_dims != 2:
            raise ConfigError("generation is 2D only; these images are volumes")

    def setup(
        self, run_dir: Path, device: torch.device, dist: DistContext, *, resume: bool
    ) -> TaskSetup:
        from medlens.models import create_model
        from medlens.training.data import CachedDataset, make_loader, preprocess_split
        from medlens.transforms.preprocess import preprocessing_from_dict

        if dist.enabled:
            raise ConfigError("generation trains in one process; run it without torchrun")
        config, options = self.config, self.options
        kwargs = self._create_kwargs()
        model = create_model(**kwargs)
        size = config.model.image_size
        preprocessing = preprocessing_from_dict({
            "spatial_size": [size, size], "channels": self.in_chans, "mean": [0.5], "std": [0.5],
            **config.preprocessing,
        })  # fmt: skip
        split = self.manifest.split(config.data.train_split)
        cache = config.data.cache_bytes
        x, y = preprocess_split(split, preprocessing, "multiclass", max_bytes=cache)
        loader = make_loader(
            CachedDataset(x, y, seed=config.seed), train=True, seed=config.seed, dist=dist,
            batch_size=config.batch_size or DEFAULT_BATCH_SIZE, num_workers=config.num_workers,
        )  # fmt: skip
        optimizer = self._optimizer(model)
        step = _STEPS[options.method](options, self._autoencoder_epochs())
        classes = len(self.manifest.classes)
        note = f"{options.method} on {len(split)} {size}px images of {classes} classes"
        return TaskSetup(
            model, loader, None, nn.Identity(), preprocessing, self.manifest.classes, kwargs,
            notes=[note], optimizer=optimizer, step_fn=step,
        )  # fmt: skip

    def _create_kwargs(self) -> dict[str, Any]:
        options = self.options
        kwargs = {
            "name": self.model_name,
            "num_classes": len(self.manifest.classes),
            "in_chans": self.in_chans,
            "image_size": self.config.model.image_size,
            "base_channels": options.base_channels,
        }
        if options.method != "ldm":
            kwargs |= {"latent_dim": options.latent_dim, "critic": options.method == "wgan_gp"}
        return {**kwargs, **self.config.model.options}

    def _autoencoder_epochs(self) -> int:
        return self.options.autoencoder_epochs or max(1, self.config.epochs // 3)

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        method = self.options.method
        lr = self.options.lr or DEFAULT_LR[method]
        parts = ("autoencoder", "unet") if method == "ldm" else ("discriminator", "generator")
        groups = [{"params": getattr(model, part).parameters()} for part in parts]
        decay = self.config.optimizer.weight_decay if method == "ldm" else 0.0
        return torch.optim.AdamW(groups, lr=lr, betas=_BETAS[method], weight_decay=decay)

    def prepare_target(self, target: torch.Tensor) -> torch.Tensor:
        return target.long()

    def validate(self, trainer: Trainer) -> dict[str, float]:
        return {}

    def card_fields(self, trainer: Trainer, setup: TaskSetup) -> dict[str, Any]:
        options = self.options
        extra: dict[str, Any] = {"lr": options.lr or DEFAULT_LR[options.method]}
        if options.method == "wgan_gp":
            extra |= {"n_critic": options.n_critic, "gp_weight": options.gp_weight}
        if options.method == "ldm":
            stage = self._autoencoder_epochs()
            extra |= {"autoencoder_epochs": stage, "kl_weight": options.kl_weight}
        return {
            "generation": {
                "method": options.method,
                "image_size": self.config.model.image_size,
                "in_chans": self.in_chans,
                "sampler": sampler_settings(options),
                "options": extra,
            }
        }


def sampler_settings(options: GenerationConfig) -> dict[str, Any]:
    """How samples are drawn: noise through the generator, or DDIM/DDPM steps."""
    if options.method != "ldm":
        return {"name": "noise", "latent_dim": options.latent_dim}
    steps = options.sampler_steps if options.sampler == "ddim" else options.timesteps
    return {
        "name": options.sampler, "steps": steps, "timesteps": options.timesteps, "eta": 0.0,
        "clip": options.sampler_clip,
    }  # fmt: skip


def _step_optimizer(trainer: Trainer, loss: torch.Tensor, frozen: nn.Module | None) -> None:
    """Back-propagate ``loss`` and step; ``frozen``'s gradients are dropped first."""
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if frozen is not None:
        for parameter in frozen.parameters():
            parameter.grad = None
    trainer.optimizer.step()


def _dcgan_step(options: GenerationConfig, _stage: int) -> Any:
    bce = nn.functional.binary_cross_entropy_with_logits

    def step(trainer: Trainer, images: torch.Tensor, labels: torch.Tensor) -> float:
        model = trainer.model
        noise = torch.randn(len(images), model.latent_dim, device=images.device)
        fake = model.generate(noise, labels)
        real_logits, fake_logits = model.critic(images, labels), model.critic(fake.detach(), labels)
        loss_d = bce(real_logits, torch.ones_like(real_logits)) + bce(
            fake_logits, torch.zeros_like(fake_logits)
        )
        _step_optimizer(trainer, loss_d, None)  # fake detached: only the critic has gradients
        gen_logits = model.critic(fake, labels)
        _step_optimizer(trainer, bce(gen_logits, torch.ones_like(gen_logits)), model.discriminator)
        return float(loss_d.detach())

    return step


def _wgan_gp_step(options: GenerationConfig, _stage: int) -> Any:
    def step(trainer: Trainer, images: torch.Tensor, labels: torch.Tensor) -> float:
        model = trainer.model
        noise = torch.randn(len(images), model.latent_dim, device=images.device)
        fake = model.generate(noise, labels)
        real_score = model.critic(images, labels).mean()
        w_distance = real_score - model.critic(fake.detach(), labels).mean()
        penalty = gradient_penalty(model, images, fake.detach(), labels)
        loss_d = -w_distance + options.gp_weight * penalty
        _step_optimizer(trainer, loss_d, None)
        if (trainer.state.step + 1) % options.n_critic == 0:
            loss_g = -model.critic(fake, labels).mean()
            _step_optimizer(trainer, loss_g, model.discriminator)
        return float(loss_d.detach())

    return step


def gradient_penalty(
    model: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean ``(||grad critic(x_hat)||_2 - 1)^2`` on random interpolates of real and fake."""
    eps = torch.rand(len(real), 1, 1, 1, device=real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = model.critic(mixed, labels)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _ldm_step(options: GenerationConfig, autoencoder_epochs: int) -> Any:
    from monai.networks.schedulers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=options.timesteps)

    def step(trainer: Trainer, images: torch.Tensor, labels: torch.Tensor) -> float:
        model = trainer.model
        if trainer.state.epoch < autoencoder_epochs:
            recon, mu, sigma = model.autoencoder(images)
            kl = 0.5 * (mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2) + 1e-8) - 1)
            loss = (recon - images).abs().mean() + options.kl_weight * kl.flatten(1).sum(1).mean()
            _step_optimizer(trainer, loss, None)
            return float(loss.detach())
        with torch.no_grad():
            if float(model.scale_factor) == 0.0:  # first diffusion batch: unit-variance latents
                std = model.autoencoder.encode_stage_2_inputs(images).std()
                model.scale_factor.fill_(1.0 / float(std.clamp_min(1e-6)))
            latents = model.encode(images)
        noise = torch.randn_like(latents)
        t = torch.randint(0, options.timesteps, (len(images),), device=images.device)
        predicted = model(scheduler.add_noise(latents, noise, t), t, labels)
        loss = nn.functional.mse_loss(predicted.float(), noise)
        _step_optimizer(trainer, loss, model.autoencoder)
        return float(loss.detach())

    return step


_STEPS = {"dcgan": _dcgan_step, "wgan_gp": _wgan_gp_step, "ldm": _ldm_step}
