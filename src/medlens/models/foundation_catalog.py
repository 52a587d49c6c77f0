"""The foundation-backbone catalogue as data: one mapping per backbone (no code).

Fields (read by :class:`medlens.models.foundation.FoundationEntry`):

- ``source``: ``hf`` (transformers ``AutoModel``), ``timm`` or ``open_clip`` (vision tower);
- ``repo_id``: the Hugging Face hub repository holding the weights;
- ``revision``: a pinned commit hash, or None where none could be verified (offline when
  this table was written): the hub's ``main`` is then used and its commit is recorded;
- ``sha256``: weight file name -> SHA-256. Empty where no hash could be verified: the files
  are then hashed at first use, the hash recorded (trust on first use) and the user told;
- ``input_size``, ``mean``, ``std``: the defaults; a snapshot's own preprocessing file
  (``preprocessor_config.json``, timm ``pretrained_cfg``, open_clip ``preprocess_cfg``)
  takes precedence when weights are loaded;
- ``license``, ``license_url``, ``gated`` (hub access must be requested), ``non_commercial``;
- ``dim`` and ``embedding``: the feature dimension and which token or pool gives it;
- ``arch``: the architecture built without weights (random initialisation, or the rebuild
  of a trained run whose card carries the snapshot's own architecture);
- ``loadable``: False for entries listed for their licence but not loadable by medlens;
- ``notes``: what a user should know, including what was not verified.
"""

from __future__ import annotations

from typing import Any

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
OPENAI_CLIP = {
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
}
UNVERIFIED = (
    "Revision and SHA-256 not verified offline: the first download records the hub commit "
    "and the file hashes (trust on first use) and medlens prints them."
)

CATALOG: tuple[dict[str, Any], ...] = (
    {
        "name": "rad_dino",
        "title": "RAD-DINO: DINOv2 ViT-B/14 trained on chest X-rays (Microsoft)",
        "source": "hf",
        "repo_id": "microsoft/rad-dino",
        "revision": None,
        "sha256": {},
        "files": ["model.safetensors"],
        "input_size": 518,
        "mean": [0.5307, 0.5307, 0.5307],
        "std": [0.2583, 0.2583, 0.2583],
        "license": "MIT",
        "license_url": "https://huggingface.co/microsoft/rad-dino",
        "gated": False,
        "non_commercial": False,
        "dim": 768,
        "embedding": "CLS token of the last layer after the final layer norm (pooler_output)",
        "arch": {"model_type": "dinov2", "image_size": 518, "patch_size": 14},
        "loadable": True,
        "notes": UNVERIFIED
        + " Mean/std defaults are the values of the repo's preprocessor_config.json as "
        "remembered; the snapshot's file is read when present.",
    },
    {
        "name": "biomedclip",
        "title": "BiomedCLIP ViT-B/16 image tower (Microsoft, PMC-15M)",
        "source": "open_clip",
        "repo_id": "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
        "revision": None,
        "sha256": {},
        "files": ["open_clip_model.safetensors"],
        "input_size": 224,
        **OPENAI_CLIP,
        "license": "MIT",
        "license_url": "https://huggingface.co/microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
        "gated": False,
        "non_commercial": False,
        "dim": 512,
        "embedding": "projected image embedding of the CLIP image tower (before L2 norm)",
        "arch": {
            "model_cfg": {
                "embed_dim": 512,
                "vision_cfg": {
                    "timm_model_name": "vit_base_patch16_224",
                    "timm_model_pretrained": False,
                    "timm_pool": "",
                    "timm_proj": "linear",
                    "image_size": 224,
                },
            }
        },
        "loadable": True,
        "notes": UNVERIFIED
        + " Only the image tower is built and loaded (open_clip hf-hub layout); the "
        "PubMedBERT text tower is not needed for embeddings or fine-tuning.",
    },
    {
        "name": "dinov2_vits14",
        "title": "DINOv2 ViT-S/14 (Meta, LVD-142M) through timm",
        "source": "timm",
        "repo_id": "timm/vit_small_patch14_dinov2.lvd142m",
        "revision": None,
        "sha256": {},
        "files": ["model.safetensors"],
        "input_size": 518,
        **IMAGENET,
        "license": "Apache-2.0",
        "license_url": "https://github.com/facebookresearch/dinov2/blob/main/LICENSE",
        "gated": False,
        "non_commercial": False,
        "dim": 384,
        "embedding": "class token after the final norm (timm forward_head pre_logits)",
        "arch": {"architecture": "vit_small_patch14_dinov2", "model_args": {}},
        "loadable": True,
        "notes": UNVERIFIED,
    },
    {
        "name": "dinov2_vitb14",
        "title": "DINOv2 ViT-B/14 (Meta, LVD-142M) through timm",
        "source": "timm",
        "repo_id": "timm/vit_base_patch14_dinov2.lvd142m",
        "revision": None,
        "sha256": {},
        "files": ["model.safetensors"],
        "input_size": 518,
        **IMAGENET,
        "license": "Apache-2.0",
        "license_url": "https://github.com/facebookresearch/dinov2/blob/main/LICENSE",
        "gated": False,
        "non_commercial": False,
        "dim": 768,
        "embedding": "class token after the final norm (timm forward_head pre_logits)",
        "arch": {"architecture": "vit_base_patch14_dinov2", "model_args": {}},
        "loadable": True,
        "notes": UNVERIFIED,
    },
    {
        "name": "dinov3_vits16",
        "title": "DINOv3 ViT-S/16 (Meta, LVD-1689M) through timm",
        "source": "timm",
        "repo_id": "timm/vit_small_patch16_dinov3.lvd1689m",
        "revision": None,
        "sha256": {},
        "files": ["model.safetensors"],
        "input_size": 224,
        **IMAGENET,
        "license": "DINOv3",
        "license_url": "https://ai.meta.com/resources/models-and-libraries/dinov3-license/",
        "gated": True,
        "non_commercial": False,
        "dim": 384,
        "embedding": "class token after the final norm (timm forward_head pre_logits)",
        "arch": {"architecture": "vit_small_patch16_dinov3", "model_args": {}},
        "loadable": True,
        "notes": UNVERIFIED
        + " The DINOv3 License is Meta's own (not an open-source licence) and Meta's hub "
        "copies are gated; read it before use. The timm repo id is not verified offline.",
    },
    {
        "name": "dinov3_vitb16",
        "title": "DINOv3 ViT-B/16 (Meta, LVD-1689M) through timm",
        "source": "timm",
        "repo_id": "timm/vit_base_patch16_dinov3.lvd1689m",
        "revision": None,
        "sha256": {},
        "files": ["model.safetensors"],
        "input_size": 224,
        **IMAGENET,
        "license": "DINOv3",
        "license_url": "https://ai.meta.com/resources/models-and-libraries/dinov3-license/",
        "gated": True,
        "non_commercial": False,
        "dim": 768,
        "embedding": "class token after the final norm (timm forward_head pre_logits)",
        "arch": {"architecture": "vit_base_patch16_dinov3", "model_args": {}},
        "loadable": True,
        "notes": UNVERIFIED
        + " The DINOv3 License is Meta's own (not an open-source licence) and Meta's hub "
        "copies are gated; read it before use. The timm repo id is not verified offline.",
    },
    {
        "name": "uni",
        "title": "UNI ViT-L/16 pathology encoder (Mahmood Lab)",
        "source": "timm",
        "repo_id": "MahmoodLab/UNI",
        "revision": None,
        "sha256": {},
        "files": ["model.safetensors"],
        "input_size": 224,
        **IMAGENET,
        "license": "CC-BY-NC-ND-4.0",
        "license_url": "https://huggingface.co/MahmoodLab/UNI",
        "gated": True,
        "non_commercial": True,
        "dim": 1024,
        "embedding": "class token after the final norm (timm forward_head pre_logits)",
        "arch": {
            "architecture": "vit_large_patch16_224",
            "model_args": {"init_values": 1e-5, "dynamic_img_size": True},
        },
        "loadable": True,
        "notes": UNVERIFIED
        + " Gated and non-commercial (CC-BY-NC-ND 4.0; the hub page adds its own terms). "
        "medlens loads safetensors only: where the repository offers a pickle "
        "(pytorch_model.bin) only, convert it yourself where you trust it and point "
        "model.pretrained at the folder.",
    },
    {
        "name": "conch",
        "title": "CONCH ViT-B/16 pathology vision-language model (Mahmood Lab)",
        "source": "open_clip",
        "repo_id": "MahmoodLab/CONCH",
        "revision": None,
        "sha256": {},
        "files": ["open_clip_model.safetensors"],
        "input_size": 448,
        **OPENAI_CLIP,
        "license": "CC-BY-NC-ND-4.0",
        "license_url": "https://huggingface.co/MahmoodLab/CONCH",
        "gated": True,
        "non_commercial": True,
        "dim": 512,
        "embedding": "projected image embedding",
        "arch": None,
        "loadable": False,
        "notes": "Listed for its licence and gate only: CONCH is distributed for its own "
        "`conch` package (a CoCa model), not in open_clip's hf-hub layout, so medlens "
        "cannot build or load it. Revision and hashes not verified.",
    },
)
