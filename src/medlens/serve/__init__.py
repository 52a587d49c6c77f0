"""The web service: a FastAPI app around a :class:`~medlens.inference.Predictor`.

>>> from medlens.serve import ServeSettings, create_app          # doctest: +SKIP
>>> app = create_app(ServeSettings(run_dir="runs/demo"))         # doctest: +SKIP

Classification and segmentation runs alike: for a segmentation model ``POST /v1/predict``
answers classes found, volumes and a mask overlay, or (``format=nifti|dicom-seg``) the label
map file. Routes: ``/`` (web page), ``POST /v1/predict``, ``POST /v1/predict/batch``,
``POST /v1/preview``, ``GET /v1/model``, ``/healthz``, ``/readyz``, ``/metrics``, ``/docs``.
Every prediction request, refused or not, leaves one row per file in the audit log
(:class:`AuditStore`).
"""

from __future__ import annotations

from medlens.serve.app import create_app, create_app_from_env
from medlens.serve.audit import AuditRecord, AuditStore
from medlens.serve.settings import ServeSettings

__all__ = ["AuditRecord", "AuditStore", "ServeSettings", "create_app", "create_app_from_env"]
