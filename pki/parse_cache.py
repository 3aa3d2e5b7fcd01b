"""What parsing learnt across certificates, by exact DER: a Verifier's
``ParseCache``. A new leaf shares nearly everything with its neighbours (the
issuer name, the extension values, all RDNs of its subject but one), so most
of its parse is lookups here. Rendering of names to RFC 4514 strings lives here
too, since it is remembered per RDN.
"""
from __future__ import annotations

from cryptography import x509

from . import der as derlib
from .errors import InputError
from .names import NameKey, name_key


class ParseCache:
    """What parsing learnt, by exact DER: the comparison keys of names, and
    the decoded values of extensions. A leaf's issuer is nearly always a
    name seen before, and leaves of one CA carry the same extension values
    (policies, key usage, CRL distribution points, ...) byte for byte, so
    a new leaf mostly costs lookups. Bounded: cleared when full."""

    def __init__(self, size: int = 65536, extension_size: int = 4096, rdn_size: int = 16384) -> None:
        self._keys: dict[bytes, NameKey] = {}
        self._size = size
        # Extension TLV -> (oid, critical, ((field, value), ...)), the same
        # as cryptography's decoding of it would give.
        self.extensions: dict[bytes, tuple[str, bool, tuple]] = {}
        self._extension_size = extension_size
        # RDNs: every new leaf brings one of its own (its CN), so these churn.
        self._rdn_size = rdn_size
        self._good_rdns: set[bytes] = set()
        self._texts: dict[bytes, str] = {}
        self._rdn_texts: dict[bytes, str] = {}
        # Extension blocks but their subjectKeyIdentifier: (DER before it,
        # DER after it) -> (fields but subject_key_id, unhandled critical).
        self.extension_blocks: dict[tuple[bytes, bytes], tuple[dict, tuple]] = {}

    def knows(self, name_der: bytes) -> bool:
        return name_der in self._keys

    def key(self, name_der: bytes, name: "x509.Name | None", make) -> NameKey:
        found = self._keys.get(name_der)
        if found is None:
            found = name_key(name if name is not None else make())
            if len(self._keys) >= self._size:
                self._keys.clear()  # crude but bounded; rebuilt from use
            self._keys[name_der] = found
        return found

    def text(self, name_der: bytes, make) -> str:
        """The rendering of a name, by its DER."""
        found = self._texts.get(name_der)
        if found is None:
            found = make()
            if len(self._texts) >= self._size:
                self._texts.clear()
            self._texts[name_der] = found
        return found

    def render(self, name_der: bytes) -> str | None:
        """The RFC 4514 string cryptography's ``Name.rfc4514_string`` gives
        for this name, built from its RDNs' renderings by their DER (a leaf's
        subject shares all but one RDN with its neighbours'); None when an
        RDN holds something other than a UTF8String, PrintableString or
        IA5String that decodes cleanly (the caller then asks cryptography)."""
        try:
            tag, start, end = derlib.read_tlv(name_der, 0)
            rdns = derlib.children(name_der, start, end)
        except InputError:
            return None
        texts = self._rdn_texts
        parts = []
        for _, rdn_start, _, rdn_end in rdns:
            rdn = name_der[rdn_start:rdn_end]
            text = texts.get(rdn)
            if text is None:
                text = _render_rdn(rdn)
                if text is None:
                    return None
                if len(texts) >= self._rdn_size:
                    texts.clear()
                texts[rdn] = text
            parts.append(text)
        parts.reverse()  # RFC 4514 2.1: the last RDN first
        return ",".join(parts)

    def check_name(self, name_der: bytes) -> None:
        """``der.check_name``, with the RDNs that passed remembered: a leaf's
        subject differs from its neighbours' in one RDN."""
        if len(name_der) >= 2 and name_der[0] == 0x30 and name_der[1] < 0x80 and name_der[1] == len(name_der) - 2:
            start, end = 2, len(name_der)  # a short-form header, read without read_tlv's call
        else:
            tag, start, end = derlib.read_tlv(name_der, 0)
            if tag != 0x30 or end != len(name_der):
                raise InputError("malformed Name")
        good = self._good_rdns
        for _, rdn_start, _, rdn_end in derlib.children(name_der, start, end):
            rdn = name_der[rdn_start:rdn_end]
            if rdn not in good:
                derlib.check_rdn(rdn)
                if len(good) >= self._rdn_size:
                    good.clear()
                good.add(rdn)

    def remember_extension_block(self, key: tuple[bytes, bytes], decoded: tuple[dict, tuple]) -> None:
        if len(self.extension_blocks) >= self._extension_size:
            self.extension_blocks.clear()
        self.extension_blocks[key] = decoded

    def remember_extension(self, tlv: bytes, decoded: tuple[str, bool, tuple]) -> None:
        if len(self.extensions) >= self._extension_size:
            self.extensions.clear()
        self.extensions[tlv] = decoded


# RFC 4514 attribute names, as cryptography's Name.rfc4514_string uses them;
# other attributes appear as their dotted OID.
_RFC4514_NAMES = {
    "2.5.4.3": "CN", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C",
    "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}
# UTF8String, PrintableString, IA5String: the string types whose decoding is
# plain (cryptography checks the character sets when it loads the certificate).
_PLAIN_STRINGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii"}


def _escape_rfc4514(value: str) -> str:
    """cryptography's _escape_dn_value for a str, step for step."""
    if not value:
        return ""
    value = (value.replace("\\", "\\\\").replace('"', '\\"').replace("+", "\\+").replace(",", "\\,")
             .replace(";", "\\;").replace("<", "\\<").replace(">", "\\>").replace("\0", "\\00"))
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def _render_rdn(rdn: bytes) -> str | None:
    try:
        tag, start, end = derlib.read_tlv(rdn, 0)
        texts = []
        for _, _, atv_start, atv_end in derlib.children(rdn, start, end):
            (oid_tag, _, oid_start, oid_end), (value_tag, _, value_start, value_end) = derlib.children(rdn, atv_start, atv_end)
            encoding = _PLAIN_STRINGS.get(value_tag)
            if oid_tag != 0x06 or encoding is None:
                return None
            oid = derlib.decode_oid(rdn[oid_start:oid_end])
            value = rdn[value_start:value_end].decode(encoding)
            texts.append(f"{_RFC4514_NAMES.get(oid, oid)}={_escape_rfc4514(value)}")
    except (InputError, ValueError):
        return None
    return "+".join(texts)
