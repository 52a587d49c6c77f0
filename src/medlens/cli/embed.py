"""``medlens embed``: embeddings of a dataset from a registry model or a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, handle_errors


@handle_errors
def embed(
    model: str = typer.Argument(..., help="A registry model name, or a run directory."),
    data: Path = typer.Argument(..., help="A manifest (CSV or folder) or a dataset source."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write the embeddings to."),
    pretrained: str = typer.Option(
        "imagenet", help="Weights of a registry model: imagenet, none, or a weights file."
    ),
    image_size: int = typer.Option(None, help="Input side for a registry model (its own)."),
    dtype: str = typer.Option("float32", help="float32 or float16."),
    batch_size: int = typer.Option(64, min=1),
    accept_license: list[str] = typer.Option(
        [], "--accept-license", help="Accept this licence for gated/non-commercial weights."
    ),
) -> None:
    """Write the embeddings of every image in DATA to OUTPUT (reused when nothing changed).

    Examples:

        medlens embed efficientnet_lite0 data/pneumoniamnist.npz -o emb/lite0
        medlens embed runs/pneumonia runs/pneumonia/manifest.csv -o emb/run
        medlens embed rad_dino data/kermany --image-size 224 -o emb/rad_dino
        medlens embed dinov2_vits14 data/kermany --pretrained weights/dinov2_vits14/ -o emb/d2
    """
    from medlens.data.fingerprint import infer_channels
    from medlens.embeddings import embed as embed_data
    from medlens.embeddings import encoder_from_model, encoder_from_run, read_data

    manifest = read_data(data)
    if (Path(model) / "model.json").is_file():
        encoder = encoder_from_run(model)
    else:
        weights = {"none": False, "imagenet": "imagenet"}.get(pretrained, pretrained)
        encoder = encoder_from_model(
            model,
            pretrained=weights,
            in_chans=infer_channels(manifest),
            image_size=image_size,
            accept_license=accept_license,
        )
    embeddings, stats = embed_data(
        encoder,
        manifest,
        output,
        dtype=dtype,
        batch_size=batch_size,  # type: ignore[arg-type]
    )
    shape = f"{len(embeddings)} x {embeddings.vectors.shape[1]}"
    if stats["reused"]:
        console.print(f"embeddings unchanged ({shape}), reused from [bold]{output}[/]")
        return
    console.print(
        f"{shape} embeddings written to [bold]{output}[/] ({stats['images_per_s']:.1f} images/s)"
    )
