"""Hospital interoperability: DICOMweb and DIMSE in and out, AI results as DICOM objects.

>>> from medlens.hospital import predict_studies, read_dicomweb          # doctest: +SKIP
>>> read_dicomweb("dicomweb://127.0.0.1:8042/dicom-web?StudyInstanceUID=1.2.3")

- :mod:`.uri`: ``dicomweb://`` (http), ``dicomwebs://`` (https), ``dimse://AET@HOST:PORT``;
- :mod:`.auth`: bearer token or basic credentials from the environment or a file;
- :mod:`.dicomweb`: QIDO-RS, WADO-RS, STOW-RS (one non-chunked body by default);
- :mod:`.dimse`: C-STORE (pynetdicom);
- :mod:`.sr`, :mod:`.sc` and :func:`medlens.segmentation.dicom_seg.build_dicom_seg`:
  classification SR (TID 1500), Grad-CAM Secondary Capture, DICOM SEG;
- :mod:`.predict`: a study in, results written and stored;
- :mod:`.pacs`: a local Orthanc for tests and CI.

Needs ``pip install 'medlens[hospital]'``; nothing heavy is imported with this package.
"""

from __future__ import annotations

from medlens.hospital.dicomweb import fetch_series, read_dicomweb, store_dicomweb
from medlens.hospital.dimse import store_dimse
from medlens.hospital.identity import ModelIdentity
from medlens.hospital.predict import StudyResult, predict_studies, predict_study
from medlens.hospital.uri import parse_dicomweb, parse_dimse, parse_store

__all__ = [
    "ModelIdentity",
    "StudyResult",
    "fetch_series",
    "parse_dicomweb",
    "parse_dimse",
    "parse_store",
    "predict_studies",
    "predict_study",
    "read_dicomweb",
    "store_dicomweb",
    "store_dimse",
]
