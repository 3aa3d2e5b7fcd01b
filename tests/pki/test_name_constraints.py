"""Name constraints (RFC 5280 4.2.1.10, 6.1.3 (b)(c), 6.1.4 (g)) on real
cryptography values, plus the NIST PKITS 4.13 cases."""
from __future__ import annotations

import dataclasses
import ipaddress
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from pki.budget import Budget, Limits
from pki.errors import BudgetExceeded
from pki.name_constraints import NameConstraintsState

PKITS = Path("/work/shared/conformance/pkits")


# --- helpers -------------------------------------------------------------------


def dn(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    """A Name from (oid, value) pairs, most significant RDN first."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


EMPTY_SUBJECT = x509.Name([])
ORG = dn((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Example"))


def constraints(permitted=None, excluded=None) -> x509.NameConstraints:
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=excluded)


def state(*extensions: x509.NameConstraints) -> NameConstraintsState:
    folded = NameConstraintsState.initial()
    for extension in extensions:
        folded = folded.with_constraints(extension)
    return folded


def check(st: NameConstraintsState, sans=None, subject=EMPTY_SUBJECT) -> str | None:
    return st.check(subject, sans, Budget())


def dns(*values: str) -> list[x509.GeneralName]:
    return [x509.DNSName(v) for v in values]


def email(*values: str) -> list[x509.GeneralName]:
    return [x509.RFC822Name(v) for v in values]


def uri(*values: str) -> list[x509.GeneralName]:
    return [x509.UniformResourceIdentifier(v) for v in values]


def ip_net(*values: str) -> list[x509.GeneralName]:
    return [x509.IPAddress(ipaddress.ip_network(v)) for v in values]


def ip(*values: str) -> list[x509.GeneralName]:
    return [x509.IPAddress(ipaddress.ip_address(v)) for v in values]


def dirname(*names: x509.Name) -> list[x509.GeneralName]:
    return [x509.DirectoryName(n) for n in names]


# --- initial state and immutability ----------------------------------------------


def test_initial_state_is_unconstrained_and_accepts_everything_for_free():
    st = NameConstraintsState.initial()
    budget = Budget()
    assert st.is_unconstrained
    sans = dns("anything.example") + email("a@b.example") + ip("10.0.0.1") + uri("urn:x")
    assert st.check(ORG, sans, budget) is None
    assert budget.name_constraint_checks == 0


def test_with_constraints_returns_a_new_state_and_leaves_the_old_one_alone():
    initial = NameConstraintsState.initial()
    constrained = initial.with_constraints(constraints(permitted=dns("example.com")))
    assert constrained is not initial
    assert initial.is_unconstrained
    assert not constrained.is_unconstrained
    with pytest.raises(dataclasses.FrozenInstanceError):
        constrained.permitted_subtrees = ()  # type: ignore[misc]


def test_excluded_only_state_is_not_unconstrained():
    assert not state(constraints(excluded=dns("evil.example"))).is_unconstrained


# --- dNSName -------------------------------------------------------------------------


def test_dns_permitted_matches_the_name_and_its_subdomains_only():
    st = state(constraints(permitted=dns("example.com")))
    assert check(st, dns("example.com")) is None
    assert check(st, dns("www.example.com")) is None
    assert check(st, dns("a.b.example.com")) is None
    assert check(st, dns("badexample.com")) is not None
    assert check(st, dns("bad.example.org")) == (
        "dNSName 'bad.example.org' is not within the permitted subtrees (permitted: example.com)"
    )


def test_dns_every_name_must_be_permitted():
    st = state(constraints(permitted=dns("example.com")))
    message = check(st, dns("www.example.com", "www.example.net"))
    assert message is not None and "www.example.net" in message


def test_dns_leading_dot_means_subdomains_only():
    st = state(constraints(permitted=dns(".example.com")))
    assert check(st, dns("www.example.com")) is None
    assert check(st, dns("example.com")) is not None
    assert check(st, dns("wwwexample.com")) is not None


def test_dns_matching_is_case_insensitive():
    st = state(constraints(permitted=dns("Example.COM"), excluded=dns("SECRET.example.com")))
    assert check(st, dns("WWW.EXAMPLE.com")) is None
    assert check(st, dns("Host.Secret.Example.Com")) is not None


def test_dns_excluded_subtree_rejects_with_the_subtree_named():
    st = state(constraints(excluded=dns("evil.example")))
    assert check(st, dns("good.example")) is None
    assert check(st, dns("www.evil.example")) == (
        "dNSName 'www.evil.example' is within excluded subtree 'evil.example'"
    )
    assert check(st, dns("notevil.example")) is None


def test_dns_empty_constraint_is_the_whole_name_space():
    assert check(state(constraints(permitted=dns(""))), dns("any.thing")) is None
    assert check(state(constraints(excluded=dns(""))), dns("any.thing")) is not None


def test_dns_intersection_keeps_the_narrower_subtree():
    st = state(
        constraints(permitted=dns("example.com")),
        constraints(permitted=dns("www.example.com")),
    )
    assert check(st, dns("a.www.example.com")) is None
    assert check(st, dns("mail.example.com")) is not None
    assert [s.text for s in st.permitted_for("dNSName")] == ["www.example.com"]


def test_dns_intersection_keeps_an_earlier_narrower_subtree():
    st = state(
        constraints(permitted=dns("www.example.com")),
        constraints(permitted=dns("example.com")),
    )
    assert [s.text for s in st.permitted_for("dNSName")] == ["www.example.com"]
    assert check(st, dns("a.www.example.com")) is None
    assert check(st, dns("mail.example.com")) is not None


def test_dns_intersection_of_name_and_leading_dot_form():
    st = state(
        constraints(permitted=dns("example.com")),
        constraints(permitted=dns(".example.com")),
    )
    assert check(st, dns("www.example.com")) is None
    assert check(st, dns("example.com")) is not None


def test_dns_intersection_of_several_subtrees_keeps_each_overlap():
    st = state(
        constraints(permitted=dns("a.example", "b.example", "c.example")),
        constraints(permitted=dns("x.a.example", "b.example", "d.example")),
    )
    assert {s.text for s in st.permitted_for("dNSName")} == {"x.a.example", "b.example"}
    assert check(st, dns("y.b.example")) is None
    assert check(st, dns("y.a.example")) is not None
    assert check(st, dns("c.example")) is not None


def test_dns_disjoint_intersection_permits_no_dns_name_at_all():
    st = state(
        constraints(permitted=dns("example.com")),
        constraints(permitted=dns("example.org")),
    )
    assert st.permitted_for("dNSName") == ()
    assert check(st, dns("example.com")) == (
        "dNSName 'example.com' is not within the permitted subtrees (permitted: none)"
    )
    assert check(st, dns("example.org")) is not None
    # Other forms are still unconstrained, and a certificate without DNS names passes.
    assert check(st, email("a@anywhere.example"), subject=ORG) is None


def test_permitted_subtrees_of_a_form_not_in_the_extension_are_kept():
    st = state(
        constraints(permitted=dns("example.com")),
        constraints(permitted=email("example.com")),
    )
    assert check(st, dns("www.example.com") + email("x@example.com")) is None
    assert check(st, dns("www.example.org")) is not None
    assert check(st, email("x@example.org")) is not None


def test_excluded_subtrees_accumulate_along_the_path():
    st = state(
        constraints(excluded=dns("one.example")),
        constraints(excluded=dns("two.example")),
    )
    assert check(st, dns("a.one.example")) is not None
    assert check(st, dns("a.two.example")) is not None
    assert check(st, dns("three.example")) is None


def test_excluded_wins_over_permitted():
    st = state(constraints(permitted=dns("example.com"), excluded=dns("secret.example.com")))
    assert check(st, dns("www.example.com")) is None
    assert "excluded" in check(st, dns("x.secret.example.com"))


def test_malformed_dns_name_is_rejected_only_when_dns_is_constrained():
    st = state(constraints(permitted=dns("example.com")))
    message = check(st, dns("www..example.com"))
    assert message is not None and "cannot be checked" in message
    assert check(NameConstraintsState.initial(), dns("www..example.com")) is None


def test_malformed_constraint_makes_its_form_unprocessable():
    st = state(constraints(excluded=dns("bad..constraint", "evil.example")))
    message = check(st, dns("good.example"))
    assert message is not None and "malformed" in message
    # Names of other forms are not affected.
    assert check(st, email("a@good.example")) is None


# --- rfc822Name --------------------------------------------------------------------------


def test_email_mailbox_constraint_is_one_mailbox():
    st = state(constraints(permitted=email("root@example.com")))
    assert check(st, email("root@example.com")) is None
    assert check(st, email("root@EXAMPLE.com")) is None  # the host is case-insensitive
    assert check(st, email("admin@example.com")) is not None
    assert check(st, email("root@www.example.com")) is not None


def test_email_local_part_is_case_sensitive():
    st = state(constraints(permitted=email("root@example.com")))
    assert check(st, email("Root@example.com")) is not None


def test_email_host_constraint_is_that_host_only():
    st = state(constraints(permitted=email("example.com")))
    assert check(st, email("anyone@example.com")) is None
    assert check(st, email("anyone@Example.Com")) is None
    assert check(st, email("anyone@mail.example.com")) is not None
    assert check(st, email("anyone@badexample.com")) is not None


def test_email_leading_dot_is_every_host_below_the_domain():
    st = state(constraints(permitted=email(".example.com")))
    assert check(st, email("a@mail.example.com")) is None
    assert check(st, email("a@x.mail.example.com")) is None
    assert check(st, email("a@example.com")) is not None


def test_email_excluded():
    st = state(constraints(excluded=email("example.com")))
    assert check(st, email("a@example.com")) == (
        "rfc822Name 'a@example.com' is within excluded subtree 'example.com'"
    )
    assert check(st, email("a@mail.example.com")) is None


def test_email_intersection_host_and_domain_are_disjoint():
    st = state(
        constraints(permitted=email("example.com")),
        constraints(permitted=email(".example.com")),
    )
    assert st.permitted_for("rfc822Name") == ()
    assert check(st, email("a@example.com")) is not None
    assert check(st, email("a@mail.example.com")) is not None


def test_email_intersection_keeps_the_narrower_subtree():
    st = state(
        constraints(permitted=email(".example.com")),
        constraints(permitted=email("mail.example.com", "root@example.com")),
    )
    assert [s.text for s in st.permitted_for("rfc822Name")] == ["mail.example.com"]
    assert check(st, email("a@mail.example.com")) is None
    assert check(st, email("root@example.com")) is not None
    st = state(
        constraints(permitted=email("example.com")),
        constraints(permitted=email("root@example.com")),
    )
    assert check(st, email("root@example.com")) is None
    assert check(st, email("other@example.com")) is not None


def test_malformed_email_address_is_rejected_when_constrained():
    st = state(constraints(permitted=email("example.com")))
    message = check(st, email("no-at-sign.example.com"))
    assert message is not None and "not a valid mailbox" in message


def test_subject_email_address_is_checked_without_a_san():
    st = state(constraints(permitted=email("example.com")))
    good = dn((NameOID.COMMON_NAME, "x"), (NameOID.EMAIL_ADDRESS, "x@example.com"))
    bad = dn((NameOID.COMMON_NAME, "x"), (NameOID.EMAIL_ADDRESS, "x@evil.example"))
    assert check(st, None, subject=good) is None
    message = check(st, None, subject=bad)
    assert message is not None and "x@evil.example" in message and "emailAddress" in message


def test_subject_email_address_is_checked_even_with_a_san():
    st = state(constraints(excluded=email("evil.example")))
    bad = dn((NameOID.COMMON_NAME, "x"), (NameOID.EMAIL_ADDRESS, "x@evil.example"))
    assert check(st, dns("www.good.example") + email("x@good.example"), subject=bad) is not None


def test_subject_without_email_address_passes_email_constraints():
    st = state(constraints(permitted=email("example.com")))
    assert check(st, None, subject=ORG) is None


# --- uniformResourceIdentifier ------------------------------------------------------------


def test_uri_constraint_without_dot_is_exactly_that_host():
    st = state(constraints(permitted=uri("example.com")))
    assert check(st, uri("https://example.com/path")) is None
    assert check(st, uri("https://user@EXAMPLE.com:8443/x?y")) is None
    assert check(st, uri("https://www.example.com/")) is not None


def test_uri_leading_dot_is_hosts_below_the_domain():
    st = state(constraints(permitted=uri(".example.com")))
    assert check(st, uri("http://www.example.com/index.html")) is None
    assert check(st, uri("http://example.com/")) is not None


def test_uri_excluded():
    st = state(constraints(excluded=uri("evil.example")))
    assert check(st, uri("ftp://evil.example:21/x")) is not None
    assert check(st, uri("ftp://www.evil.example/x")) is None


def test_uri_without_host_fails_permitted_uri_constraints():
    st = state(constraints(permitted=uri(".example.com")))
    message = check(st, uri("urn:uuid:0e0c2e7a-22b1-4c7e-9e8b-1c0d1f0a7b3c"))
    assert message is not None and "no host" in message


def test_uri_without_host_or_with_ip_host_fails_excluded_uri_constraints_too():
    st = state(constraints(excluded=uri("evil.example")))
    assert check(st, uri("urn:isbn:0451450523")) is not None
    assert check(st, uri("http://192.0.2.1/")) is not None
    assert check(st, uri("http://[2001:db8::1]/")) is not None


def test_uri_without_host_passes_when_uris_are_unconstrained():
    st = state(constraints(permitted=dns("example.com")))
    assert check(st, uri("urn:isbn:0451450523")) is None


def test_uri_intersection():
    st = state(
        constraints(permitted=uri(".example.com")),
        constraints(permitted=uri("www.example.com", "example.com")),
    )
    assert [s.text for s in st.permitted_for("uniformResourceIdentifier")] == ["www.example.com"]
    assert check(st, uri("https://www.example.com/")) is None
    assert check(st, uri("https://example.com/")) is not None


# --- iPAddress ------------------------------------------------------------------------------


def test_ipv4_permitted_and_excluded():
    st = state(constraints(permitted=ip_net("10.0.0.0/8"), excluded=ip_net("10.9.0.0/16")))
    assert check(st, ip("10.1.2.3")) is None
    assert check(st, ip("192.0.2.1")) == (
        "iPAddress '192.0.2.1' is not within the permitted subtrees (permitted: 10.0.0.0/8)"
    )
    assert check(st, ip("10.9.8.7")) == "iPAddress '10.9.8.7' is within excluded subtree '10.9.0.0/16'"


def test_ipv6_permitted():
    st = state(constraints(permitted=ip_net("2001:db8::/32")))
    assert check(st, ip("2001:db8::1")) is None
    assert check(st, ip("2001:db9::1")) is not None


def test_ipv4_never_matches_ipv6_constraints_and_back():
    v6_only = state(constraints(permitted=ip_net("::/0")))
    assert check(v6_only, ip("192.0.2.1")) is not None
    mapped = state(constraints(permitted=ip_net("::ffff:0:0/96")))
    assert check(mapped, ip("192.0.2.1")) is not None
    v4_only = state(constraints(permitted=ip_net("0.0.0.0/0")))
    assert check(v4_only, ip("::ffff:192.0.2.1")) is not None
    v4_excluded = state(constraints(excluded=ip_net("0.0.0.0/0")))
    assert check(v4_excluded, ip("2001:db8::1")) is None


def test_ip_intersection_keeps_the_narrower_network_and_drops_disjoint_ones():
    st = state(
        constraints(permitted=ip_net("10.0.0.0/8", "2001:db8::/32")),
        constraints(permitted=ip_net("10.1.0.0/16", "192.168.0.0/16")),
    )
    assert [s.text for s in st.permitted_for("iPAddress")] == ["10.1.0.0/16"]
    assert check(st, ip("10.1.0.1")) is None
    assert check(st, ip("10.2.0.1")) is not None
    assert check(st, ip("192.168.0.1")) is not None
    assert check(st, ip("2001:db8::1")) is not None


def test_ip_disjoint_intersection_permits_no_address():
    st = state(
        constraints(permitted=ip_net("10.0.0.0/8")),
        constraints(permitted=ip_net("2001:db8::/32")),
    )
    assert st.permitted_for("iPAddress") == ()
    assert check(st, ip("10.0.0.1")) is not None
    assert check(st, ip("2001:db8::1")) is not None


# --- directoryName ---------------------------------------------------------------------------


BASE = dn((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Test Certificates"))
SALES = dn(*[(a.oid, a.value) for a in BASE], (NameOID.ORGANIZATIONAL_UNIT_NAME, "Sales"))
EVIL = dn((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Evil"))


def under(base: x509.Name, *pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return dn(*[(a.oid, a.value) for a in base], *pairs)


def test_directory_name_subject_must_be_below_a_permitted_subtree():
    st = state(constraints(permitted=dirname(BASE)))
    assert check(st, None, subject=under(BASE, (NameOID.COMMON_NAME, "alice"))) is None
    assert check(st, None, subject=BASE) is None  # the subtree's own base is within it
    message = check(st, None, subject=under(EVIL, (NameOID.COMMON_NAME, "mallory")))
    assert message == (
        "directoryName 'CN=mallory,O=Evil,C=US' is not within the permitted subtrees "
        "(permitted: O=Test Certificates,C=US)"
    )


def test_directory_name_prefix_is_by_rdn_not_by_string():
    st = state(constraints(permitted=dirname(BASE)))
    longer_value = dn((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Test Certificates Ltd"))
    assert check(st, None, subject=longer_value) is not None
    reordered = dn((NameOID.ORGANIZATION_NAME, "Test Certificates"), (NameOID.COUNTRY_NAME, "US"))
    assert check(st, None, subject=reordered) is not None


def test_directory_name_comparison_ignores_case_and_extra_spaces():
    st = state(constraints(permitted=dirname(BASE)))
    spelled_differently = dn(
        (NameOID.COUNTRY_NAME, "us"),
        (NameOID.ORGANIZATION_NAME, "  TEST   certificates "),
        (NameOID.COMMON_NAME, "bob"),
    )
    assert check(st, None, subject=spelled_differently) is None


def test_directory_name_excluded_subject_and_san():
    st = state(constraints(excluded=dirname(EVIL)))
    evil_cn = under(EVIL, (NameOID.COMMON_NAME, "x"))
    assert check(st, None, subject=evil_cn) == "directoryName 'CN=x,O=Evil,C=US' is within excluded subtree 'O=Evil,C=US'"
    assert check(st, dirname(evil_cn), subject=BASE) is not None
    assert check(st, dirname(SALES), subject=BASE) is None


def test_directory_name_in_san_must_be_permitted():
    st = state(constraints(permitted=dirname(BASE)))
    assert check(st, dirname(SALES), subject=BASE) is None
    assert check(st, dirname(EVIL), subject=BASE) is not None


def test_empty_subject_is_not_checked_against_directory_name_constraints():
    st = state(constraints(permitted=dirname(BASE)))
    assert check(st, dns("www.example.com"), subject=EMPTY_SUBJECT) is None


def test_directory_name_intersection_keeps_the_longer_prefix():
    st = state(constraints(permitted=dirname(BASE)), constraints(permitted=dirname(SALES)))
    assert check(st, None, subject=under(SALES, (NameOID.COMMON_NAME, "s"))) is None
    assert check(st, None, subject=under(BASE, (NameOID.COMMON_NAME, "b"))) is not None
    disjoint = state(constraints(permitted=dirname(BASE)), constraints(permitted=dirname(EVIL)))
    assert disjoint.permitted_for("directoryName") == ()
    assert check(disjoint, None, subject=BASE) is not None


def test_multi_valued_rdn_attribute_order_does_not_matter():
    rdn_ab = x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "A"), x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "B")]
    )
    rdn_ba = x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "B"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "A")]
    )
    st = state(constraints(permitted=dirname(x509.Name([rdn_ab]))))
    subject = x509.Name([rdn_ba, x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "c")])])
    assert check(st, None, subject=subject) is None


# --- forms this module cannot compare -----------------------------------------------------------

OTHER = x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x03a@b")
REGISTERED = x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4"))


def test_other_name_constraint_rejects_other_names_in_the_certificate():
    st = state(constraints(permitted=[OTHER]))
    message = check(st, [OTHER])
    assert message is not None and message.startswith("otherName") and "not supported" in message
    excluded_only = state(constraints(excluded=[OTHER]))
    assert check(excluded_only, [OTHER]) is not None


def test_registered_id_constraint_rejects_registered_ids():
    st = state(constraints(excluded=[REGISTERED]))
    message = check(st, [REGISTERED])
    assert message is not None and "registeredID" in message


def test_unsupported_constraint_does_not_affect_other_forms():
    st = state(constraints(permitted=[OTHER]))
    assert not st.is_unconstrained
    assert check(st, dns("www.example.com"), subject=ORG) is None


def test_unconstrained_unsupported_names_pass():
    st = state(constraints(permitted=dns("example.com")))
    assert check(st, [OTHER, REGISTERED] + dns("www.example.com")) is None


# --- budget ---------------------------------------------------------------------------------------


def test_budget_is_charged_once_per_name_and_subtree_comparison():
    st = state(constraints(excluded=dns("a.example", "b.example", "c.example")))
    budget = Budget()
    assert st.check(EMPTY_SUBJECT, dns("x.example", "y.example"), budget) is None
    assert budget.name_constraint_checks == 2 * 3


def test_thousands_of_subtrees_and_names_exhaust_a_small_budget():
    many_subtrees = dns(*[f"excluded{i}.example" for i in range(3000)])
    many_names = dns(*[f"host{i}.example" for i in range(3000)])
    st = state(constraints(excluded=many_subtrees))
    budget = Budget(Limits(name_constraint_checks=1000))
    with pytest.raises(BudgetExceeded):
        st.check(EMPTY_SUBJECT, many_names, budget)
    assert budget.name_constraint_checks == 1001


def test_intersection_of_huge_permitted_sets_is_bounded_by_the_budget():
    first = constraints(permitted=dns(*[f"a{i}.example" for i in range(3000)]))
    second = constraints(permitted=dns(*[f"b{i}.example" for i in range(3000)]))
    st = NameConstraintsState.initial().with_constraints(first)
    with pytest.raises(BudgetExceeded):
        st.with_constraints(second, Budget(Limits(name_constraint_checks=1000)))
    with pytest.raises(BudgetExceeded):  # 9 million pairs exceed the default budget too
        st.with_constraints(second)


# --- NIST PKITS 4.13 ------------------------------------------------------------------------------


def _pkits_name_constraints_cases() -> list[dict]:
    manifest = json.loads((PKITS / "pkits.json").read_text())
    return [case for case in manifest["cases"] if case["section"] == "4.13"]


def _load(relative: str) -> x509.Certificate:
    return x509.load_der_x509_certificate((PKITS / relative).read_bytes())


def test_pkits_has_all_38_name_constraints_cases():
    assert len(_pkits_name_constraints_cases()) == 38


@pytest.mark.parametrize("case", _pkits_name_constraints_cases(), ids=lambda case: case["id"])
def test_pkits_name_constraints(case):
    st = NameConstraintsState.initial()
    for relative in case["intermediates"]:
        try:
            extension = _load(relative).extensions.get_extension_for_class(x509.NameConstraints)
        except x509.ExtensionNotFound:
            continue
        st = st.with_constraints(extension.value)
    end_entity = _load(case["end_entity"])
    try:
        sans = list(end_entity.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        sans = None
    problem = st.check(end_entity.subject, sans, Budget())
    outcome = "valid" if problem is None else "invalid"
    assert outcome == case["expected"], problem
