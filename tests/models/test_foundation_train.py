"""Foundation backbones through the pipeline and the CLI: fine-tune, probe, models, embed."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
from typer.testing import CliRunner

from medlens.models.hub import FirstUseWarning

from .conftest import TINY_ENTRIES

runner = CliRunner()


def _config(make_config, data, output, source, folder, **model):
    return make_config(
        data, output, epochs=1, batch_size=16,
        model={"name": TINY_ENTRIES[source], "pretrained": str(folder), "image_size": 32, **model},
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("source", sorted(TINY_ENTRIES))
def test_one_step_fine_tune_then_predict_without_the_snapshot(
    source, tiny_snapshots, foundation_env, image_folder, make_config
):
    from medlens.card import read_card
    from medlens.inference import Predictor
    from medlens.tasks.run import train_run

    folder = foundation_env / "weights"
    shutil.copytree(tiny_snapshots[source][0], folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirstUseWarning)
        run = train_run(_config(make_config, image_folder, foundation_env / "run", source, folder))
    card = read_card(run)
    assert card.create_model["name"] == TINY_ENTRIES[source] and "arch" in card.create_model
    shutil.rmtree(folder)  # the run rebuilds from its card alone (offline, empty cache)
    predictor = Predictor.from_run(run)
    from medlens.io import read_image

    result = predictor.predict([read_image(next(image_folder.rglob("*.png")))])
    assert len(result) == 1 and sum(result[0].probabilities.values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_probe_on_a_foundation_backbone(tiny_snapshots, foundation_env, image_folder, make_config):
    from medlens.card import read_card
    from medlens.tasks.run import train_run

    config = _config(make_config, image_folder, foundation_env / "probe", "timm",
                     tiny_snapshots["timm"][0])  # fmt: skip
    config = config.model_copy(update={"adaptation": type(config.adaptation)(mode="probe")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirstUseWarning)
        run = train_run(config)
    assert "arch" in read_card(run).create_model


def test_gated_model_in_config_needs_accept_license(
    tiny_snapshots, foundation_env, image_folder, make_config
):
    from medlens.errors import LicenseError
    from medlens.tasks.run import train_run

    folder = tiny_snapshots["timm"][0]
    config = _config(make_config, image_folder, foundation_env / "uni", "timm", folder)
    config = config.model_copy(update={"model": config.model.model_copy(update={"name": "uni"})})
    with pytest.raises(LicenseError, match="model.accept_license"):
        train_run(config)
    assert not (foundation_env / "uni" / "model.safetensors").exists()


def test_models_lists_the_catalogue_and_shows_an_entry():
    from medlens.cli import app

    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "Foundation backbones" in result.output
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["models", "--json"]).output)}
    assert rows["uni"]["license"] == "CC-BY-NC-ND-4.0" and rows["uni"]["gated"]
    assert rows["rad_dino"]["license"] == "MIT" and "license" not in rows["resnet18"]
    result = runner.invoke(app, ["models", "--info", "conch", "--json"])
    data = json.loads(result.output)
    assert data["gated"] and data["non_commercial"] and not data["loadable"]
    result = runner.invoke(app, ["models", "--info", "nothing_like_it"])
    assert result.exit_code == 1 and "unknown model" in result.output


def test_cli_download_offline_and_embed_with_licence(
    tiny_snapshots, foundation_env, image_folder, tmp_path
):
    from medlens.cli import app

    from .test_hub import lay_out_cache

    result = runner.invoke(app, ["models", "--download", "rad_dino"])
    assert result.exit_code == 1 and "HF_HUB_OFFLINE" in result.output
    lay_out_cache(foundation_env / "hub", "MahmoodLab/UNI", tiny_snapshots["timm"][0])
    result = runner.invoke(app, ["models", "--download", "uni"])
    assert result.exit_code == 1 and "--accept-license CC-BY-NC-ND-4.0" in result.output
    args = ["--accept-license", "CC-BY-NC-ND-4.0"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirstUseWarning)
        result = runner.invoke(app, ["models", "--download", "uni", *args])
        assert result.exit_code == 0 and "sha256" in result.output
        embed = ["embed", "uni", str(image_folder), "-o", str(tmp_path / "e"), "--image-size", "32"]
        result = runner.invoke(app, [*embed, *args])
    assert result.exit_code == 0, result.output
    assert "48 x 32 embeddings" in result.output


@pytest.mark.slow
def test_cli_train_and_curve_take_accept_license(
    tiny_snapshots, foundation_env, image_folder, monkeypatch
):
    from medlens.cli import app

    weights = str(tiny_snapshots["timm"][0])
    train = ["train", "--data", str(image_folder), "--model", "uni", "--weights", weights,
             "--image-size", "32", "--epochs", "1", "-o", str(foundation_env / "uni")]  # fmt: skip
    result = runner.invoke(app, train)
    assert result.exit_code == 1 and "--accept-license CC-BY-NC-ND-4.0" in result.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FirstUseWarning)
        result = runner.invoke(app, [*train, "--accept-license", "CC-BY-NC-ND-4.0"])
    assert result.exit_code == 0, result.output
    seen = {}

    def fake_curve(config, output, *, modes, **kwargs):
        seen.update(modes)
        output.mkdir(parents=True, exist_ok=True)
        (output / "curve.json").write_text('{"points": []}')
        return output

    monkeypatch.setattr("medlens.pipeline.curve.label_efficiency", fake_curve)
    curve = ["curve", "c.yaml", "-o", str(foundation_env / "c"), "--accept-license", "DINOv3"]
    assert runner.invoke(app, curve).exit_code == 0
    assert all(mode["model.accept_license"] == ["DINOv3"] for mode in seen.values())
