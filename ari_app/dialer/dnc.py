"""Do-not-call numbers: E.164 for any country (a number is put on the list however it could be
dialled: premium, foreign and short numbers included), one per line or CSV/JSON in bulk."""

from __future__ import annotations

import json
from collections.abc import Sequence

import phonenumbers

from ari_app.dialer.leads import PHONE_COLUMNS, LeadFileError, RowError, read_rows

__all__ = ["dnc_chunk", "dnc_number", "read_dnc_file"]


def dnc_number(raw: str, region: str = "FR") -> str:
    """E.164 of a number for a DNC list; ValueError if it isn't a possible phone number."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise ValueError("not a phone number")
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc._msg}") from None
    if not phonenumbers.is_possible_number(num):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def read_dnc_file(raw: bytes, content_type: str = "") -> list[tuple[int, str]]:
    """Numbers of a bulk DNC upload: a JSON array of numbers (or of objects with a phone field), a CSV with
    a phone column, or plain text with one number per line."""
    text = raw.decode("utf-8-sig", errors="replace").strip()
    if not text:
        raise LeadFileError("the file is empty")
    if text[:1] == "[" or "json" in content_type:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LeadFileError(f"not valid JSON: {exc.msg}") from None
        if isinstance(doc, list) and all(isinstance(x, str | int) for x in doc):
            return [(i, str(x)) for i, x in enumerate(doc, start=1)]
    first = text.split("\n", 1)[0].strip().lower()
    if any(c in first for c in PHONE_COLUMNS) or text[:1] in "[{":
        return [(row, str(next((v[k] for k in PHONE_COLUMNS if k in v), ""))) for row, v in read_rows(raw, content_type)]
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def dnc_chunk(args: tuple[str, Sequence[tuple[int, str]]]) -> tuple[list[str], list[RowError]]:
    """Process-pool unit of work: normalise a chunk of DNC numbers."""
    region, rows = args
    numbers: list[str] = []
    errors: list[RowError] = []
    for row, raw in rows:
        try:
            numbers.append(dnc_number(raw, region))
        except ValueError as exc:
            errors.append(RowError(row, "malformed", str(exc)))
    return numbers, errors
