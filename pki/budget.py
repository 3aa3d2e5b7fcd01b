"""One budget per verification, so that hostile input cannot blow a search.

The numbers follow pyca/cryptography's verifier and Go's crypto/x509:
Go allows 100 signature checks per chain build; pyca 128 and 2**20 name
constraint comparisons. Depth 8 covers the deepest real bridge paths
(leaf, issuing CA, member root, cross-certificate, bridge, reverse, root)
with room, while PKITS paths are at most 6 long. Policy-graph nodes are
bounded separately because RFC 5280's tree grows exponentially on crafted
mappings (OpenSSL CVE-2023-0464); RFC 9618's graph is linear but a
certificate with thousands of policies still costs nodes.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import BudgetExceeded


@dataclass(frozen=True)
class Limits:
    max_depth: int = 8
    signature_checks: int = 128
    name_constraint_checks: int = 1 << 20
    policy_nodes: int = 10_000
    candidate_paths: int = 1_000
    # Candidate issuers considered while building, cached signatures included:
    # a warm signature cache must not make a mesh search endless.
    candidate_edges: int = 20_000
    # CMS (pki/cms.py; one Budget per verify_cms call). A real SignedData has
    # one SignerInfo, a few for a co-signed document, and carries its signer's
    # chain (a handful of certificates). Without these a message could
    # multiply its work: N certificates sharing one issuer and serial times N
    # SignerInfos with garbage signatures was quadratic (issue 11: 38 s of CPU
    # for a 224 KB body). Counted before anything is parsed or verified, so a
    # hostile message costs a few milliseconds.
    cms_signer_infos: int = 32
    # The message's certificates plus the intermediates given beside it: each
    # is parsed (about 60 us), so a bundle far beyond a chain's length (the
    # deepest bridge path has 7 certificates) is refused before parsing.
    cms_certificates: int = 128
    # (SignerInfo, certificate its identifier matches) pairs: one per
    # SignerInfo normally, two when a renewed certificate kept its key (a
    # subjectKeyIdentifier sid). Every pair may cost a signature verification
    # (also counted against signature_checks), so this bounds them to 64.
    cms_candidate_pairs: int = 64


DEFAULT_LIMITS = Limits()


class Budget:
    """Counters for one verification call; not shared between threads."""

    __slots__ = ("limits", "signature_checks", "name_constraint_checks", "policy_nodes", "candidate_paths", "candidate_edges", "crl_signers_in_progress",
                 "cms_signer_infos", "cms_certificates", "cms_candidate_pairs")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.signature_checks = 0
        self.name_constraint_checks = 0
        self.policy_nodes = 0
        self.candidate_paths = 0
        self.candidate_edges = 0
        self.cms_signer_infos = 0
        self.cms_certificates = 0
        self.cms_candidate_pairs = 0
        # Identities of CRL signers whose own paths are being validated, so a
        # CRL signer whose status depends on itself cannot recurse forever.
        self.crl_signers_in_progress: set = set()

    def charge_signature(self) -> None:
        self.signature_checks += 1
        if self.signature_checks > self.limits.signature_checks:
            raise BudgetExceeded("signature checks", self.limits.signature_checks)

    def charge_name_constraints(self, n: int = 1) -> None:
        self.name_constraint_checks += n
        if self.name_constraint_checks > self.limits.name_constraint_checks:
            raise BudgetExceeded("name-constraint comparisons", self.limits.name_constraint_checks)

    def charge_policy_nodes(self, n: int = 1) -> None:
        self.policy_nodes += n
        if self.policy_nodes > self.limits.policy_nodes:
            raise BudgetExceeded("policy graph nodes", self.limits.policy_nodes)

    def charge_edge(self) -> None:
        self.candidate_edges += 1
        if self.candidate_edges > self.limits.candidate_edges:
            raise BudgetExceeded("candidate issuers considered", self.limits.candidate_edges)

    def charge_candidate_path(self) -> None:
        self.candidate_paths += 1
        if self.candidate_paths > self.limits.candidate_paths:
            raise BudgetExceeded("candidate paths", self.limits.candidate_paths)

    def charge_cms_signer_infos(self, n: int = 1) -> None:
        self.cms_signer_infos += n
        if self.cms_signer_infos > self.limits.cms_signer_infos:
            raise BudgetExceeded("CMS signer infos", self.limits.cms_signer_infos)

    def charge_cms_certificates(self, n: int = 1) -> None:
        self.cms_certificates += n
        if self.cms_certificates > self.limits.cms_certificates:
            raise BudgetExceeded("certificates in the CMS message and intermediates", self.limits.cms_certificates)

    def charge_cms_candidate_pairs(self, n: int = 1) -> None:
        self.cms_candidate_pairs += n
        if self.cms_candidate_pairs > self.limits.cms_candidate_pairs:
            raise BudgetExceeded("(signer info, candidate certificate) pairs", self.limits.cms_candidate_pairs)
