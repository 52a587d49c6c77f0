"""The one exception tree of medlens.

Every error that medlens raises on purpose is a :class:`MedlensError`, so a caller
(the CLI, the web service) can catch one type, show its message and carry on::

    MedlensError
    ├── InvalidImageError          the file is not a usable image
    │   ├── UnsupportedFormatError     format or transfer syntax medlens cannot read
    │   ├── TruncatedImageError        pixel data shorter than the header promises
    │   ├── NoPixelDataError           a DICOM object without pixels (SR, KOS, ...)
    │   ├── ImageTooLargeError         decompression bombs, absurd dimensions
    │   ├── NonFiniteImageError        NaN or Inf voxels
    │   └── InconsistentSeriesError    missing slice, mixed orientation or size
    ├── ConfigError                a config or option that cannot work
    ├── DatasetError               a dataset that cannot be built or split
    ├── ModelError                 unknown model, bad weights or checkpoint
    │   ├── WeightsError               weights missing, unsafe or not matching
    │   └── LicenseError               gated or non-commercial weights not accepted
    ├── EvaluationError            labels or predictions that cannot be evaluated
    ├── ExportError                an export that failed its verification
    ├── DeidentificationError      a DICOM file that could not be de-identified
    ├── ServiceError               a service that cannot start safely
    └── PacsError                  a PACS that refused a query, fetch or store

Messages say what is wrong and with which file, never patient data.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "DeidentificationError",
    "EvaluationError",
    "ExportError",
    "ImageTooLargeError",
    "InconsistentSeriesError",
    "InvalidImageError",
    "LicenseError",
    "MedlensError",
    "ModelError",
    "NoPixelDataError",
    "NonFiniteImageError",
    "PacsError",
    "ServiceError",
    "TruncatedImageError",
    "UnsupportedFormatError",
    "WeightsError",
]


class MedlensError(Exception):
    """Base class of every error medlens raises on purpose."""


class InvalidImageError(MedlensError, ValueError):
    """The input is not a usable image."""


class UnsupportedFormatError(InvalidImageError):
    """The format (or DICOM transfer syntax) is not one medlens can read."""


class TruncatedImageError(InvalidImageError):
    """The pixel data is shorter than the header says it should be."""


class NoPixelDataError(InvalidImageError):
    """A DICOM object that carries no image (structured report, key object, ...)."""


class ImageTooLargeError(InvalidImageError):
    """Refused before allocation: a decompression bomb or absurd dimensions."""


class NonFiniteImageError(InvalidImageError):
    """The image holds NaN or infinite values."""


class InconsistentSeriesError(InvalidImageError):
    """A DICOM series that does not form one regular volume."""


class ConfigError(MedlensError, ValueError):
    """A configuration value or combination of options that cannot work."""


class DatasetError(MedlensError):
    """A dataset that cannot be built, read or split."""


class ModelError(MedlensError):
    """An unknown model name or an unusable checkpoint."""


class WeightsError(ModelError):
    """Weights that are missing, not loadable safely, or do not fit the model."""


class LicenseError(ModelError):
    """Weights whose licence (gated, non-commercial) the user has not accepted."""


class EvaluationError(MedlensError, ValueError):
    """Labels or predicted probabilities that cannot be evaluated (shape, range, classes)."""


class ExportError(MedlensError):
    """An exported model that failed its numeric verification."""


class DeidentificationError(MedlensError):
    """A DICOM file that could not be de-identified."""


class ServiceError(MedlensError):
    """The web service cannot start safely with these settings."""


class PacsError(MedlensError):
    """A PACS (DICOMweb or DIMSE) that refused or failed a query, retrieval or store."""
