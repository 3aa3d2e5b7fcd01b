"""The valid_policy_tree of RFC 5280 6.1, kept as the policy graph of RFC 9618.

RFC 5280's tree makes a separate node for every (parent, policy) pair, which
grows exponentially on crafted policy mappings (OpenSSL CVE-2023-0464). RFC
9618 keeps one node per policy per depth with a set of parents; the outcome
(the user-constrained policy set) is the same, and the size is linear in the
policies and mappings of the path. We do not track qualifiers, as RFC 9618
allows (4.2 (g)(4)): the result object does not report them. Every node and
edge is charged to the verification's budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .budget import Budget

ANY_POLICY = "2.5.29.32.0"


@dataclass
class _Node:
    policy: str
    expected: frozenset[str]
    parents: frozenset[str]


@dataclass
class PolicyGraph:
    """Levels 0..i; level 0 is the anyPolicy root. ``None`` levels == NULL tree."""

    levels: list[dict[str, _Node]] | None = field(
        default_factory=lambda: [{ANY_POLICY: _Node(ANY_POLICY, frozenset({ANY_POLICY}), frozenset())}]
    )

    @property
    def is_null(self) -> bool:
        return self.levels is None

    def copy(self) -> "PolicyGraph":
        if self.levels is None:
            return PolicyGraph(None)
        return PolicyGraph([dict(level) for level in self.levels])

    def process_certificate(self, policies: tuple[str, ...] | None, any_policy_applies: bool, budget: Budget) -> None:
        """6.1.3 (d) and (e). ``any_policy_applies`` is 6.1.3 (d)(2)'s
        condition: inhibit_anyPolicy > 0, or i < n and the certificate is
        self-issued."""
        if self.levels is None:
            return
        if policies is None:  # (e)
            self.levels = None
            return
        previous = self.levels[-1]
        by_expected: dict[str, set[str]] = {}
        for node in previous.values():
            for expected in node.expected:
                by_expected.setdefault(expected, set()).add(node.policy)
        current: dict[str, _Node] = {}
        for policy in policies:  # (d)(1)
            if policy == ANY_POLICY:
                continue
            parents = by_expected.get(policy)
            if parents:
                current[policy] = _Node(policy, frozenset({policy}), frozenset(parents))
            elif ANY_POLICY in previous:
                current[policy] = _Node(policy, frozenset({policy}), frozenset({ANY_POLICY}))
            budget.charge_policy_nodes(1 + len(parents or ()))
        if ANY_POLICY in policies and any_policy_applies:  # (d)(2)
            for expected, parents in by_expected.items():
                if expected not in current:
                    current[expected] = _Node(expected, frozenset({expected}), frozenset(parents))
                    budget.charge_policy_nodes(1 + len(parents))
        self.levels.append(current)
        self._prune()  # (d)(3)

    def apply_mappings(self, mappings: tuple[tuple[str, str], ...], mapping_allowed: bool, budget: Budget) -> None:
        """6.1.4 (b). The caller has checked (a): no anyPolicy in a mapping."""
        if self.levels is None or not mappings:
            return
        current = self.levels[-1]
        grouped: dict[str, set[str]] = {}
        for issuer_policy, subject_policy in mappings:
            grouped.setdefault(issuer_policy, set()).add(subject_policy)
        budget.charge_policy_nodes(len(mappings))
        if mapping_allowed:  # (b)(1)
            for issuer_policy, subject_policies in grouped.items():
                node = current.get(issuer_policy)
                if node is not None:
                    current[issuer_policy] = _Node(node.policy, frozenset(subject_policies), node.parents)
                elif ANY_POLICY in current:
                    # The anyPolicy node at depth i has the anyPolicy node of
                    # depth i-1 as its only parent; the new node hangs there.
                    current[issuer_policy] = _Node(issuer_policy, frozenset(subject_policies), frozenset({ANY_POLICY}))
        else:  # (b)(2)
            for issuer_policy in grouped:
                current.pop(issuer_policy, None)
            self._prune()

    def _prune(self) -> None:
        """Remove nodes (above the deepest level) that have no children."""
        levels = self.levels
        assert levels is not None
        for depth in range(len(levels) - 2, -1, -1):
            referenced: set[str] = set()
            for child in levels[depth + 1].values():
                referenced |= child.parents
            level = levels[depth]
            orphans = [p for p in level if p not in referenced]
            if not orphans:
                break  # nothing removed here, so nothing above loses a child
            for policy in orphans:
                del level[policy]
        if not levels[0] or not levels[-1]:
            self.levels = None

    def authorities_constrained_policy_set(self) -> frozenset[str]:
        """RFC 9618 4.2 (g)(1)-(4): policies in the trust anchor's domain."""
        if self.levels is None:
            return frozenset()
        out: set[str] = set()
        for level in self.levels[1:]:
            for node in level.values():
                if node.policy != ANY_POLICY and node.parents == {ANY_POLICY}:
                    out.add(node.policy)
        if ANY_POLICY in self.levels[-1]:
            out.add(ANY_POLICY)
        return frozenset(out)

    def user_constrained_policy_set(self, user_initial_policy_set: frozenset[str]) -> frozenset[str]:
        """RFC 9618 4.2 (g)(5)-(6), replacing RFC 5280 6.1.5 (g)."""
        authority = self.authorities_constrained_policy_set()
        if ANY_POLICY in user_initial_policy_set:
            return authority
        result = authority & user_initial_policy_set
        if ANY_POLICY in authority:
            result |= user_initial_policy_set
        return frozenset(result)
