"""A local Orthanc PACS (Debian's ``orthanc`` + ``orthanc-dicomweb``) for tests, CI and demos.

>>> with LocalPacs() as pacs:                     # doctest: +SKIP
...     pacs.dicomweb_url                         # 'http://127.0.0.1:PORT/dicom-web'

From a shell (``make pacs``)::

    python -m medlens.hospital.pacs start --state /tmp/medlens-pacs   # prints the URLs
    python -m medlens.hospital.pacs stop --state /tmp/medlens-pacs

Orthanc listens on 127.0.0.1 only, keeps its storage in a temporary folder (deleted on
stop), accepts any calling AE title and has authentication off: a loopback test PACS, not a
production one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medlens.errors import ServiceError

__all__ = ["ORTHANC_BINARY", "LocalPacs", "find_dicomweb_plugin", "free_port", "with_new_uids"]

ORTHANC_BINARY = "Orthanc"
_PLUGIN_CANDIDATES = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so",
)
AE_TITLE = "MEDLENSPACS"


def find_dicomweb_plugin() -> Path:
    """The DICOMweb plugin of Orthanc: from ``dpkg -L orthanc-dicomweb``, else known paths."""
    listed: list[str] = []
    if shutil.which("dpkg"):
        done = subprocess.run(
            ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, check=False
        )
        listed = [line for line in done.stdout.splitlines() if "OrthancDicomWeb.so" in line]
    for candidate in (*sorted(listed, key=len), *_PLUGIN_CANDIDATES):
        if Path(candidate).is_file():
            return Path(candidate)
    raise ServiceError("Orthanc's DICOMweb plugin not found: apt-get install orthanc-dicomweb")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalPacs:
    """Start, wait for and stop one Orthanc on loopback (a context manager)."""

    http_port: int = 0
    dicom_port: int = 0
    workdir: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def dimse_url(self) -> str:
        return f"dimse://{AE_TITLE}@127.0.0.1:{self.dicom_port}"

    def config(self) -> dict[str, Any]:
        """Orthanc's configuration: loopback, temporary storage, DICOMweb on."""
        assert self.workdir is not None
        return {
            "Name": "medlens-test-pacs",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": AE_TITLE,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "HttpCompressionEnabled": False,
            "Plugins": [str(find_dicomweb_plugin())],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "Full"},
        }

    def start(self, timeout: float = 60.0) -> LocalPacs:
        """Start Orthanc and wait until its DICOMweb answers; raise ``ServiceError`` if not."""
        binary = shutil.which(ORTHANC_BINARY) or shutil.which("/usr/sbin/Orthanc")
        if binary is None:
            raise ServiceError("Orthanc is not installed: apt-get install orthanc orthanc-dicomweb")
        self.http_port = self.http_port or free_port()
        self.dicom_port = self.dicom_port or free_port()
        self.workdir = self.workdir or Path(tempfile.mkdtemp(prefix="medlens-pacs-"))
        (self.workdir / "storage").mkdir(parents=True, exist_ok=True)
        config = self.workdir / "orthanc.json"
        config.write_text(json.dumps(self.config(), indent=2))
        with (self.workdir / "orthanc.log").open("wb") as log:  # the child keeps its copy
            self.process = subprocess.Popen(
                [binary, str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServiceError(f"Orthanc exited at start; see {self.workdir}/orthanc.log")
            if is_ready(self.dicomweb_url):
                return
            time.sleep(0.2)
        self.stop()
        raise ServiceError(f"Orthanc did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop Orthanc (SIGTERM, then SIGKILL) and delete its temporary storage."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalPacs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_ready(dicomweb_url: str, timeout: float = 2.0) -> bool:
    """Whether a DICOMweb service answers a QIDO studies query at ``dicomweb_url``."""
    try:
        with urllib.request.urlopen(f"{dicomweb_url}/studies?limit=1", timeout=timeout) as r:
            return r.status in (200, 204)
    except OSError:
        return False


def with_new_uids(datasets: list[Any], key: str) -> list[Any]:
    """Copies of one series' datasets with new Study/Series/SOP Instance UIDs derived from
    ``key`` (the same key, the same UIDs): test studies to upload, N distinct copies of one.

    An empty SOP Class UID is taken from the file meta (anonymised files often lack it).
    """
    import copy

    from pydicom.uid import generate_uid

    study = generate_uid(entropy_srcs=[key, "study"])
    series = generate_uid(entropy_srcs=[key, "series"])
    copies = []
    for number, original in enumerate(datasets):
        ds = copy.deepcopy(original)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[key, "instance", str(number)])
        if not ds.get("SOPClassUID"):
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        copies.append(ds)
    return copies


# -- command line: start / stop a detached PACS, for make and .ci/run ----------------------


def _start(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    pacs = LocalPacs(workdir=state / "orthanc").start()
    assert pacs.process is not None
    info = {
        "pid": pacs.process.pid,
        "dicomweb": pacs.dicomweb_url,
        "dimse": pacs.dimse_url,
        "workdir": str(pacs.workdir),
    }
    (state / "pacs.json").write_text(json.dumps(info, indent=2))
    sys.stdout.write(
        f"MEDLENS_TEST_PACS={pacs.dicomweb_url}\nMEDLENS_TEST_DIMSE={pacs.dimse_url}\n"
    )


def _stop(state: Path) -> None:
    info_path = state / "pacs.json"
    if not info_path.is_file():
        return
    info = json.loads(info_path.read_text())
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):  # up to 20 s to finish writing, then killed
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    shutil.rmtree(info["workdir"], ignore_errors=True)
    info_path.unlink()


def main(argv: list[str] | None = None) -> int:
    """``python -m medlens.hospital.pacs start|stop [--state DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m medlens.hospital.pacs")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--state", type=Path, default=Path(tempfile.gettempdir()) / "medlens-pacs")
    args = parser.parse_args(argv)
    try:
        (_start if args.action == "start" else _stop)(args.state)
    except ServiceError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
