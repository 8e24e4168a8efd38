"""`kdp tail`'s view of one message: a decoded record, a dead letter with its headers, or text."""

from __future__ import annotations

from typing import Any

from streaming.cli.tail import describe
from streaming.conversion.encoding import UndecodableRecord
from streaming.delivery.dead_letter import dead_letter_headers
from streaming.records import Rejection


def decode(value: bytes | None) -> dict[str, Any]:
    if value == b"\x00\x00\x00\x00\x07body":
        return {"user_id": "u"}
    raise UndecodableRecord("schema id 9 is unknown to the registry")


def test_a_record_is_decoded() -> None:
    assert describe(b"\x00\x00\x00\x00\x07body", None, decode) == {"user_id": "u"}


def test_a_dead_letter_shows_its_headers_and_original_bytes() -> None:
    headers = dead_letter_headers(Rejection("invalid_json", "not JSON"), "user-login", 2, 40, 5, 6)
    shown = describe(b"{oops", headers, decode)
    assert shown["original"] == "{oops"
    assert shown["dead_letter"]["kdp.dlq.reason"] == "invalid_json"
    assert shown["dead_letter"]["kdp.dlq.failed_at"] == "6"


def test_an_undecodable_record_is_shown_with_the_reason_not_raised() -> None:
    shown = describe(b"\x00\x00\x00\x00\x09body", None, decode)
    assert shown["undecodable"] == "schema id 9 is unknown to the registry"


def test_anything_else_is_text() -> None:
    assert describe(b"hello", None, decode) == {"raw": "hello"}
    assert describe(None, None, decode) == {"raw": None}
