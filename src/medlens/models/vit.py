"""``vit_small``: a compact Vision Transformer for small medical images."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.ops import MLP, StochasticDepth

from medlens.errors import ConfigError, ModelError
from medlens.models._base import Classifier, ModelCfg
from medlens.models.registry import register_model

_CFG = ModelCfg(input_size=224, mean=(0.5,), std=(0.5,), imagenet=None)


class _Embed(nn.Module):
    """Patch embedding, class token and learned position embedding (resized on demand)."""

    def __init__(self, in_chans: int, dim: int, patch: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.patch = patch
        self.grid = grid
        self.proj = nn.Conv2d(in_chans, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid[0] * grid[1], dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1) + self._pos_embed(grid)

    def _pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        if grid == self.grid:
            return self.pos_embed
        cls, patches = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        patches = patches.reshape(1, *self.grid, -1).permute(0, 3, 1, 2)
        patches = nn.functional.interpolate(patches, size=grid, mode="bicubic", align_corners=False)
        return torch.cat([cls, patches.flatten(2).transpose(1, 2)], dim=1)


class _Block(nn.Module):
    """Pre-norm transformer block: self-attention then MLP, each with a residual."""

    def __init__(
        self, dim: int, heads: int, mlp_ratio: float, drop: float, drop_path: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=drop, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, [int(dim * mlp_ratio), dim], activation_layer=nn.GELU, dropout=drop)
        self.drop_path = StochasticDepth(drop_path, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.drop_path(self.attn(h, h, h, need_weights=False)[0])
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VisionTransformer(Classifier):
    """ViT with a class token; any input whose sides are multiples of the patch size."""

    classifier_name = "head"
    stem_conv = "embed.proj"

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        image_size: int,
        patch_size: int,
        dim: int,
        depth: int,
        heads: int,
        drop_rate: float,
        drop_path_rate: float,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans, cfg=_CFG)
        if image_size % patch_size or dim % heads:
            raise ConfigError(
                f"vit: image_size {image_size} must be a multiple of patch_size {patch_size} "
                f"and dim {dim} of heads {heads}"
            )
        self.patch_size = patch_size
        self.embed = _Embed(in_chans, dim, patch_size, (image_size // patch_size,) * 2)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(*(_Block(dim, heads, 4.0, drop_rate, r) for r in rates))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(dim, num_classes)
        self.cam_layer = f"blocks.{depth - 1}.norm1"
        blocks = tuple((f"blocks.{i}",) for i in range(depth))
        self.stages = (("embed",), *blocks[:-1], (*blocks[-1], "norm"))
        self.apply(_init_linear)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.patch_size or x.shape[-2] % self.patch_size:
            raise ModelError(
                f"{self.model_name}: input {tuple(x.shape[-2:])} is not a multiple of the "
                f"patch size {self.patch_size}"
            )
        return self.norm(self.blocks(self.embed(x)))

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x[:, 0])
        return x if pre_logits else self.head(x)

    def reshape_transform(self, input_shape: tuple[int, ...]) -> Callable:
        """Drop the class token and lay the patch tokens out on their (rows, cols) grid."""
        rows, cols = (s // self.patch_size for s in input_shape[-2:])

        def to_grid(tokens: torch.Tensor) -> torch.Tensor:
            grid = tokens[:, 1:].reshape(tokens.shape[0], rows, cols, tokens.shape[-1])
            return grid.permute(0, 3, 1, 2)

        return to_grid


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


@register_model(_CFG)
def vit_small(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int,
    drop_rate: float,
    patch_size: int | None = None,
    dim: int = 192,
    depth: int = 6,
    heads: int = 3,
    drop_path_rate: float = 0.1,
) -> VisionTransformer:
    """Small ViT (2.7 M parameters at dim 192, depth 6); patch 4 up to 64 px, else 16."""
    return VisionTransformer(
        num_classes=num_classes,
        in_chans=in_chans,
        image_size=image_size,
        patch_size=patch_size or (4 if image_size <= 64 else 16),
        dim=dim,
        depth=depth,
        heads=heads,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
