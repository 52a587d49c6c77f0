"""DICOM de-identification to PS3.15 Annex E (Basic Application Level Confidentiality Profile).

    >>> from medlens.privacy import DeidOptions, Deidentifier
    >>> deid = Deidentifier.from_key_file("site.key", DeidOptions(dates="shift"))  # doctest: +SKIP
    >>> results = deid.deidentify_tree("incoming/", "deidentified/")  # doctest: +SKIP

See ``docs/deidentification.md`` for what the profile does and does not do.
"""

from __future__ import annotations

from medlens.privacy.deid import Deidentifier, DeidOptions, deidentify_file, deidentify_tree
from medlens.privacy.keys import KeyedMapper, load_or_create_key
from medlens.privacy.pixels import Region, burned_in_risk, parse_region
from medlens.privacy.report import FileResult, Status, write_report
from medlens.privacy.table import EDITION, TABLE_E1_1

__all__ = [
    "DeidOptions",
    "Deidentifier",
    "EDITION",
    "FileResult",
    "KeyedMapper",
    "Region",
    "Status",
    "TABLE_E1_1",
    "burned_in_risk",
    "deidentify_file",
    "deidentify_tree",
    "load_or_create_key",
    "parse_region",
    "write_report",
]
