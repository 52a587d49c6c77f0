"""Apply the confidentiality profile to a pydicom dataset, at every depth of its sequences.

The action of each element comes from Table E.1-1 (:mod:`medlens.privacy.table`); elements
the table does not list fall under safety rules, so nothing identifying slips through a gap:

* private elements are removed (except the safe-private allow-list, if asked for);
* curves (50xx) and overlays (60xx) are removed whole, and group lengths are dropped;
* unlisted PN elements are emptied, unlisted DA/DT/TM follow the date policy, and unlisted
  UIDs are replaced, except SOP Class UIDs, Transfer Syntax and DICOM-defined UIDs;
* unlisted sequences are kept and their items de-identified in turn.

Compound actions are resolved towards a valid object that keeps no original value:
``X/Z`` -> Z, ``X/D``, ``Z/D`` and ``X/Z/D`` -> D, ``X/Z/U*`` -> U. A sequence whose action
is D or Z is emptied (a dummy item could still carry codes that name a person or a place);
a sequence whose action is U is kept and its items de-identified, which keeps references
between instances (Referenced/Source Image Sequences) consistent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from medlens.privacy.dates import shift_da, shift_dt
from medlens.privacy.keys import KeyedMapper
from medlens.privacy.table import SAFE_PRIVATE, TABLE_E1_1

__all__ = ["DUMMY", "ProfileContext", "apply_profile", "remember", "resolve_action"]

DatePolicy = Literal["remove", "shift"]

DUMMY: dict[str, object] = {
    "AE": "ANONYMOUS",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UT": "ANONYMIZED",
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
}
_COMPOUND = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U", "X/Z/U": "U"}
_DATE_VRS = ("DA", "DT", "TM")
_KEPT_UIDS = {"TransferSyntaxUID", "ImplementationClassUID", "CodingSchemeUID"}
PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
_IDENTIFIERS = {PATIENT_ID, 0x00080050, 0x00200010, 0x00101000}  # IDs, accession number


@dataclass
class ProfileContext:
    """What the walk needs: the keyed mapper, the options and this file's date offset."""

    mapper: KeyedMapper
    dates: DatePolicy = "remove"
    keep_private_safe: bool = False
    date_offset: int = 0
    removed: set[str] = field(default_factory=set)  # sensitive original values, for checks
    produced: set[str] = field(default_factory=set)  # new values (shifted dates)

    def to_check(self) -> set[str]:
        """Original values that must not appear in the output (a shifted date may equal one)."""
        return self.removed - self.produced


def resolve_action(tag: int, vr: str, dates: DatePolicy) -> str:
    """The single action (D, Z, X, K, C or U) for a public element, by table or safety rule."""
    rule = TABLE_E1_1.get(tag)
    if rule is not None:
        if dates == "shift" and rule.modified_dates == "C":
            return "C"
        return _COMPOUND.get(rule.basic, rule.basic)
    group = tag >> 16
    if (tag & 0xFFFF) == 0 or (0x5000 <= group <= 0x501E) or (0x6000 <= group <= 0x601E):
        return "X"
    if vr == "UN":  # content we cannot interpret cannot be checked
        return "X"
    if vr == "PN":
        return "Z"
    if vr in _DATE_VRS:
        return "C" if dates == "shift" else "Z"
    if vr == "UI":
        keyword = keyword_for_tag(tag)
        return "K" if keyword.endswith("ClassUID") or keyword in _KEPT_UIDS else "U"
    return "K"


def _creator(ds: Dataset, tag: int) -> str | None:
    if tag not in ds:
        return None
    value = ds[tag].value
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return text.strip(" \0")


def _is_safe_private(ds: Dataset, tag: BaseTag) -> bool:
    group, element = tag.group, tag.element
    if element < 0x0010:
        return False
    if element <= 0x00FF:  # a private creator: keep it if its block holds a safe element
        creator = _creator(ds, tag)
        return any(g == group and c == creator for g, c, _ in SAFE_PRIVATE)
    creator = _creator(ds, (group << 16) | (element >> 8))
    return (group, creator, element & 0xFF) in SAFE_PRIVATE


def _values(elem: DataElement) -> list[str]:
    value = elem.value
    items = list(value) if isinstance(value, (list, MultiValue)) else [value]
    return [str(v) for v in items if v not in (None, "")]


def remember(ctx: ProfileContext, vr: str, values: list[str]) -> None:
    """Keep sensitive original values to check the output bytes against (not ours, not dummies)."""
    mapper = ctx.mapper
    for text in values:
        text = text.strip()[:8] if vr == "DT" else text.strip()
        if (
            len(text) < 6
            or text in DUMMY.values()
            or text.startswith("1.2.840.10008.")
            or mapper.is_own_uid(text)
            or mapper.is_own_pseudonym(text.removeprefix("ANON^"))
        ):
            continue
        ctx.removed.add(text)


def _remember(ctx: ProfileContext, elem: DataElement, action: str) -> None:
    if action == "K" or (action == "C" and ctx.date_offset == 0):
        return
    if elem.VR in ("PN", "UI", "DA", "DT") or elem.tag in _IDENTIFIERS:
        remember(ctx, elem.VR, _values(elem))


def _dummy(elem: DataElement, ctx: ProfileContext) -> None:
    if elem.VR == "UI":
        _replace_uids(elem, ctx)
    elif elem.VR == "SQ":
        elem.value = []
    else:
        elem.value = DUMMY.get(elem.VR)


def _replace_uids(elem: DataElement, ctx: ProfileContext) -> None:
    new = [ctx.mapper.uid(v) for v in _values(elem)]
    elem.value = new if len(new) > 1 else (new[0] if new else None)


def _shift_dates(elem: DataElement, ctx: ProfileContext) -> None:
    if elem.VR == "TM":
        return  # whole-day shifts keep the time of day
    shift = shift_da if elem.VR == "DA" else shift_dt
    shifted = [shift(v, ctx.date_offset) for v in _values(elem)]
    if any(s is None for s in shifted) or not shifted:
        elem.value = None
    else:
        elem.value = shifted if len(shifted) > 1 else shifted[0]
        ctx.produced.update(s[:8] for s in shifted if s is not None)


def _apply(ds: Dataset, elem: DataElement, action: str, ctx: ProfileContext) -> None:
    _remember(ctx, elem, action)
    if action == "X":
        del ds[elem.tag]
    elif action == "Z":
        elem.value = [] if elem.VR == "SQ" else None
    elif action == "D":
        _dummy(elem, ctx)
    elif action == "C" and elem.VR in _DATE_VRS:
        _shift_dates(elem, ctx)
    elif action == "C":
        _dummy(elem, ctx)
    elif action == "U" and elem.VR == "UI":
        _replace_uids(elem, ctx)
    elif action in ("U", "K") and elem.VR == "SQ":
        for item in elem.value:
            apply_profile(item, ctx, nested=True)
    elif action == "U":
        _dummy(elem, ctx)


def apply_profile(ds: Dataset, ctx: ProfileContext, *, nested: bool = False) -> None:
    """De-identify ``ds`` in place (not its file meta; see :mod:`medlens.privacy.deid`).

    At the top level, PatientName and PatientID have been set to pseudonyms by the caller
    and are kept; in nested items they are emptied like any other name or identifier.
    """
    for tag in list(ds.keys()):
        elem = ds[tag]
        if tag.is_private:
            action = "K" if ctx.keep_private_safe and _is_safe_private(ds, tag) else "X"
            if action == "X":
                del ds[tag]
            continue
        if not nested and tag in (PATIENT_NAME, PATIENT_ID):
            continue
        _apply(ds, elem, resolve_action(tag, elem.VR, ctx.dates), ctx)
