"""Distinguished-name comparison per RFC 5280 section 7.1.

RFC 5280 asks for the LDAP StringPrep profile of RFC 4518: case-insensitive
matching and insignificant-space handling for string attributes. We apply the
parts that matter for real names: Unicode NFKC, case folding, trimming and
folding inner runs of white space to one space. Attribute values that are not
strings (bytes) compare by value. The order of RDNs matters; the order of the
attributes inside a multi-valued RDN does not.
"""
from __future__ import annotations

import re
import unicodedata

from cryptography import x509

NameKey = tuple[frozenset[tuple[str, object]], ...]

_SPACE = re.compile(r"\s+")

EMAIL_ADDRESS_OID = "1.2.840.113549.1.9.1"


def normalise_value(value: object) -> object:
    if isinstance(value, str):
        folded = unicodedata.normalize("NFKC", value).casefold()
        return _SPACE.sub(" ", folded).strip()
    return value


def name_key(name: x509.Name) -> NameKey:
    """A hashable key equal for names that RFC 5280 7.1 calls equal."""
    return tuple(
        frozenset((attr.oid.dotted_string, normalise_value(attr.value)) for attr in rdn)
        for rdn in name.rdns
    )


def is_prefix(prefix: NameKey, name: NameKey) -> bool:
    """True when ``prefix`` names an ancestor-or-self of ``name`` in the DIT
    (directoryName subtree matching, RFC 5280 4.2.1.10)."""
    return len(prefix) <= len(name) and name[: len(prefix)] == prefix


def render(name: x509.Name) -> str:
    """RFC 4514 string, falling back gracefully for odd attribute values."""
    try:
        return name.rfc4514_string()
    except Exception:  # pragma: no cover - cryptography renders all it parses
        return repr(name)
