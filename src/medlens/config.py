"""Typed, validated training configuration.

A YAML file is data only: :func:`load_config` parses it and validates it once into a
:class:`TrainConfig`; unknown keys, wrong types and impossible combinations raise
:class:`~medlens.errors.ConfigError` with the offending key and file.

Every section is typed and checked here, before a run directory is written; sections that
belong to one task are refused for another (``segmentation:`` with ``task: binary``, a
classification loss for a segmentation run).

Example::

    data: {source: data/chest_xray, val_fraction: 0.15}
    task: binary
    model: {name: simple_cnn, image_size: 64}
    epochs: 20
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medlens.errors import ConfigError, MedlensError
from medlens.segmentation.plan import SegmentationOptions

__all__ = [
    "AdaptationConfig",
    "DataConfig",
    "FreezeConfig",
    "GenerationConfig",
    "LoraOptions",
    "LossConfig",
    "ModelConfig",
    "OptimizerConfig",
    "ProbeConfig",
    "ScheduleConfig",
    "ThresholdConfig",
    "TrackingConfig",
    "TrainConfig",
    "dump_config",
    "load_config",
    "parse_config",
]

Task = Literal["binary", "multiclass", "multilabel", "ordinal"]
TaskOption = Literal[
    "auto", "binary", "multiclass", "multilabel", "ordinal", "segmentation", "generation"
]
CLASSIFICATION_TASKS = ("binary", "multiclass", "multilabel", "ordinal")
#: losses of an ordinal task; ``coral`` and ``cumulative_link`` train a rank-consistent head
ORDINAL_LOSSES = ("ce", "coral", "cumulative_link")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where the images come from and how they are split.

    Give either ``manifest`` (a CSV written by ``medlens data``) or ``source``: a folder with
    one sub-folder per class (``train/`` and ``test/`` levels are honoured), or a MedMNIST
    ``.npz`` file with its official splits.
    """

    manifest: Path | None = None
    source: Path | None = None
    val_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.15, ge=0.0, lt=1.0)  # only when the data has no test split
    group_by_patient: bool = True
    train_split: str = "train"
    val_split: str = "val"
    classes: list[str] | None = None  # the class order (ordinal: lowest grade first)
    #: The most memory (bytes) the preprocessed float16 tensors of one split may take; past
    #: it, studies live in an LRU cache and are re-read on demand (one study over it: refused).
    cache_bytes: int = Field(8 * 2**30, ge=1)
    # keep this share of the training split's labels (patient-grouped, stratified, seeded)
    train_fraction: float = Field(1.0, gt=0.0, le=1.0)
    #: a generation run (generated on the fly) or a folder of generated images, mixed into
    #: the training split only: ``synthetic_fraction`` synthetic images per real one, per class
    augment_with: Path | None = None
    synthetic_fraction: float = Field(0.0, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _no_cache_switch(cls, values: Any) -> Any:
        """Runs before this version wrote ``cache: true``, a switch that did nothing."""
        if isinstance(values, dict) and "cache" in values:
            values = dict(values)
            if values.pop("cache") is not True:
                raise ValueError("data.cache is gone: splits are always cached, within "
                                 "data.cache_bytes (an LRU cache past it)")  # fmt: skip
        return values

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.manifest is None) == (self.source is None):
            raise ValueError("give exactly one of data.manifest or data.source")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError(f"data.classes: names repeat in {self.classes}")
        if (self.augment_with is None) != (self.synthetic_fraction == 0.0):
            raise ValueError("data.augment_with and data.synthetic_fraction > 0 go together")
        return self


class FreezeConfig(_Strict):
    """Freeze the backbone, then unfreeze it from ``unfreeze_epoch`` on (staged fine-tuning)."""

    backbone: bool = False
    unfreeze_epoch: int | None = Field(None, ge=0)


class ModelConfig(_Strict):
    name: str | None = None  # None: the task's default (simple_cnn; dynunet for segmentation)
    pretrained: bool | Literal["imagenet"] | Path = False
    in_chans: int | None = Field(None, ge=1)  # None: follow the data (RGB images: 3)
    image_size: int = Field(28, ge=8)
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    options: dict[str, Any] = Field(default_factory=dict)  # model-specific create_model kwargs
    freeze: FreezeConfig = FreezeConfig()
    # licences accepted for gated or non-commercial foundation weights (medlens models --info)
    accept_license: list[str] = Field(default_factory=list)
    # recompute block activations in the backward pass (less memory, more compute)
    grad_checkpointing: bool = False


class LossConfig(_Strict):
    """``auto`` is cross-entropy for multiclass, CORAL for ordinal, binary cross-entropy
    otherwise. ``coral`` (Cao et al. 2020) and ``cumulative_link`` (ordinal logistic
    regression) are for ordinal tasks only."""

    name: Literal["auto", "ce", "bce", "focal", "coral", "cumulative_link"] = "auto"
    class_weights: Literal["balanced"] | list[float] | None = None
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5)
    focal_gamma: float = Field(2.0, ge=0.0)


class OptimizerConfig(_Strict):
    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    l1: float = Field(0.0, ge=0.0)
    # layer-wise lr decay: stage k of n trains at lr * layer_decay ** (n - k); the head at lr
    layer_decay: float | None = Field(None, gt=0.0, le=1.0)


class ScheduleConfig(_Strict):
    name: Literal["cosine", "step", "plateau", "constant"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0.0)
    min_lr_ratio: float = Field(0.01, ge=0.0, le=1.0)
    step_epochs: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0.0, le=1.0)
    plateau_patience: int = Field(2, ge=0)


class ThresholdConfig(_Strict):
    """How the binary decision threshold is chosen on the validation split."""

    method: Literal["youden", "accuracy", "sensitivity", "fixed"] = "youden"
    target_sensitivity: float = Field(0.95, gt=0.0, le=1.0)
    value: float = Field(0.5, gt=0.0, lt=1.0)


class ProbeConfig(_Strict):
    """A head on cached embeddings: ``linear``, or ``mlp`` with one hidden layer."""

    head: Literal["linear", "mlp"] = "linear"
    hidden: int = Field(256, ge=1)  # mlp only
    cache_dir: Path | None = None  # None: <output_dir>/../embeddings-cache


class LoraOptions(_Strict):
    """LoRA adapters (peft) on a frozen backbone; the classifier head is trained fully.

    ``target_modules: auto`` picks attention projections for transformers and pointwise
    (1x1) convolutions and linear layers for CNNs (:func:`medlens.models.lora.default_targets`).
    """

    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: Literal["auto"] | list[str] = "auto"


class AdaptationConfig(_Strict):
    """How a (pretrained) model is adapted: all weights, a probe on embeddings, or LoRA."""

    mode: Literal["full", "probe", "lora"] = "full"
    probe: ProbeConfig = ProbeConfig()
    lora: LoraOptions = LoraOptions()


class GenerationConfig(_Strict):
    """A class-conditional image generator (``task: generation``), 2D, 16-128 px.

    ``dcgan`` and ``wgan_gp`` train MONAI's Generator/Discriminator pair (conditioned by
    concatenating a one-hot class code); ``ldm`` trains MONAI's AutoencoderKL for the first
    ``autoencoder_epochs`` epochs, then a class-conditional DiffusionModelUNet on its
    latents (DDPM noise-prediction loss), sampled with DDIM (or DDPM) steps.
    """

    method: Literal["dcgan", "wgan_gp", "ldm"] = "dcgan"
    latent_dim: int = Field(64, ge=1)  # GAN noise size
    base_channels: int = Field(32, ge=4)  # width of the first/last layers
    lr: float | None = Field(None, gt=0.0)  # None: 2e-4 (dcgan), 1e-4 (wgan_gp, ldm)
    n_critic: int = Field(5, ge=1)  # wgan_gp: critic steps per generator step
    gp_weight: float = Field(10.0, ge=0.0)  # wgan_gp: gradient penalty weight
    autoencoder_epochs: int | None = Field(None, ge=1)  # ldm; None: a third of the epochs
    kl_weight: float = Field(1e-6, ge=0.0)  # ldm autoencoder
    timesteps: int = Field(1000, ge=2)  # ldm: DDPM training steps
    sampler: Literal["ddim", "ddpm"] = "ddim"  # ldm
    sampler_steps: int = Field(50, ge=1)  # ldm: DDIM steps (ddpm: all timesteps)
    # ldm: each step's predicted clean latent is clipped to +-this many latent SDs (latents
    # are scaled to unit variance); without it DDIM from an imperfect U-Net can diverge
    sampler_clip: float | None = Field(4.0, gt=0.0)


class TrackingConfig(_Strict):
    """Experiment tracking (``medlens train --track mlflow``); needs ``medlens[track]``.

    ``uri``: an MLflow tracking URI; default ``MLFLOW_TRACKING_URI``, else
    ``sqlite:///<cwd>/mlruns.db`` with artifacts in ``<cwd>/mlartifacts`` (no server).
    """

    backend: Literal["mlflow"] = "mlflow"
    uri: str | None = None
    experiment: str = Field("medlens", min_length=1)


class TrainConfig(_Strict):
    """Everything one training run needs; stored as ``config.yaml`` in the run directory."""

    data: DataConfig
    task: TaskOption = "auto"
    model: ModelConfig = ModelConfig()
    preprocessing: dict[str, Any] = Field(default_factory=dict)  # Preprocessing fields
    augmentation: dict[str, Any] | str = Field(default_factory=dict)  # Augmentation or preset
    segmentation: SegmentationOptions | None = None  # only for task segmentation
    generation: GenerationConfig | None = None  # only for task generation
    adaptation: AdaptationConfig = AdaptationConfig()
    loss: LossConfig = LossConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    epochs: int = Field(10, ge=1)
    batch_size: int | None = Field(None, ge=1)  # the global batch; None: 64, or the plan's
    early_stopping_patience: int | None = Field(None, ge=1)
    grad_clip: float | None = Field(None, gt=0.0)  # max gradient norm; segmentation: 12
    threshold: ThresholdConfig = ThresholdConfig()
    temperature_scaling: bool = True
    seed: int = 0
    deterministic: bool = True
    channels_last: bool | None = None  # None: on for 2D models, off for 3D
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # fp16: CUDA, grad scaling
    #: validate and keep an exponential moving average of the weights (e.g. 0.999); None: off
    ema_decay: float | None = Field(None, gt=0.0, lt=1.0)
    num_workers: int = Field(0, ge=0)
    num_threads: int | None = Field(None, ge=1)  # torch intra-op threads; None: torch's default
    output_dir: Path = Path("runs/run")
    tracking: TrackingConfig | None = None  # None: not tracked

    @property
    def is_segmentation(self) -> bool:
        """Whether this config asks for segmentation (``task`` or a ``segmentation:`` section)."""
        return self.task == "segmentation" or self.segmentation is not None

    @model_validator(mode="after")
    def _coherent(self) -> TrainConfig:
        if self.segmentation is not None and self.task in CLASSIFICATION_TASKS:
            raise ValueError(f"segmentation: this section needs task segmentation, not {self.task}")
        if self.is_segmentation and self.loss.name != "auto":
            raise ValueError("loss: segmentation trains with Dice + cross-entropy; leave loss.name")
        if self.loss.name == "ce" and self.task not in ("auto", "multiclass", "ordinal"):
            raise ValueError(f"loss 'ce' needs task multiclass; use 'bce' for {self.task}")
        if self.loss.name == "bce" and self.task in ("multiclass", "ordinal"):
            raise ValueError("loss 'bce' needs task binary or multilabel; use 'ce' for multiclass")
        if self.loss.name in ("coral", "cumulative_link") and self.task != "ordinal":
            raise ValueError(f"loss {self.loss.name!r} needs task ordinal, not {self.task}")
        if self.task == "ordinal" and self.loss.name not in ("auto", *ORDINAL_LOSSES):
            raise ValueError(f"task ordinal trains with {', '.join(ORDINAL_LOSSES)}")
        if self.model.freeze.unfreeze_epoch is not None and not self.model.freeze.backbone:
            raise ValueError("model.freeze.unfreeze_epoch needs model.freeze.backbone: true")
        if self.adaptation.mode == "probe" and self.is_segmentation:
            raise ValueError("adaptation.mode probe is for classification, not segmentation")
        if self.adaptation.mode == "lora" and self.is_segmentation:
            raise ValueError("adaptation.mode lora is for classification, not segmentation")
        if self.adaptation.mode == "lora" and self.model.freeze.backbone:
            raise ValueError("adaptation.mode lora freezes the backbone itself; drop model.freeze")
        if self.adaptation.mode == "lora" and not self.model.pretrained:
            raise ValueError("adaptation.mode lora adapts pretrained weights: set model.pretrained")
        if self.adaptation.mode == "probe" and self.optimizer.layer_decay is not None:
            raise ValueError("optimizer.layer_decay is for fine-tuning, not a probe's head")
        _check_section("preprocessing", self.preprocessing)
        _check_section("augmentation", self.augmentation)
        _check_generation(self)
        return self


def _check_generation(config: TrainConfig) -> None:
    """``generation:`` only with ``task: generation``; no classification-only keys there."""
    if config.generation is not None and config.task != "generation":
        raise ValueError(f"generation: this section needs task generation, not {config.task}")
    if config.task != "generation":
        return
    if config.loss.name != "auto" or config.adaptation.mode != "full":
        raise ValueError("task generation trains its own losses; leave loss and adaptation")
    if config.data.augment_with is not None:
        raise ValueError("data.augment_with is for classifiers, not task generation")
    method = (config.generation or GenerationConfig()).method
    stage = (config.generation or GenerationConfig()).autoencoder_epochs
    if method == "ldm" and (config.epochs < 2 or (stage or 1) >= config.epochs):
        raise ValueError("ldm needs epochs > generation.autoencoder_epochs (>= 1 each stage)")


def _check_section(name: str, value: Any) -> None:
    """Validate a free-form section against its transform's own model, at config time."""
    from pydantic import ValidationError as PydanticError

    if name == "preprocessing":
        from medlens.transforms.preprocess import preprocessing_from_dict

        try:
            preprocessing_from_dict(value, source=name)
        except MedlensError as exc:
            raise ValueError(str(exc)) from None
    elif value:
        from medlens.transforms.augment import Augmentation

        try:
            Augmentation.model_validate(value)
        except PydanticError as exc:
            raise ValueError(f"augmentation: {exc.errors()[0]['msg']}") from None


def parse_config(data: dict[str, Any], *, source: str = "config") -> TrainConfig:
    """Validate a plain dict into a :class:`TrainConfig` (``ConfigError`` on any problem)."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a YAML config; ``overrides`` are dotted keys (``model.name="resnet18"``)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    for dotted, value in overrides.items():
        set_dotted(data, dotted, value)
    return parse_config(data, source=str(path))


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``dotted="a.b"``, creating mappings on the way."""
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted}: {key} is not a mapping")
    node[last] = value


def dump_config(config: TrainConfig) -> str:
    """The config as YAML (paths as strings), ready to be read back by :func:`load_config`."""
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
