"""IP validation and classes, checked against the standard library's `ipaddress` as the reference.

`ipaddress` is too slow for the hot path but is the independent opinion: our class must equal the one its
predicates imply, except on the deliberate differences documented in `streaming/conversion/ip_classes.py`.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streaming.conversion import ip_classes
from streaming.conversion.ip_classes import (
    LINK_LOCAL,
    LOOPBACK,
    MULTICAST,
    PRIVATE,
    PUBLIC,
    RESERVED,
    SHARED,
    UNSPECIFIED,
    classify,
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ORGANISATION_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")

#: Where we classify on purpose differently from Python 3.11's `ipaddress` (see the module docstring).
DELIBERATE_DIFFERENCES = {
    ipaddress.ip_network("192.0.0.0/24"): RESERVED,  # IANA: not globally reachable; 3.11 knows only parts
    ipaddress.ip_network("fec0::/10"): RESERVED,  # site-local, deprecated (RFC 3879)
    ipaddress.ip_network("3fff::/20"): RESERVED,  # documentation (RFC 9637, newer than 3.11)
}


def reference_class(address: Address) -> str:
    """The class that `ipaddress`'s predicates imply, in the order of our rules."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return reference_class(address.ipv4_mapped)
    if address.is_unspecified:
        return UNSPECIFIED
    if address.is_loopback:
        return LOOPBACK
    if address.is_link_local:
        return LINK_LOCAL
    if address.is_multicast:
        return MULTICAST
    if any(address in network for network in ORGANISATION_PRIVATE):
        return PRIVATE
    if address in CARRIER_GRADE_NAT:
        return SHARED
    if address.is_global and not address.is_reserved:
        return PUBLIC
    return RESERVED


def deliberate_class(address: Address) -> str | None:
    for network, ip_class in DELIBERATE_DIFFERENCES.items():
        if address.version == network.version and address in network:
            return ip_class
    return None


@settings(max_examples=2000)
@given(st.ip_addresses())
@example(ipaddress.ip_address("192.0.0.9"))
@example(ipaddress.ip_address("fec0::1"))
@example(ipaddress.ip_address("::ffff:169.254.3.4"))
def test_class_agrees_with_ipaddress_except_where_documented(address: Address) -> None:
    result = classify(str(address))

    assert result is not None
    expected = deliberate_class(address) or reference_class(address)
    assert result[2] == expected
    assert result[1] == address.version


@settings(max_examples=500)
@given(st.ip_addresses(v=6))
def test_ipv6_any_spelling_gives_one_canonical_text_that_means_the_same_address(address: Address) -> None:
    spellings = {str(address), address.exploded, address.exploded.upper(), str(address).upper()}

    canonical = {classify(text)[0] for text in spellings}  # type: ignore[index]

    assert len(canonical) == 1
    assert ipaddress.ip_address(canonical.pop()) == address


@given(st.ip_addresses(v=4))
def test_ipv4_text_is_kept_as_written(address: Address) -> None:
    assert classify(str(address)) == (str(address), 4, classify(str(address))[2])  # type: ignore[index]


@settings(max_examples=1000)
@given(st.text(alphabet="0123456789abcdefABCDEF.:%x ", max_size=45) | st.text(max_size=50))
def test_whatever_is_accepted_is_an_address_for_ipaddress_too(text: str) -> None:
    result = classify(text)

    if result is not None:
        assert ipaddress.ip_address(text) == ipaddress.ip_address(result[0])


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",  # leading zero: octal to some parsers, decimal to others
        "1.2.3.04",
        "0x7f.0.0.1",
        "１.２.３.４",  # full-width digits
        "1.2.3.4\x00",
        "fe80::1%eth0",  # zone id: names an interface of the sender's machine
        "1:2:3:4:5:6:7:8:9",
        "::g",
        "localhost",
        "\ud800",
    ],
)
def test_malformed_addresses_are_refused(text: str) -> None:
    assert classify(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("108.228.145.239", (PUBLIC, 4)),
        ("10.1.2.3", (PRIVATE, 4)),
        ("172.31.255.255", (PRIVATE, 4)),
        ("172.32.0.0", (PUBLIC, 4)),
        ("192.168.0.1", (PRIVATE, 4)),
        ("100.64.0.1", (SHARED, 4)),
        ("100.128.0.1", (PUBLIC, 4)),
        ("127.0.0.1", (LOOPBACK, 4)),
        ("169.254.169.254", (LINK_LOCAL, 4)),  # not "private", unlike ipaddress.is_private says
        ("224.0.0.251", (MULTICAST, 4)),
        ("239.255.255.250", (MULTICAST, 4)),
        ("0.0.0.0", (UNSPECIFIED, 4)),
        ("0.1.2.3", (RESERVED, 4)),
        ("192.0.2.10", (RESERVED, 4)),
        ("198.19.0.1", (RESERVED, 4)),
        ("240.0.0.1", (RESERVED, 4)),
        ("255.255.255.255", (RESERVED, 4)),
        ("2a00:1450::1", (PUBLIC, 6)),
        ("fd12:3456::1", (PRIVATE, 6)),
        ("fe80::1", (LINK_LOCAL, 6)),
        ("ff02::1", (MULTICAST, 6)),
        ("::1", (LOOPBACK, 6)),
        ("::", (UNSPECIFIED, 6)),
        ("2001:db8::1", (RESERVED, 6)),
        ("4000::1", (RESERVED, 6)),
        ("::ffff:192.168.1.1", (PRIVATE, 6)),  # IPv4-mapped: the IPv4 address's class, version 6
        ("::ffff:8.8.8.8", (PUBLIC, 6)),
    ],
)
def test_documented_examples(text: str, expected: tuple[str, int]) -> None:
    result = classify(text)

    assert result is not None
    assert (result[2], result[1]) == expected


def test_every_first_octet_table_entry_matches_the_rules() -> None:
    """The 256-entry shortcut must give what the ordered rules give, for every address it decides."""
    for octet in range(256):
        for rest in (b"\x00\x00\x00", b"\x40\x00\x01", b"\xa8\x01\x01", b"\xff\xff\xff"):
            packed = bytes([octet]) + rest
            by_rules = ip_classes._first_match(ip_classes._V4, int.from_bytes(packed, "big"))
            assert ip_classes.classify_ipv4(packed) == by_rules


def test_classes_match_the_avro_enum_symbols() -> None:
    schema = json.loads((Path(__file__).parents[2] / "schemas" / "processed-data-value.avsc").read_text())
    ip_class = next(f for f in schema["fields"] if f["name"] == "ip_class")["type"]

    assert set(ip_class["symbols"]) == {*ip_classes.IP_CLASSES, ip_class["default"]}
    assert ip_class["default"] not in ip_classes.IP_CLASSES


def test_inet_pton_is_what_rejects_leading_zeros_here() -> None:
    """The rule relies on glibc's inet_pton; if a platform accepted leading zeros, this would tell."""
    with pytest.raises(OSError):
        socket.inet_pton(socket.AF_INET, "010.0.0.1")
