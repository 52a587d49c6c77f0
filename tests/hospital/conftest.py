"""Fixtures: the real CT series with UIDs, a small synthetic CT series, and a PACS.

The PACS is ``MEDLENS_TEST_PACS`` (a DICOMweb URL; ``.ci/run`` starts Orthanc and sets it,
with ``MEDLENS_TEST_DIMSE``), else a local Orthanc started for the session when Debian's
``orthanc`` and ``orthanc-dicomweb`` are installed; tests that need one are skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("highdicom")
pytest.importorskip("dicomweb_client")


@pytest.fixture(scope="session")
def ct_folder(shared_datasets: Path) -> Path:
    return shared_datasets / "totalsegmentator_example" / "example_ct_dicom"


@pytest.fixture(scope="session")
def ct_datasets(ct_folder: Path) -> list:
    """The real 20-slice CT (JPEG 2000), with Study/Series/SOP UIDs (the files have none)."""
    import pydicom

    from medlens.hospital.pacs import with_new_uids

    return with_new_uids([pydicom.dcmread(p) for p in sorted(ct_folder.iterdir())], "ct")


@pytest.fixture(scope="session")
def ct_with_uids(ct_datasets: list, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ct_datasets`` written as a series folder."""
    folder = tmp_path_factory.mktemp("ct-uids")
    for i, ds in enumerate(ct_datasets):
        ds.save_as(folder / f"{i:03d}.dcm", enforce_file_format=True)
    return folder


def write_small_series(folder: Path, template: object, key: str, seed: int = 0) -> Path:
    """An 8-slice 28x20 CT series (uncompressed) with a bright blob, from a real header."""
    import copy

    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from medlens.hospital.pacs import with_new_uids

    rng = np.random.default_rng(seed)
    grid = np.indices((8, 28, 20)).astype(float)
    blob = sum((g - c) ** 2 for g, c in zip(grid, (4, 14, 10), strict=True)) <= 9
    volume = (rng.normal(0, 20, blob.shape) + 600 * blob + 1024).astype(np.uint16)
    slices = []
    for k in range(volume.shape[0]):
        ds = copy.deepcopy(template)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.PixelSpacing = [1.5, 1.2]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-10.0, 5.0, 30.0 + 2.0 * k]
        ds.SliceLocation = 30.0 + 2.0 * k
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = volume[k].tobytes()
        ds.InstanceNumber = k + 1
        slices.append(ds)
    folder.mkdir(parents=True, exist_ok=True)
    for i, ds in enumerate(with_new_uids(slices, key)):
        ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[key, "for"])
        ds.save_as(folder / f"{i:03d}.dcm", enforce_file_format=False)
    return folder


@pytest.fixture(scope="session")
def make_small_series():
    """``make_small_series(folder, template_dataset, key)``: see :func:`write_small_series`."""
    return write_small_series


@pytest.fixture(scope="session")
def small_series(ct_datasets: list, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_series(tmp_path_factory.mktemp("small") / "series", ct_datasets[0], "s")


@pytest.fixture(scope="session")
def pacs() -> Iterator[dict[str, str]]:
    """``{"dicomweb": URL, "dimse": "dimse://AET@HOST:PORT" or ""}`` of a reachable PACS."""
    from medlens.hospital.pacs import LocalPacs, is_ready

    url = os.environ.get("MEDLENS_TEST_PACS")
    if url:
        if not is_ready(url):
            pytest.skip(f"MEDLENS_TEST_PACS={url} does not answer a QIDO query")
        yield {"dicomweb": url, "dimse": os.environ.get("MEDLENS_TEST_DIMSE", "")}
        return
    if shutil.which("Orthanc") is None and not Path("/usr/sbin/Orthanc").is_file():
        pytest.skip("no PACS: set MEDLENS_TEST_PACS or apt-get install orthanc orthanc-dicomweb")
    with LocalPacs() as local:
        yield {"dicomweb": local.dicomweb_url, "dimse": local.dimse_url}


@pytest.fixture
def unique_key() -> str:
    return uuid.uuid4().hex
