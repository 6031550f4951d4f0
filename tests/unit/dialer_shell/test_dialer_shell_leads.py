"""Lead files: reading CSV and JSON, normalising numbers and time zones, merging duplicates, and
reporting every bad row (row, reason) while keeping the good ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_app.dialer.leads import (
    LeadFileError,
    LeadRecord,
    merge_duplicates,
    normalise_chunk,
    normalise_rows,
    read_rows,
)
from ari_app.numbers import NumberPolicy

FR = NumberPolicy(default_region="FR", allowed_regions=frozenset({"FR"}))


def parse(text: str, content_type: str = "") -> tuple[list[LeadRecord], list[tuple[int, str]]]:
    records, errors = normalise_rows(read_rows(text.encode(), content_type), FR)
    return records, [(e.row, e.reason) for e in errors]


def test_csv_numbers_become_e164_and_other_columns_are_kept_as_custom_fields():
    records, errors = parse("Phone,First Name,tz,priority\n06 12 34 56 78,Ada,Europe/Paris,5\n"
                            "+33 7 56 78 12 34,Bob,,\n")
    assert errors == []
    assert [(r.row, r.phone, r.tz, r.priority) for r in records] == [
        (1, "+33612345678", "Europe/Paris", 5), (2, "+33756781234", "Europe/Paris", 0)]
    assert records[0].data == {"first_name": "Ada"}


def test_time_zone_is_derived_from_the_number_when_the_lead_has_none():
    policy = NumberPolicy(allowed_regions=frozenset({"US", "FR"}))
    records, errors = normalise_rows(read_rows(b"phone\n+1 212 555 1234\n+1 415 555 0123\n"), policy)
    assert errors == []
    assert [r.tz for r in records] == ["America/New_York", "America/Los_Angeles"]


def test_a_number_that_may_be_in_several_time_zones_is_refused_not_guessed():
    policy = NumberPolicy(allowed_regions=frozenset({"RU"}))
    records, errors = normalise_rows(read_rows(b"phone\n+7 916 123 45 67\n+7 916 123 45 67,Europe/Moscow\n"
                                               .replace(b"phone\n", b"phone,tz\n")), policy)
    assert [(e.row, e.reason) for e in errors] == [(1, "timezone-unknown")]
    assert [r.tz for r in records] == ["Europe/Moscow"]


def test_bad_rows_are_reported_with_row_and_reason_and_the_rest_is_kept():
    text = ("phone,name,tz\n"
            "0612345678,ok,\n"              # 1 ok
            "3615,premium,\n"               # 2 premium short code
            "112,emergency,\n"              # 3
            "+44 20 7946 0958,uk,\n"        # 4 country not allowed
            ",no number,\n"                 # 5
            "0756781234,bad tz,Mars/Base\n"  # 6
            "0612,short,\n"                 # 7 invalid
            "0612345679,x,Europe/Paris,extra\n")  # 8 too many fields
    records, errors = parse(text)
    assert [r.row for r in records] == [1]
    assert errors == [(2, "premium"), (3, "emergency"), (4, "country"), (5, "no-number"), (6, "bad-timezone"),
                      (7, "invalid"), (8, "malformed")]


def test_semicolon_csv_with_bom_and_windows_1252_is_read():
    records, errors = parse("\ufeffnumber;nom\r\n06 12 34 56 78;Zoé\r\n")
    assert errors == [] and records[0].data == {"nom": "Zoé"}
    rows = read_rows("phone;nom\n0612345678;Zoé\n".encode("cp1252"))
    assert rows == [(1, {"phone": "0612345678", "nom": "Zoé"})]


def test_json_array_or_object_with_leads():
    doc = [{"phone": "0612345678", "tz": "Europe/Paris", "score": 3, "tags": ["a"]}, "not an object"]
    records, errors = parse(json.dumps(doc))
    assert records[0].data == {"score": 3, "tags": ["a"]}
    assert errors == [(2, "malformed")]
    records, errors = parse(json.dumps({"leads": doc[:1]}), "application/json")
    assert len(records) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("name,city\nAda,Paris\n", "no phone column"),
    ("phone,phone\n1,2\n", "twice"),
    ('{"leads": 3}', "JSON array"),
    ("[1, 2", "not valid JSON"),
])
def test_an_unreadable_file_is_refused_as_a_whole(text, message):
    with pytest.raises(LeadFileError, match=message):
        read_rows(text.encode())


def test_duplicates_are_merged_later_fields_win():
    records, errors = parse("phone,name,city\n0612345678,Ada,Paris\n+33612345678,Ada L.,\n0756781234,Bob,Lyon\n")
    unique, merged = merge_duplicates(records)
    assert merged == 1 and errors == []
    assert [(r.row, r.phone, r.data) for r in unique] == [
        (1, "+33612345678", {"name": "Ada L.", "city": "Paris"}), (3, "+33756781234", {"name": "Bob", "city": "Lyon"})]


def test_the_pool_unit_of_work_gives_the_same_answer():
    rows = read_rows(b"phone\n0612345678\n3615\n")
    assert normalise_chunk((FR, rows)) == normalise_rows(rows, FR)


@given(st.lists(st.tuples(st.sampled_from(["+33612345678", "+33756781234", "+33612345679"]),
                          st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2)), max_size=12))
def test_merging_keeps_one_record_per_number_and_counts_the_rest(items):
    records = [LeadRecord(i + 1, phone, "Europe/Paris", 0, data) for i, (phone, data) in enumerate(items)]
    unique, merged = merge_duplicates(records)
    assert len({r.phone for r in unique}) == len(unique) == len({p for p, _ in items})
    assert merged == len(items) - len(unique)
    for r in unique:  # the last value of each field wins
        expected: dict[str, int] = {}
        for phone, data in items:
            if phone == r.phone:
                expected.update(data)
        assert r.data == expected
