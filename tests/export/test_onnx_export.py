from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medlens.errors import ExportError
from medlens.export import DEFAULT_OPSET, OnnxModel, check_onnx, export_onnx

onnx = pytest.importorskip("onnx")


def test_export_matches_torch_at_any_batch_size(tmp_path: Path, trained_tiny: nn.Module) -> None:
    trained_tiny.train()  # exported in eval mode, handed back in training mode
    try:
        path = export_onnx(trained_tiny, torch.zeros(2, 1, 16, 16), tmp_path / "model.onnx")
        assert trained_tiny.training
    finally:
        trained_tiny.eval()

    proto = onnx.load(str(path))
    assert [o.version for o in proto.opset_import if o.domain == ""] == [DEFAULT_OPSET]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param  # symbolic, not a fixed size
    session = OnnxModel(path)
    for n in (1, 7):
        x = torch.randn(n, 1, 16, 16)
        with torch.inference_mode():
            expected = trained_tiny(x)
        got = session(x)
        assert got.shape == (n, 1)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temp files left


def test_unsupported_opset_is_refused(tmp_path: Path, tiny_net: type[nn.Module]) -> None:
    with pytest.raises(ExportError, match="opset 7"):
        export_onnx(tiny_net(), torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx", opset=7)
    assert not list(tmp_path.iterdir())


class _DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # control flow on values cannot be exported
            return x.mean(dim=(1, 2, 3), keepdim=False)[:, None]
        return x.amax(dim=(1, 2, 3))[:, None]


def test_untraceable_model_raises_export_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="torch.onnx.export failed"):
        export_onnx(_DataDependent(), torch.ones(2, 1, 4, 4), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_checker_rejects_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises((ExportError, Exception)):
        check_onnx(bad)
    with pytest.raises(ExportError, match="cannot load"):
        OnnxModel(bad)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_registry_models_export_and_match(name: str, tmp_path: Path) -> None:
    """Registry families beyond simple_cnn (all eight were checked once; these two are fast)."""
    from medlens.models import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_chans=1, image_size=32).eval()
    x = torch.randn(2, 1, 32, 32)
    path = export_onnx(model, x, tmp_path / "model.onnx")
    with torch.inference_mode():
        expected = model(torch.cat([x, x.flip(0), x]))
    got = OnnxModel(path)(torch.cat([x, x.flip(0), x]))  # another batch size than exported
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-4)
