"""Reading an upload: one image file, or a zip of one DICOM series (unpacked with limits).

A zip is unpacked into a folder beside the upload under the same byte limit as the upload
itself (counted while writing, not taken from the archive's headers), at most
:data:`MAX_MEMBERS` files; member names are never used (no path leaves the folder, no
name that might identify a patient is written). Everything runs in the inference thread.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from medlens.errors import ImageTooLargeError, InvalidImageError
from medlens.io import Image, read_image

__all__ = ["MAX_MEMBERS", "SERIES_SUFFIX", "Upload", "open_upload", "read_upload"]

SERIES_SUFFIX = ".zip"
MAX_MEMBERS = 4096
CHUNK = 1 << 20


@dataclass(frozen=True)
class Upload:
    """An upload read as an image; ``series``: the folder it was unpacked into (a zip)."""

    image: Image
    path: Path
    series: Path | None = None

    @property
    def is_dicom(self) -> bool:
        return str(self.image.meta.get("format", "")).startswith("DICOM")

    def dicom_folder(self) -> Path | None:
        """A folder holding only this upload's DICOM file(s) (what DICOM SEG is built on),
        or None when the upload is not DICOM."""
        if not self.is_dicom:
            return None
        if self.series is not None:
            return self.series
        folder = self.path.with_name(self.path.name + ".dicom")
        folder.mkdir(exist_ok=True)
        target = folder / "slice.dcm"
        if not target.exists():
            shutil.copyfile(self.path, target)
        return folder


def read_upload(path: Path, max_bytes: int) -> Image:
    """The image of an upload (see :func:`open_upload`)."""
    return open_upload(path, max_bytes).image


def open_upload(path: Path, max_bytes: int) -> Upload:
    """Read ``path``: an image file, or (``.zip``) a DICOM series unpacked beside it."""
    if path.name.endswith(SERIES_SUFFIX):
        folder = unpack_series(path, path.with_name(path.name + ".series"), max_bytes)
        return Upload(read_image(folder), path, folder)
    return Upload(read_image(path), path)


def unpack_series(archive: Path, folder: Path, max_bytes: int) -> Path:
    """Unpack the files of ``archive`` into ``folder`` as ``00000.dcm``, ``00001.dcm``, ...

    Raises:
        InvalidImageError: not a zip, encrypted, or holding no file.
        ImageTooLargeError: more than ``max_bytes`` unpacked or :data:`MAX_MEMBERS` files.
    """
    folder.mkdir()
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            if len(members) > MAX_MEMBERS:
                raise ImageTooLargeError(f"the zip holds more than {MAX_MEMBERS} files")
            budget = max_bytes
            for index, member in enumerate(members):
                budget -= _extract(zipped, member, folder / f"{index:05d}.dcm", budget)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError) as exc:
        raise InvalidImageError(
            f"not a readable zip of a DICOM series ({type(exc).__name__})"
        ) from None
    if not members:
        raise InvalidImageError("the zip holds no file")
    return folder


def _extract(zipped: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Copy one member to ``target``; the bytes written, refusing past ``budget``."""
    written = 0
    with zipped.open(member) as source, open(target, "xb") as out:
        for block in iter(lambda: source.read(CHUNK), b""):
            written += len(block)
            if written > budget:
                raise ImageTooLargeError("the zip unpacks to more than the upload limit")
            out.write(block)
    return written
