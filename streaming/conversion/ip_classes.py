"""Validate an IP address in text form and say what kind of address it is, cheaply.

Why not `ipaddress`: `ipaddress.ip_address(text).is_private` costs about 4.8 µs, more than the whole
budget of a converted message (see `/work/shared/notes/hot-path-costs.md`). Here `socket.inet_pton`
parses (about 0.1 µs) and the class of an IPv4 address comes from a 256-entry table indexed by the first
octet, built at import from the rules below; only the seven first octets that hold a special range
(0, 100, 169, 172, 192, 198, 203) look further, through the same rules.

Accepted text:
- IPv4: a dotted quad of decimal octets, exactly as glibc's `inet_pton` takes it: no leading zeros
  (`010.1.1.1` is refused, since it is octal in some parsers and decimal in others), no shorthand
  (`10.1`), no whitespace.
- IPv6: any RFC 4291 text form, including an embedded dotted quad (`::ffff:1.2.3.4`); no zone id
  (`fe80::1%eth0`), which names an interface of the sender's machine and is meaningless elsewhere.
  The canonical text (RFC 5952 style, lower case, `::` compression, from `inet_ntop`) is returned, so
  one address always has one spelling downstream. IPv4 text is already canonical and kept as is.

Classes (the Avro enum `IpClass` has the same symbols plus `UNKNOWN`, its default for readers that meet
a symbol added later; `classify` never returns `UNKNOWN`). The first rule that matches wins:

| class       | IPv4                                          | IPv6                                  |
|-------------|-----------------------------------------------|---------------------------------------|
| UNSPECIFIED | 0.0.0.0                                       | ::                                    |
| LOOPBACK    | 127/8                                         | ::1                                   |
| LINK_LOCAL  | 169.254/16                                    | fe80::/10                             |
| MULTICAST   | 224/4                                         | ff00::/8                              |
| PRIVATE     | 10/8, 172.16/12, 192.168/16 (RFC 1918)        | fc00::/7 (unique local, RFC 4193)     |
| SHARED      | 100.64/10 (carrier-grade NAT, RFC 6598)       | -                                     |
| RESERVED    | rest of 0/8, 192.0.0/24, 192.0.2/24,          | 2001::/23, 2001:db8::/32, 3fff::/20,  |
|             | 198.18/15, 198.51.100/24, 203.0.113/24, 240/4 | fec0::/10, all outside 2000::/3       |
|             | (with 255.255.255.255)                        |                                       |
| PUBLIC      | everything else                               | the rest of 2000::/3                  |

An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) takes the class of its IPv4 address, keeping version 6.

These agree with the standard library's `ipaddress` predicates (is_unspecified, is_loopback, ...,
is_global) except where `ipaddress` 3.11 is out of date or too coarse; the deliberate differences are
listed and tested in `tests/unit/test_ip_classes.py`:
- 192.0.0.0/24 is RESERVED as a whole (IANA: not globally reachable); Python 3.11.7 only knows /29 and
  .170/31 of it and calls the rest global.
- fec0::/10 (site-local, deprecated by RFC 3879) and 3fff::/20 (documentation, RFC 9637) are RESERVED;
  Python 3.11.7 calls them global.
- `ipaddress` calls RFC 1918 space and reserved space alike "private"; here PRIVATE means only space an
  organisation may use internally, and the special-purpose rest is RESERVED.
"""

from __future__ import annotations

import socket

UNSPECIFIED = "UNSPECIFIED"
LOOPBACK = "LOOPBACK"
LINK_LOCAL = "LINK_LOCAL"
MULTICAST = "MULTICAST"
PRIVATE = "PRIVATE"
SHARED = "SHARED"
RESERVED = "RESERVED"
PUBLIC = "PUBLIC"

#: Every class `classify` can return.
IP_CLASSES: tuple[str, ...] = (
    PUBLIC,
    PRIVATE,
    SHARED,
    LOOPBACK,
    LINK_LOCAL,
    MULTICAST,
    RESERVED,
    UNSPECIFIED,
)

#: Ordered rules: the first network containing the address gives its class.
IPV4_RULES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/32", UNSPECIFIED),
    ("0.0.0.0/8", RESERVED),
    ("127.0.0.0/8", LOOPBACK),
    ("169.254.0.0/16", LINK_LOCAL),
    ("224.0.0.0/4", MULTICAST),
    ("10.0.0.0/8", PRIVATE),
    ("172.16.0.0/12", PRIVATE),
    ("192.168.0.0/16", PRIVATE),
    ("100.64.0.0/10", SHARED),
    ("192.0.0.0/24", RESERVED),
    ("192.0.2.0/24", RESERVED),
    ("198.18.0.0/15", RESERVED),
    ("198.51.100.0/24", RESERVED),
    ("203.0.113.0/24", RESERVED),
    ("240.0.0.0/4", RESERVED),
    ("0.0.0.0/0", PUBLIC),
)

IPV6_RULES: tuple[tuple[str, str], ...] = (
    ("::/128", UNSPECIFIED),
    ("::1/128", LOOPBACK),
    ("fe80::/10", LINK_LOCAL),
    ("ff00::/8", MULTICAST),
    ("fc00::/7", PRIVATE),
    ("2001::/23", RESERVED),
    ("2001:db8::/32", RESERVED),
    ("3fff::/20", RESERVED),
    ("fec0::/10", RESERVED),
    ("2000::/3", PUBLIC),
    ("::/0", RESERVED),
)

_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6
_inet_pton, _inet_ntop = socket.inet_pton, socket.inet_ntop
_IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def _compile(rules: tuple[tuple[str, str], ...], family: int, bits: int) -> tuple[tuple[int, int, str], ...]:
    """Rules as (network, mask, class) integers, checked in order."""
    compiled = []
    for network, ip_class in rules:
        address, prefix = network.split("/")
        mask = ((1 << bits) - 1) ^ ((1 << (bits - int(prefix))) - 1)
        compiled.append((int.from_bytes(_inet_pton(family, address), "big"), mask, ip_class))
    return tuple(compiled)


_V4 = _compile(IPV4_RULES, _AF_INET, 32)
_V6 = _compile(IPV6_RULES, _AF_INET6, 128)


def _first_match(rules: tuple[tuple[int, int, str], ...], address: int) -> str:
    for network, mask, ip_class in rules:
        if address & mask == network:
            return ip_class
    raise AssertionError("the last rule matches every address")  # pragma: no cover


def _by_first_octet() -> tuple[str | None, ...]:
    """For each first octet, its class if every rule that can match inside it gives one class, else None."""
    table: list[str | None] = []
    for octet in range(256):
        decided: str | None = None
        for network, mask, ip_class in _V4:
            if mask <= 0xFF000000:  # prefix of 8 bits or fewer: covers the whole /8 or none of it
                if (octet << 24) & mask == network:
                    decided = ip_class
                    break
            elif network >> 24 == octet:  # a longer prefix inside this /8 comes first: look further
                break
        table.append(decided)
    return tuple(table)


#: The class of every IPv4 address in each /8 that one class covers whole (None: look at the rules).
V4_BY_FIRST_OCTET = _by_first_octet()


def classify_ipv4(packed: bytes) -> str:
    """Class of a 4-byte IPv4 address."""
    return V4_BY_FIRST_OCTET[packed[0]] or _first_match(_V4, int.from_bytes(packed, "big"))


def classify_ipv6(packed: bytes) -> str:
    """Class of a 16-byte IPv6 address; an IPv4-mapped address takes its IPv4 address's class."""
    if packed[:12] == _IPV4_MAPPED_PREFIX:
        return classify_ipv4(packed[12:])
    return _first_match(_V6, int.from_bytes(packed, "big"))


def classify(text: str) -> tuple[str, int, str] | None:
    """`(canonical text, version, class)` of the IP address `text`, or None when it is not one.

    Never raises for a `str` argument (embedded NULs, non-ASCII and surrogates are simply invalid).
    """
    try:
        packed = _inet_pton(_AF_INET, text)
    except (OSError, ValueError):  # ValueError: embedded NUL, or a str that cannot be encoded
        pass
    else:
        return text, 4, V4_BY_FIRST_OCTET[packed[0]] or _first_match(_V4, int.from_bytes(packed, "big"))
    try:
        packed = _inet_pton(_AF_INET6, text)
    except (OSError, ValueError):
        return None
    return _inet_ntop(_AF_INET6, packed), 6, classify_ipv6(packed)
