"""End to end against a real PACS (Orthanc): store the CT -> query -> predict -> store the
results (SR, SC, SEG; STOW-RS and C-STORE) -> query them back and check their references.

Skipped when no PACS is reachable (see ``conftest.py``); ``.ci/run`` starts one.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from medlens.cli import app
from medlens.hospital import predict_studies, read_dicomweb, store_dicomweb
from medlens.hospital.dicomweb import dicomweb_client
from medlens.hospital.uri import parse_dicomweb

pytestmark = pytest.mark.slow


def _dicomweb(pacs: dict[str, str]) -> str:
    return pacs["dicomweb"].replace("http://", "dicomweb://", 1)


def _series_of(pacs: dict[str, str], study_uid: str) -> dict[str, str]:
    client = dicomweb_client(parse_dicomweb(_dicomweb(pacs)))
    found = client.search_for_series(study_instance_uid=study_uid)
    return {s["0020000E"]["Value"][0]: s["00080060"]["Value"][0] for s in found}


def _retrieve(pacs: dict[str, str], study_uid: str, series_uid: str) -> list[pydicom.Dataset]:
    client = dicomweb_client(parse_dicomweb(_dicomweb(pacs)))
    return client.retrieve_series(
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        media_types=(("application/dicom", "*"),),
    )


def test_ct_round_trip_classification_sr_and_heatmap_sc(
    pacs: dict[str, str], ct_folder: Path, trained_run: Path, tmp_path: Path, unique_key: str
) -> None:
    from medlens.hospital.pacs import with_new_uids
    from medlens.io import read_series

    sources = with_new_uids([pydicom.dcmread(p) for p in sorted(ct_folder.iterdir())], unique_key)
    study, series = str(sources[0].StudyInstanceUID), str(sources[0].SeriesInstanceUID)
    assert len(store_dicomweb(sources, _dicomweb(pacs))) == 20
    assert _series_of(pacs, study) == {series: "CT"}

    uri = f"{_dicomweb(pacs)}?StudyInstanceUID={study}"
    volume = read_dicomweb(uri)  # QIDO + WADO, assembled like the folder
    local = read_series(ct_folder)
    assert volume.array.shape == (20, 512, 512) and (volume.array == local.array).all()
    assert volume.spacing == local.spacing

    stores = ["--store", _dicomweb(pacs)] + (["--store", pacs["dimse"]] if pacs["dimse"] else [])
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(
        app, ["predict", str(trained_run), uri, "-o", str(out), "--heatmap", *stores]
    )
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["study_uid"] == study and row["series_uid"] == series
    assert row["predicted_label"] in ("normal", "pneumonia")
    assert int(row["stored"]) == 2 * (len(stores) // 2)

    stored = _series_of(pacs, study)
    assert sorted(stored.values()) == ["CT", "OT", "SR"]
    sr_series = next(uid for uid, modality in stored.items() if modality == "SR")
    (sr,) = _retrieve(pacs, study, sr_series)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.SeriesInstanceUID == series
    assert {i.ReferencedSOPInstanceUID for i in evidence.ReferencedSOPSequence} == {
        str(s.SOPInstanceUID) for s in sources
    }
    sc_series = next(uid for uid, modality in stored.items() if modality == "OT")
    (sc,) = _retrieve(pacs, study, sc_series)
    assert sc.BurnedInAnnotation == "YES" and sc.ImageType[0] == "DERIVED"
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID in {
        str(s.SOPInstanceUID) for s in sources
    }


def test_segmentation_seg_round_trip(
    pacs: dict[str, str],
    small_series: Path,
    make_small_series,
    seg_run_3d: Path,
    tmp_path: Path,
    unique_key: str,
) -> None:
    import highdicom as hd

    folder = make_small_series(
        tmp_path / "series", pydicom.dcmread(next(small_series.iterdir())), unique_key
    )
    sources = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    study, series = str(sources[0].StudyInstanceUID), str(sources[0].SeriesInstanceUID)
    store_dicomweb(sources, _dicomweb(pacs))
    uri = f"{_dicomweb(pacs)}?StudyInstanceUID={study}&SeriesInstanceUID={series}"
    predict_studies(seg_run_3d, [uri], tmp_path / "seg.csv", stores=[_dicomweb(pacs)])

    stored = _series_of(pacs, study)
    seg_series = next(uid for uid, modality in stored.items() if modality == "SEG")
    (seg,) = _retrieve(pacs, study, seg_series)
    seg = hd.seg.Segmentation.from_dataset(seg)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    referenced = {
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for f in seg.PerFrameFunctionalGroupsSequence
    }
    assert referenced == {str(s.SOPInstanceUID) for s in sources}
    # the study now holds a SEG beside the CT: reading it without a series still finds the CT
    assert read_dicomweb(f"{_dicomweb(pacs)}?StudyInstanceUID={study}").array.shape == (8, 28, 20)


def test_batch_reads_dicomweb_items_and_keeps_a_bad_one_as_its_error(
    pacs: dict[str, str], small_series: Path, trained_run: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from medlens.batch import run_batch

    sources = [pydicom.dcmread(p) for p in sorted(small_series.iterdir())]
    store_dicomweb(sources, _dicomweb(pacs))
    good = f"{_dicomweb(pacs)}?StudyInstanceUID={sources[0].StudyInstanceUID}"
    missing = f"{_dicomweb(pacs)}?StudyInstanceUID=1.2.3.4.5.6.7.8.9"
    (tmp_path / "studies.txt").write_text(f"{good}\n{missing}\n")
    summary = run_batch(trained_run, tmp_path / "studies.txt", tmp_path / "out", shard_size=8)
    assert (summary.rows, summary.errors) == (2, 1)
    table = pq.read_table(next((tmp_path / "out").glob("shard-*.parquet")))
    assert table.column("error_type").to_pylist() == [None, "PacsError"]
    assert table.column("label").to_pylist()[0] in ("normal", "pneumonia")


def test_c_store_reaches_the_pacs(
    pacs: dict[str, str], small_series: Path, make_small_series, tmp_path: Path, unique_key: str
) -> None:
    from medlens.hospital import store_dimse

    if not pacs["dimse"]:
        pytest.skip("MEDLENS_TEST_DIMSE is not set: no DICOM port of the PACS known")
    template = pydicom.dcmread(next(small_series.iterdir()))
    folder = make_small_series(tmp_path / "series", template, unique_key)
    sources = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    stored = store_dimse(sources, pacs["dimse"])
    assert stored == [str(s.SOPInstanceUID) for s in sources]
    assert _series_of(pacs, str(sources[0].StudyInstanceUID)) == {
        str(sources[0].SeriesInstanceUID): "CT"
    }
