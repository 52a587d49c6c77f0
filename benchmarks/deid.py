"""De-identification throughput and leak count: medlens vs dicognito on one planted-PHI corpus.

Builds a corpus of N DICOM files in a scratch folder (copies of real pydicom-data files, each
with fresh UIDs and planted PHI: names, IDs, dates, addresses, institution, physicians,
accession, descriptions, comments, at the top level, three sequences deep and in private
tags), then de-identifies it with each tool and prints files/s, MB/s and how many planted
values or original UIDs/dates survive anywhere in the output bytes (outside pixel data).

    python benchmarks/deid.py --files 2000 --scratch /tmp/medlens-deid-bench

dicognito is optional (pip install dicognito); without it only medlens is measured.
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
import warnings
from collections import Counter
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

TEMPLATES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "US1_J2KR.dcm", "rtdose.dcm"]
FIRST = ["JOHNATHAN", "MARGARETHE", "BARTHOLOMEW", "ELISABETTA", "FERDINAND", "GWENDOLYN"]
LAST = ["WAKEFIELD", "ABERNATHY", "KOWALCZYK", "OYELARAN", "FITZGERALD", "HOLLOWAY"]
PLACES = ["ST ELSEWHERE HOSPITAL", "MERCY GENERAL CLINIC", "PRINCETON PLAINSBORO"]


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1940, 2022)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"


def _plant(ds: Dataset, rng: random.Random, patient: int) -> dict[str, str]:
    """Overwrite identifying attributes with fresh PHI; return {what: planted string}."""
    name = f"{LAST[patient % 6]}{patient:04d}^{FIRST[patient % 5]}"
    phi = {
        "PatientName": name,
        "PatientID": f"MRN{patient:07d}",
        "PatientAddress": f"{rng.randint(10, 999)} ELM STREET SPRINGFIELD",
        "OtherPatientIDs": f"OTH{patient:07d}",
        "AccessionNumber": f"ACC{rng.randint(10**8, 10**9)}",
        "InstitutionName": rng.choice(PLACES),
        "ReferringPhysicianName": f"{rng.choice(LAST)}^GREGORY",
        "OperatorsName": f"{rng.choice(LAST)}^LISA",
        "StudyDescription": f"CT CHEST FOR {name}",
        "ImageComments": f"patient {name} complained of pain",
        "PatientBirthDate": _date(rng),
        "StudyDate": _date(rng),
        "ContentDate": _date(rng),
    }
    for keyword, value in phi.items():
        setattr(ds, keyword, value)
    deep = Dataset()
    deep.PatientName, deep.ContentDate = name, _date(rng)
    deep.ReferencedSOPClassUID, deep.ReferencedSOPInstanceUID = ds.SOPClassUID, generate_uid()
    middle = Dataset()
    middle.SourceImageSequence = Sequence([deep])
    middle.ReferencedSOPClassUID, middle.ReferencedSOPInstanceUID = ds.SOPClassUID, generate_uid()
    ds.ReferencedImageSequence = Sequence([middle])
    block = ds.private_block(0x0009, "BENCH PHI", create=True)
    block.add_new(0x01, "LO", f"PRIV{patient:07d}")
    phi["private tag"] = f"PRIV{patient:07d}"
    phi["date 3 deep"] = deep.ContentDate
    return phi


def build_corpus(root: Path, count: int, seed: int = 0) -> dict[Path, dict[str, str]]:
    """Write ``count`` files under ``root``; return, per file, the values that must not leak."""
    rng = random.Random(seed)
    templates = [pydicom.dcmread(get_testdata_file(name)) for name in TEMPLATES]
    secrets: dict[Path, dict[str, str]] = {}
    for index in range(count):
        ds = templates[index % len(templates)].copy()
        patient, study = index // 20, generate_uid()
        planted = _plant(ds, rng, patient)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        planted["StudyInstanceUID"], planted["SeriesInstanceUID"] = study, ds.SeriesInstanceUID
        planted["SOPInstanceUID"] = ds.SOPInstanceUID
        planted["UID 1 deep"] = ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID
        path = root / f"p{patient:04d}" / f"{index:05d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        secrets[path] = planted
    return secrets


def count_leaks(
    outputs: dict[Path, Path], secrets: dict[Path, dict[str, str]]
) -> tuple[Counter[str], int]:
    """({what: files where it leaked}, files with a leak), searching bytes outside pixel data."""
    leaks: Counter[str] = Counter()
    files = 0
    for src, out in outputs.items():
        data = out.read_bytes()
        pixels = pydicom.dcmread(out).get("PixelData") or b""
        found = [
            what
            for what, value in secrets[src].items()
            if data.count(value.encode()) > pixels.count(value.encode())
        ]
        leaks.update(found)
        files += bool(found)
    return leaks, files


def run_medlens(corpus: Path, out: Path) -> dict[Path, Path]:
    from medlens.privacy import Deidentifier, DeidOptions

    deid = Deidentifier(b"benchmark key 0123456789abcdef", DeidOptions(dates="shift"))
    results = deid.deidentify_tree(corpus, out)
    return {corpus / r.input: out / r.output for r in results if r.output}


def run_dicognito(corpus: Path, out: Path) -> dict[Path, Path]:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer(seed="benchmark")
    outputs: dict[Path, Path] = {}
    for src in sorted(corpus.rglob("*.dcm")):
        ds = pydicom.dcmread(src)
        anonymizer.anonymize(ds)
        dst = out / src.relative_to(corpus)
        dst.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(dst)
        outputs[src] = dst
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/medlens-deid-bench"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    shutil.rmtree(args.scratch, ignore_errors=True)
    corpus = args.scratch / "corpus"
    secrets = build_corpus(corpus, args.files)
    megabytes = sum(p.stat().st_size for p in secrets) / 1e6
    print(f"corpus: {len(secrets)} files, {megabytes:.1f} MB, templates {', '.join(TEMPLATES)}")
    tools = {"medlens": run_medlens, "dicognito": run_dicognito}
    for name, run in tools.items():
        try:
            start, cpu = time.perf_counter(), time.process_time()
            outputs = run(corpus, args.scratch / name)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        except ImportError:
            print(f"{name}: not installed")
            continue
        leaks, files = count_leaks(outputs, secrets)
        checked = sum(len(secrets[p]) for p in outputs)
        print(
            f"{name}: {len(outputs)} files written in {seconds:.1f} s wall ({cpu:.1f} s CPU) = "
            f"{len(secrets) / seconds:.0f} files/s, {megabytes / seconds:.1f} MB/s wall; "
            f"{len(secrets) / cpu:.0f} files/s per CPU second"
        )
        print(f"{name}: leaks {sum(leaks.values())} of {checked} planted values, in {files} files")
        for what, count in sorted(leaks.items()):
            print(f"    {what}: leaked in {count} files")


if __name__ == "__main__":
    main()
