"""C-STORE to a DICOM node (pynetdicom), one association for a list of datasets.

Each dataset's SOP Class is proposed with its own transfer syntax plus Explicit and Implicit
VR Little Endian, so a node that cannot take the original encoding still gets a context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from medlens.errors import PacsError
from medlens.hospital.uri import DimseAddress, parse_dimse

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["CALLING_AE", "store_dimse"]

CALLING_AE = "MEDLENS"


def store_dimse(
    datasets: Sequence[Dataset], target: str | DimseAddress, *, timeout: float = 60.0
) -> list[str]:
    """C-STORE ``datasets`` to ``target``; return the stored SOP Instance UIDs."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom import AE

    address = target if isinstance(target, DimseAddress) else parse_dimse(target)
    ae = AE(ae_title=CALLING_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    contexts: dict[str, set[str]] = {}
    for ds in datasets:
        syntax = str(ds.file_meta.TransferSyntaxUID)
        contexts.setdefault(str(ds.SOPClassUID), set()).update(
            {syntax, ExplicitVRLittleEndian, ImplicitVRLittleEndian}
        )
    if len(contexts) > 128:
        raise PacsError("more than 128 SOP classes in one C-STORE association")
    for sop_class, syntaxes in contexts.items():
        ae.add_requested_context(sop_class, sorted(syntaxes))
    assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
    if not assoc.is_established:
        raise PacsError(f"{address.host}:{address.port}: DICOM association refused or failed")
    stored = []
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            code = int(getattr(status, "Status", -1)) if status else -1
            if code != 0 and not 0xB000 <= code <= 0xBFFF:  # success or warning
                raise PacsError(
                    f"{address.host}:{address.port}: C-STORE failed (status 0x{code & 0xFFFF:04X})"
                )
            stored.append(str(ds.SOPInstanceUID))
    finally:
        assoc.release()
    return stored
