"""Peak memory of predicting one 512x512x300 CT series with a run's model (slice_seq or any).

Writes a synthetic 300-slice CT series (uncompressed int16 DICOM, ~150 MB; not kept) into
``--work``, then predicts it in a fresh process per measurement and prints that process's
peak RSS (``VmHWM``) after loading the model and after predicting, and the CPU seconds. A
second measurement reads the series with a voxel limit below its size to show the refusal
(``ImageTooLargeError``, before the pixel data are allocated).

    flock /tmp/medlens-laneA.lock env OMP_NUM_THREADS=1 PYTHONPATH=src \
        python benchmarks/predict_memory_ct.py --run runs/ct-seq --work /tmp/ct300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from medlens.inference import Predictor
from medlens.io import read_image
from medlens.errors import ImageTooLargeError

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
run, folder, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
predictor = Predictor.from_run(run)
loaded = hwm()
cpu = time.process_time()
try:
    image = read_image(folder, max_voxels=limit)
    prediction = predictor.predict([image])[0]
    outcome = {"label": prediction.label, "shape": list(image.array.shape)}
except ImageTooLargeError as exc:
    outcome = {"refused": str(exc).split(": ", 1)[1]}
print(json.dumps({"after_load_mib": loaded, "peak_mib": hwm(),
                  "cpu_s": time.process_time() - cpu, **outcome}))
"""


def write_series(folder: Path, slices: int = 300, size: int = 512) -> Path:
    """A synthetic CT series: a water cylinder with a denser sphere, HU via rescale."""
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.dcm"))) == slices:
        return folder
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series_uid = generate_uid()
    yy, xx = np.mgrid[:size, :size] - size / 2
    for z in range(slices):
        ds = template.copy()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, generate_uid()
        ds.Rows = ds.Columns = size
        ds.PixelSpacing, ds.SliceThickness = [0.8, 0.8], 1.0
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
        ds.InstanceNumber = slices - z  # deliberately not the spatial order
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        hu = np.where(xx**2 + yy**2 < (0.4 * size) ** 2, 0, -1000)
        hu = np.where(xx**2 + yy**2 + (z - slices / 2) ** 2 < 40**2, 300, hu)
        ds.PixelData = (hu + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"slice{z:04d}.dcm", enforce_file_format=True)
    return folder


def measure(run: Path, folder: Path, limit: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(run), str(folder), str(limit)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a trained 3D classification run")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ct300"))
    parser.add_argument("--slices", type=int, default=300)
    args = parser.parse_args()
    folder = write_series(args.work / "series", args.slices)
    voxels = args.slices * 512 * 512
    print("predict:", json.dumps(measure(args.run, folder, 2**28)), flush=True)
    print("limit below the series:", json.dumps(measure(args.run, folder, voxels // 2)))


if __name__ == "__main__":
    main()
