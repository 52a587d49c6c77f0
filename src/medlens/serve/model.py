"""The served model: verified against model.json, then loaded, then ready.

Loading runs in a background thread so that ``/healthz`` answers at once while
``/readyz`` says 503 until the weights' SHA-256 matched model.json and the predictor loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from medlens.errors import MedlensError, ServiceError

__all__ = ["ModelHandle", "PredictorLike", "expected_sha256", "sha256_file"]

log = logging.getLogger("medlens.serve")

WEIGHTS_FILE = "model.safetensors"


class PredictorLike(Protocol):
    """What the service needs from :class:`medlens.inference.Predictor`."""

    card: dict[str, Any]

    def predict(self, images: list[Any]) -> list[Any]: ...


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "model.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ServiceError(f"cannot read the model card {path}: {exc}") from exc
    if not isinstance(card, dict):
        raise ServiceError(f"{path} is not a JSON object")
    return card


def read_registry(run_dir: Path) -> dict[str, Any] | None:
    """``registry.json`` of a folder resolved from ``models:/...`` (None for a run dir)."""
    path = run_dir / "registry.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ServiceError(f"cannot read {path}: {exc}") from exc
    return record if isinstance(record, dict) else None


def expected_sha256(card: dict[str, Any]) -> str | None:
    """The weights' SHA-256 as recorded in model.json."""
    value = card.get("sha256")
    return value if isinstance(value, str) else None


def verify_weights(run_dir: Path, card: dict[str, Any]) -> str:
    """Check the weights (model.safetensors, or a LoRA adapter) against model.json."""
    adapter = card.get("adapter")
    name = Path(str(adapter["file"])).name if isinstance(adapter, dict) else WEIGHTS_FILE
    weights = run_dir / name  # a file name beside the card, never a path out of the run
    expected = expected_sha256(card)
    if expected is None:
        raise ServiceError(f"{run_dir / 'model.json'} records no sha256 for {WEIGHTS_FILE}")
    if not weights.is_file():
        raise ServiceError(f"weights not found: {weights}")
    actual = sha256_file(weights)
    if actual != expected.lower():
        raise ServiceError(f"{weights}: sha256 does not match model.json; refusing to serve it")
    check_safetensors(weights)
    return actual


def check_safetensors(path: Path) -> None:
    """Refuse a file whose header is not safetensors (a renamed pickle, say)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            handle.keys()
    except (SafetensorError, OSError, ValueError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ServiceError(f"{path} is not a safetensors file ({detail})") from None


def _load_predictor(run_dir: Path) -> PredictorLike:
    from medlens.inference import Predictor

    return Predictor.from_run(run_dir)


class ModelHandle:
    """Verify and load the predictor once; tell whether it is ready.

    ``on_ready`` is called with the handle once the model is loaded, before :meth:`wait`
    returns (the service publishes its readiness metrics there).
    """

    def __init__(
        self,
        run_dir: Path,
        loader: Callable[[Path], PredictorLike] | None = None,
        on_ready: Callable[[ModelHandle], None] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self._loader = loader or _load_predictor
        self._on_ready = on_ready
        self._predictor: PredictorLike | None = None
        self.card: dict[str, Any] = {}
        self.sha256: str | None = None
        self.registry: dict[str, Any] | None = None
        self.error: str | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._torch_model: Any = None

    def load(self) -> None:
        """Verify, then load. Errors are kept (for /readyz) rather than raised: any error,
        so that a failed load always reads as failed, never as still loading."""
        try:
            card = read_card(self.run_dir)
            self.registry = read_registry(self.run_dir)
            self.sha256 = verify_weights(self.run_dir, card)
            self._predictor = self._loader(self.run_dir)
            typed = getattr(self._predictor, "card", None)
            self.card = typed.model_dump(mode="json") if hasattr(typed, "model_dump") else card
            log.info("model %s version %s ready", self.name, self.version)
            if self._on_ready is not None:
                self._on_ready(self)
        except MedlensError as exc:
            self._fail(str(exc))
        except Exception as exc:  # a loader's own failure: its type, not its traceback
            self._fail(f"the model could not be loaded ({type(exc).__name__}: {exc})")
        finally:
            self._done.set()

    def _fail(self, message: str) -> None:
        self._predictor, self.error = None, message
        log.error("model not loaded: %s", message)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="medlens-model-loader", daemon=True)
        thread.start()
        return thread

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for loading to finish; True if the model is ready."""
        self._done.wait(timeout)
        return self.ready

    @property
    def ready(self) -> bool:
        return self._predictor is not None

    @property
    def failed(self) -> bool:
        """True once loading ended without a model."""
        return self._done.is_set() and self._predictor is None

    @property
    def predictor(self) -> PredictorLike:
        if self._predictor is None:
            raise ServiceError("the model is not loaded")
        return self._predictor

    @property
    def name(self) -> str:
        """The registered model's name, else the card's name, else the run directory's."""
        if self.registry and self.registry.get("name"):
            return str(self.registry["name"])
        return str(self.card.get("name") or self.run_dir.resolve().name)

    @property
    def version(self) -> str:
        """The registered version; else the card's version if it has one, else the first 12
        hex digits of the weights' hash."""
        if self.registry and self.registry.get("version"):
            return str(self.registry["version"])
        explicit = self.card.get("version")
        if isinstance(explicit, str) and explicit:
            return explicit
        return (self.sha256 or "unknown")[:12]

    def torch_model(self) -> Any:
        """The PyTorch model (for gradients): the predictor's own, or, when it runs another
        engine (ONNX Runtime), the same weights loaded once into PyTorch, hash-checked."""
        from torch import nn

        model = getattr(self.predictor, "model", None)
        if isinstance(model, nn.Module):
            return model
        with self._lock:
            if self._torch_model is None:
                from medlens.inference import load_engine

                card = self.predictor.card  # type: ignore[attr-defined]
                self._torch_model = load_engine(self.run_dir, card, "torch")
        return self._torch_model

    @property
    def engine(self) -> str:
        return str(getattr(self._predictor, "engine", None) or "torch")
