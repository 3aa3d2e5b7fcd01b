"""Name constraints: RFC 5280 section 4.2.1.10, applied as in 6.1.3 (b)(c)
and 6.1.4 (g).

``NameConstraintsState`` holds the RFC's ``permitted_subtrees`` and
``excluded_subtrees`` state variables. The path validator starts from
``NameConstraintsState.initial()``, folds in every CA certificate's
NameConstraints extension with ``with_constraints()`` and asks ``check()``
whether a certificate's names are acceptable. Deciding which certificates are
checked (6.1.3 (b)(c) exempt self-issued intermediates) is the caller's job.

Every subtree is kept in a per-form comparison key, parsed once when the
constraint enters the state. Each (name, subtree) comparison in ``check()``
and each (subtree, subtree) comparison in an intersection is charged to a
``Budget``, so that certificates with thousands of names and subtrees end in
``BudgetExceeded`` rather than in a long computation (the approach of
pyca/cryptography's verifier and Go's crypto/x509).

The matching rules per name form (4.2.1.10):

- directoryName: a name is within a subtree when the subtree's RDN sequence
  is a prefix of the name's (compared per RFC 5280 7.1, see ``pki.names``).
- rfc822Name: "local@host" is one mailbox, "host" every mailbox at exactly
  that host, ".domain" every mailbox at a host below the domain (not at the
  domain itself).
- dNSName: "example.com" is example.com and every name below it; a leading
  period (".example.com", an extension of Go and others) means below only.
- uniformResourceIdentifier: the host part of the URI, with the rfc822Name
  host rules: "host" exactly that host, ".domain" hosts below the domain.
- iPAddress: an address within the network; IPv4 and IPv6 never match each
  other.

Forms that cannot be compared (otherName, registeredID) and constraints that
cannot be parsed make every name of that form in a checked certificate fail:
4.2.1.10 says an application must process a constraint or reject the
certificate. x400Address and ediPartyName never reach this module, since
cryptography refuses to parse them at all.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

from cryptography import x509

from .budget import Budget
from .names import EMAIL_ADDRESS_OID, NameKey, is_prefix, name_key, render

# Name forms, spelt as in the GeneralName CHOICE of RFC 5280 4.2.1.6.
DIRECTORY_NAME = "directoryName"
RFC822_NAME = "rfc822Name"
DNS_NAME = "dNSName"
URI = "uniformResourceIdentifier"
IP_ADDRESS = "iPAddress"
OTHER_NAME = "otherName"
REGISTERED_ID = "registeredID"

_FORM_OF_TYPE: Mapping[type, str] = MappingProxyType(
    {
        x509.DirectoryName: DIRECTORY_NAME,
        x509.RFC822Name: RFC822_NAME,
        x509.DNSName: DNS_NAME,
        x509.UniformResourceIdentifier: URI,
        x509.IPAddress: IP_ADDRESS,
        x509.OtherName: OTHER_NAME,
        x509.RegisteredID: REGISTERED_ID,
    }
)

# How many subtrees a message lists before it says "and N more".
_SUBTREES_SHOWN = 5
# Names and constraints come from the certificate; keep messages short.
_LONGEST_SHOWN = 120

# One DNS label as it appears in host names and constraints (ASCII only:
# internationalised names are carried as A-labels, RFC 5280 7.2 and 7.3).
_LABEL = re.compile(r"[A-Za-z0-9_*-]+\Z")


class _CannotCheck(Exception):
    """A name or constraint whose form is known but whose value cannot be
    compared; the certificate is then rejected (4.2.1.10: process or reject)."""


# --- host names -------------------------------------------------------------

HostLabels = tuple[str, ...]


def _host_labels(host: str) -> HostLabels:
    """'www.Example.com' -> ('com', 'example', 'www'): root first, so that a
    subtree test is a tuple prefix test."""
    labels = host.split(".")
    if not host or not all(_LABEL.match(label) for label in labels):
        # Empty labels include a trailing period, as Go's verifier rejects.
        raise _CannotCheck(f"'{_shown(host)}' is not a valid host name")
    return tuple(label.lower() for label in reversed(labels))


def _strictly_below(labels: HostLabels, domain: HostLabels) -> bool:
    return len(labels) > len(domain) and labels[: len(domain)] == domain


# --- dNSName ----------------------------------------------------------------


@dataclass(frozen=True)
class _DnsSubtree:
    labels: HostLabels
    below_only: bool  # leading period: subdomains, not the name itself


def _dns_constraint(text: str) -> _DnsSubtree:
    below_only = text.startswith(".")
    rest = text[1:] if below_only else text
    # The empty constraint is the whole DNS name space.
    return _DnsSubtree(_host_labels(rest) if rest else (), below_only)


def _dns_name(text: str) -> HostLabels:
    return _host_labels(text)


def _dns_name_within(labels: HostLabels, subtree: _DnsSubtree) -> bool:
    if subtree.below_only:
        return _strictly_below(labels, subtree.labels)
    return labels[: len(subtree.labels)] == subtree.labels


def _dns_subtree_within(inner: _DnsSubtree, outer: _DnsSubtree) -> bool:
    if inner.labels[: len(outer.labels)] != outer.labels:
        return False
    if not outer.below_only:
        return True
    # Every name of inner must be strictly longer than outer's labels.
    shortest_inner_name = len(inner.labels) + (1 if inner.below_only else 0)
    return shortest_inner_name > len(outer.labels)


# --- rfc822Name and uniformResourceIdentifier ---------------------------------


@dataclass(frozen=True)
class _HostSubtree:
    """An rfc822Name or URI constraint.

    ``local`` is set for a single mailbox ("local@host"); otherwise the
    subtree is the host itself or, when ``below_only`` (leading period), the
    hosts strictly below it.
    """

    local: str | None
    labels: HostLabels
    below_only: bool


@dataclass(frozen=True)
class _Mailbox:
    local: str | None  # None for the host of a URI
    labels: HostLabels


def _host_constraint(text: str, allow_mailbox: bool) -> _HostSubtree:
    if "@" in text:
        local, _, host = text.rpartition("@")
        if not allow_mailbox or not local:
            raise _CannotCheck(f"'{_shown(text)}' is not a valid constraint")
        return _HostSubtree(local, _host_labels(host), False)
    if text.startswith(".") or not text:
        # The empty constraint and "." are the whole name space: every valid
        # host has at least one label, so is strictly below the root.
        rest = text[1:]
        return _HostSubtree(None, _host_labels(rest) if rest else (), True)
    return _HostSubtree(None, _host_labels(text), False)


def _email_constraint(text: str) -> _HostSubtree:
    return _host_constraint(text, allow_mailbox=True)


def _uri_constraint(text: str) -> _HostSubtree:
    return _host_constraint(text, allow_mailbox=False)


def _mailbox(address: str) -> _Mailbox:
    # rpartition: a quoted local part may itself contain "@".
    local, at, host = address.rpartition("@")
    if not at or not local:
        raise _CannotCheck("it is not a valid mailbox address")
    return _Mailbox(local, _host_labels(host))


def _uri_name(uri: str) -> _Mailbox:
    try:
        host = urlsplit(uri).hostname  # lower-cased, port and user removed
    except ValueError as exc:
        raise _CannotCheck("it is not a valid URI") from exc
    # 4.2.1.10: a URI without an authority whose host is a fully qualified
    # domain name (no authority, or an IP address) MUST be rejected.
    if not host:
        raise _CannotCheck("it has no host name")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _Mailbox(None, _host_labels(host))
    raise _CannotCheck("its host is an IP address, not a domain name")


def _host_name_within(name: _Mailbox, subtree: _HostSubtree) -> bool:
    # The local part is compared exactly: RFC 5280 4.2.1.10 and 7.5 make it
    # case-sensitive (as Go does); only the host is case-insensitive, which
    # _host_labels already folded.
    if subtree.local is not None:
        return name.local == subtree.local and name.labels == subtree.labels
    if subtree.below_only:
        return _strictly_below(name.labels, subtree.labels)
    return name.labels == subtree.labels


def _host_subtree_within(inner: _HostSubtree, outer: _HostSubtree) -> bool:
    if outer.local is not None:  # a single mailbox contains only itself
        return inner == outer
    if outer.below_only:
        if inner.below_only:
            return inner.labels[: len(outer.labels)] == outer.labels
        return _strictly_below(inner.labels, outer.labels)
    # A host: its own mailboxes, but no subdomain.
    return not inner.below_only and inner.labels == outer.labels


# --- iPAddress --------------------------------------------------------------

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip_constraint(value: object) -> _Network:
    if not isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        raise _CannotCheck(f"'{value}' is not an address range")
    return value


def _ip_name(value: object) -> _Address:
    if not isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        raise _CannotCheck("it is not a single address")
    return value


def _ip_name_within(address: _Address, network: _Network) -> bool:
    # An IPv4 address never matches an IPv6 range, even an IPv4-mapped one.
    return address.version == network.version and address in network


def _ip_subtree_within(inner: _Network, outer: _Network) -> bool:
    # subnet_of wants both of one version: checked first.
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


# --- directoryName ----------------------------------------------------------


def _dn_name_within(key: NameKey, subtree: NameKey) -> bool:
    return is_prefix(subtree, key)


def _dn_subtree_within(inner: NameKey, outer: NameKey) -> bool:
    return is_prefix(outer, inner)


# --- the rules of each form ---------------------------------------------------


@dataclass(frozen=True)
class _FormRules:
    """How one name form is compared. The two key functions take the
    GeneralName's value and raise _CannotCheck when it cannot be compared."""

    # Each form has its own key type: the table is heterogeneous by design.
    parse_constraint: Callable[[Any], Any]
    parse_name: Callable[[Any], Any]
    name_within: Callable[[Any, Any], bool]
    subtree_within: Callable[[Any, Any], bool]


_RULES: Mapping[str, _FormRules] = MappingProxyType(
    {
        DIRECTORY_NAME: _FormRules(name_key, name_key, _dn_name_within, _dn_subtree_within),
        RFC822_NAME: _FormRules(_email_constraint, _mailbox, _host_name_within, _host_subtree_within),
        DNS_NAME: _FormRules(_dns_constraint, _dns_name, _dns_name_within, _dns_subtree_within),
        URI: _FormRules(_uri_constraint, _uri_name, _host_name_within, _host_subtree_within),
        IP_ADDRESS: _FormRules(_ip_constraint, _ip_name, _ip_name_within, _ip_subtree_within),
    }
)


# --- subtrees and the state ---------------------------------------------------


@dataclass(frozen=True)
class Subtree:
    """One GeneralSubtree of a supported form (4.2.1.10: minimum is always 0
    and maximum absent, so the base is all there is). Equal when their keys
    are, whatever the spelling of ``text``."""

    key: object
    text: str = field(compare=False)


Subtrees = tuple[Subtree, ...]
SubtreesByForm = tuple[tuple[str, Subtrees], ...]


def _shown(text: str) -> str:
    """A certificate-supplied string made safe and short for a message."""
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    if len(text) > _LONGEST_SHOWN:
        text = text[:_LONGEST_SHOWN] + "..."
    return text


def _form_of(name: x509.GeneralName) -> str:
    return _FORM_OF_TYPE.get(type(name), type(name).__name__)


def _text_of(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return render(name.value)
    if isinstance(name, x509.OtherName):
        return f"type {name.type_id.dotted_string}"
    if isinstance(name, x509.RegisteredID):
        return name.value.dotted_string
    return str(name.value)


def _without_duplicates(subtrees: Subtrees) -> Subtrees:
    return tuple(dict.fromkeys(subtrees))


def _parse_subtrees(
    general_names: list[x509.GeneralName] | None,
) -> tuple[dict[str, Subtrees], dict[str, str]]:
    """Group a NameConstraints field by form. Returns the subtrees that can be
    compared, and for each form that cannot be, the reason."""
    by_form: dict[str, list[Subtree]] = {}
    unprocessable: dict[str, str] = {}
    for general_name in general_names or ():
        form = _form_of(general_name)
        text = _text_of(general_name)
        rules = _RULES.get(form)
        if rules is None:
            unprocessable.setdefault(form, f"{form} constraints are not supported")
            continue
        try:
            key = rules.parse_constraint(general_name.value)
        except _CannotCheck:
            unprocessable.setdefault(form, f"the {form} constraint '{_shown(text)}' is malformed")
            continue
        by_form.setdefault(form, []).append(Subtree(key, text))
    return {form: _without_duplicates(tuple(s)) for form, s in by_form.items()}, unprocessable


def _intersection(form: str, current: Subtrees, new: Subtrees, budget: Budget) -> Subtrees:
    """The names within both unions of subtrees. Two subtrees of one form are
    either nested or disjoint, so each pair contributes the narrower one or
    nothing."""
    within = _RULES[form].subtree_within
    kept: list[Subtree] = []
    for old_subtree in current:
        for new_subtree in new:
            budget.charge_name_constraints()
            if within(new_subtree.key, old_subtree.key):
                kept.append(new_subtree)
            elif within(old_subtree.key, new_subtree.key):
                kept.append(old_subtree)
    return _without_duplicates(tuple(kept))


def _listing(subtrees: Subtrees) -> str:
    if not subtrees:
        return "none"
    shown = ", ".join(_shown(subtree.text) or "(empty)" for subtree in subtrees[:_SUBTREES_SHOWN])
    hidden = len(subtrees) - _SUBTREES_SHOWN
    return f"{shown} and {hidden} more" if hidden > 0 else shown


@dataclass(frozen=True)
class _CertificateName:
    form: str
    label: str  # how the message names it
    text: str
    value: object  # what the form's parse_name takes


def _certificate_names(
    subject: x509.Name, subject_alt_names: list[x509.GeneralName] | None
) -> Iterator[_CertificateName]:
    # 6.1.3 (b)(c): an empty subject is no name (4.2.1.6 puts the identity in
    # the subjectAltName then), so only a non-empty one is checked.
    if subject.rdns:
        yield _CertificateName(DIRECTORY_NAME, DIRECTORY_NAME, render(subject), subject)
    # 4.2.1.10 requires rfc822Name constraints to be applied to emailAddress
    # attributes of the subject when the certificate has no subjectAltName.
    # We apply them whether or not there is one, as OpenSSL does: an address
    # outside the constraints is not made acceptable by a SAN next to it.
    for attribute in subject.get_attributes_for_oid(x509.ObjectIdentifier(EMAIL_ADDRESS_OID)):
        value = attribute.value if isinstance(attribute.value, str) else repr(attribute.value)
        yield _CertificateName(RFC822_NAME, "rfc822Name (subject emailAddress)", value, value)
    for general_name in subject_alt_names or ():
        form = _form_of(general_name)
        yield _CertificateName(form, form, _text_of(general_name), general_name.value)


@dataclass(frozen=True)
class NameConstraintsState:
    """The permitted_subtrees and excluded_subtrees of RFC 5280 6.1.2 (b)(c),
    per name form.

    A form missing from ``permitted_subtrees`` is unbounded; a form present
    with no subtrees permits no name at all (an empty intersection). Forms in
    ``unprocessable`` met a constraint that cannot be compared, so any name
    of that form fails.
    """

    permitted_subtrees: SubtreesByForm = ()
    excluded_subtrees: SubtreesByForm = ()
    unprocessable: tuple[tuple[str, str], ...] = ()

    @classmethod
    def initial(cls) -> "NameConstraintsState":
        # 6.1.2 (b)(c): every name form unbounded, nothing excluded.
        return cls()

    @property
    def is_unconstrained(self) -> bool:
        return not (self.permitted_subtrees or self.excluded_subtrees or self.unprocessable)

    def permitted_for(self, form: str) -> Subtrees | None:
        """The permitted subtrees of a form, or None when it is unbounded."""
        return dict(self.permitted_subtrees).get(form)

    def excluded_for(self, form: str) -> Subtrees:
        return dict(self.excluded_subtrees).get(form, ())

    def with_constraints(
        self, nc: x509.NameConstraints, budget: Budget | None = None
    ) -> "NameConstraintsState":
        """6.1.4 (g): the state after a certificate with this extension.

        ``budget`` pays for the intersection's subtree comparisons; without
        one the call gets a fresh default budget of its own, so it is bounded
        either way.
        """
        if budget is None:
            budget = Budget()
        permitted = dict(self.permitted_subtrees)
        excluded = dict(self.excluded_subtrees)
        unprocessable = dict(self.unprocessable)

        new_permitted, permitted_problems = _parse_subtrees(nc.permitted_subtrees)
        new_excluded, excluded_problems = _parse_subtrees(nc.excluded_subtrees)
        for form, reason in {**excluded_problems, **permitted_problems}.items():
            unprocessable.setdefault(form, reason)

        # 6.1.4 (g)(1): a form the extension does not mention keeps its
        # previous permitted subtrees; a form met for the first time was
        # unbounded, so the intersection is the new subtrees themselves.
        for form, subtrees in new_permitted.items():
            if form in permitted:
                permitted[form] = _intersection(form, permitted[form], subtrees, budget)
            else:
                permitted[form] = subtrees
        # 6.1.4 (g)(2): excluded subtrees accumulate.
        for form, subtrees in new_excluded.items():
            excluded[form] = _without_duplicates(excluded.get(form, ()) + subtrees)

        return NameConstraintsState(
            permitted_subtrees=tuple(sorted(permitted.items())),
            excluded_subtrees=tuple(sorted(excluded.items())),
            unprocessable=tuple(sorted(unprocessable.items())),
        )

    def check(
        self,
        subject: x509.Name,
        subject_alt_names: list[x509.GeneralName] | None,
        budget: Budget,
    ) -> str | None:
        """6.1.3 (b)(c): None when every name of the certificate is within
        the permitted subtrees of its form and within no excluded subtree;
        otherwise why not, in plain words."""
        if self.is_unconstrained:
            return None
        permitted = dict(self.permitted_subtrees)
        excluded = dict(self.excluded_subtrees)
        unprocessable = dict(self.unprocessable)
        for name in _certificate_names(subject, subject_alt_names):
            problem = _check_name(
                name,
                permitted.get(name.form),
                excluded.get(name.form, ()),
                unprocessable.get(name.form),
                budget,
            )
            if problem is not None:
                return problem
        return None


def _check_name(
    name: _CertificateName,
    permitted: Subtrees | None,
    excluded: Subtrees,
    unprocessable_reason: str | None,
    budget: Budget,
) -> str | None:
    shown = f"{name.label} '{_shown(name.text)}'"
    if unprocessable_reason is not None:
        return f"{shown} cannot be checked against the name constraints: {unprocessable_reason}"
    if permitted is None and not excluded:
        return None  # 4.2.1.10: restrictions apply only to constrained forms
    rules = _RULES[name.form]  # every form outside _RULES is unprocessable
    try:
        key = rules.parse_name(name.value)
    except _CannotCheck as exc:
        return f"{shown} cannot be checked against the {name.form} name constraints: {exc}"
    for subtree in excluded:
        budget.charge_name_constraints()
        if rules.name_within(key, subtree.key):
            return f"{shown} is within excluded subtree '{_shown(subtree.text)}'"
    if permitted is None:
        return None
    for subtree in permitted:
        budget.charge_name_constraints()
        if rules.name_within(key, subtree.key):
            return None
    return f"{shown} is not within the permitted subtrees (permitted: {_listing(permitted)})"
