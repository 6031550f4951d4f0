"""Lead files: CSV or JSON in, clean lead records and per-row errors out.

Pure (no I/O beyond the bytes handed in). A file that can't be read at all (no header, no phone
column, not JSON) is a `LeadFileError` (the request gets a 4xx); a row that can't be used is a
`RowError` (row, reason) and is skipped, the rest is imported. Rows are numbered from 1 = the first
lead (the CSV header is not a row).

Numbers go through the campaign's `NumberPolicy` (E.164, no premium/short/emergency numbers, allowed
countries). The time zone is the lead's own (`tz` column) or derived from the number; a number that may
be in several zones (e.g. Russian mobiles) is refused rather than guessed, since the calling window
depends on it. Rows with the same number are merged (later fields win).

Normalising is libphonenumber in pure Python (~0.3 ms a number), so large files are normalised in
chunks on a process pool (`normalise_chunk` is the unit of work).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ari_app.numbers import NumberPolicy, NumberRefused

__all__ = ["LeadFileError", "LeadRecord", "RowError", "merge_duplicates", "normalise_chunk", "normalise_rows",
           "read_rows"]

PHONE_COLUMNS = ("phone", "number", "phone_number", "telephone", "tel", "msisdn")
TZ_COLUMNS = ("tz", "timezone", "time_zone")
PRIORITY_COLUMN = "priority"


class LeadFileError(ValueError):
    """The file as a whole can't be read."""


@dataclass(frozen=True)
class LeadRecord:
    row: int
    phone: str
    tz: str
    priority: int = 0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    row: int
    reason: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason, "message": self.message}


Row = tuple[int, dict[str, Any]]


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def read_rows(raw: bytes, content_type: str = "") -> list[Row]:
    """Split a CSV or JSON lead file into numbered rows of column -> value (keys lower-cased)."""
    text = _decode(raw)
    stripped = text.lstrip()
    if "json" in content_type or stripped[:1] in ("[", "{"):
        return _json_rows(stripped)
    return _csv_rows(text)


def _decode(raw: bytes) -> str:
    if not raw.strip():
        raise LeadFileError("the file is empty")
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise LeadFileError("the file is neither UTF-8 nor Windows-1252 text")


def _csv_rows(text: str) -> list[Row]:
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise LeadFileError("the file is empty") from None
    keys = [_key(h) for h in header]
    if not any(k in PHONE_COLUMNS for k in keys):
        raise LeadFileError(f"no phone column in the header (one of: {', '.join(PHONE_COLUMNS)})")
    if len(set(keys)) != len(keys):
        raise LeadFileError("the header names a column twice")
    rows: list[Row] = []
    n = 0
    try:
        for values in reader:
            if not values or not any(v.strip() for v in values):
                continue
            n += 1
            if len(values) > len(keys):
                rows.append((n, {"__error__": f"{len(values)} fields, the header has {len(keys)}"}))
                continue
            rows.append((n, {k: v.strip() for k, v in zip(keys, values, strict=False) if v.strip()}))
    except csv.Error as exc:
        raise LeadFileError(f"CSV error after lead {n}: {exc}") from None
    return rows


def _json_rows(text: str) -> list[Row]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LeadFileError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if isinstance(doc, dict) and isinstance(doc.get("leads"), list):
        doc = doc["leads"]
    if not isinstance(doc, list):
        raise LeadFileError('expected a JSON array of leads or {"leads": [...]}')
    rows: list[Row] = []
    for i, item in enumerate(doc, start=1):
        if not isinstance(item, dict):
            rows.append((i, {"__error__": "a lead must be a JSON object"}))
            continue
        rows.append((i, {_key(str(k)): v for k, v in item.items() if v is not None and v != ""}))
    return rows


@lru_cache(maxsize=512)
def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


def _one(row: int, values: dict[str, Any], policy: NumberPolicy) -> LeadRecord | RowError:
    if "__error__" in values:
        return RowError(row, "malformed", str(values["__error__"]))
    phone_key = next((k for k in PHONE_COLUMNS if k in values), None)
    if phone_key is None:
        return RowError(row, "no-number", "the lead has no phone number")
    raw = values[phone_key]
    if not isinstance(raw, str | int):
        return RowError(row, "malformed", "the phone number must be text")
    try:
        phone = policy.normalise(str(raw))
    except NumberRefused as exc:
        return RowError(row, exc.reason, str(exc))
    tz_key = next((k for k in TZ_COLUMNS if k in values), None)
    if tz_key is not None:
        tz = str(values[tz_key]).strip()
        if not _valid_zone(tz):
            return RowError(row, "bad-timezone", f"{tz!r} is not an IANA time zone")
    else:
        zones = policy.timezones(phone)
        if len(zones) != 1:
            why = "no time zone is known" if not zones else f"it may be in {len(zones)} time zones"
            return RowError(row, "timezone-unknown", f"{phone}: {why}; give the lead a tz column")
        tz = zones[0]
    priority = 0
    if PRIORITY_COLUMN in values:
        try:
            priority = int(values[PRIORITY_COLUMN])
        except (TypeError, ValueError):
            return RowError(row, "bad-priority", "priority must be an integer")
    skip = {phone_key, tz_key, PRIORITY_COLUMN}
    data = {k: v for k, v in values.items() if k not in skip}
    return LeadRecord(row, phone, tz, priority, data)


def normalise_rows(rows: Iterable[Row], policy: NumberPolicy) -> tuple[list[LeadRecord], list[RowError]]:
    records: list[LeadRecord] = []
    errors: list[RowError] = []
    for row, values in rows:
        out = _one(row, values, policy)
        (records if isinstance(out, LeadRecord) else errors).append(out)  # type: ignore[arg-type]
    return records, errors


def normalise_chunk(args: tuple[NumberPolicy, Sequence[Row]]) -> tuple[list[LeadRecord], list[RowError]]:
    """Process-pool unit of work (top level so it pickles)."""
    policy, rows = args
    return normalise_rows(rows, policy)


def merge_duplicates(records: Iterable[LeadRecord]) -> tuple[list[LeadRecord], int]:
    """One record per number, in first-seen order; later rows add and override fields. Returns the records
    and how many rows were merged into an earlier one."""
    by_phone: dict[str, LeadRecord] = {}
    merged = 0
    for r in records:
        prev = by_phone.get(r.phone)
        if prev is None:
            by_phone[r.phone] = r
            continue
        merged += 1
        by_phone[r.phone] = LeadRecord(prev.row, r.phone, r.tz, max(prev.priority, r.priority),
                                       {**prev.data, **r.data})
    return list(by_phone.values()), merged
