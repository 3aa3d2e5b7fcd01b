"""The console's other pages at 60 members (issue 16: < 200 ms each): the work
queues (pending enrollments with their checks, proposals, expiring
cross-certificates), the member list and the blacklist (with where each entry
bites), on the generated federation of bench_console.py (its fixture), against
GET /v1/health in the same run.

    .venv/bin/pytest -q benchmarks/bench_console_queues.py --benchmark-only --benchmark-columns=min,median,mean,ops

Figures: benchmarks/README.md, "Issue 16: the work queues, members and blacklist pages".
"""
from __future__ import annotations

from bench_console import console  # noqa: F401  (the signed-in client over the 60-member federation)


def _get(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response.text


def test_health_reference(benchmark, console):
    _, client, _ = console
    benchmark(_get, client, "/v1/health")


def test_queues_page(benchmark, console):
    _, client, members = console
    pending = [m for m in members if m.state == "pending"]
    page = benchmark(_get, client, "/admin/queues")
    assert pending and all(f'data-enrollment="{m.enrollment_id}"' in page for m in pending)


def test_members_page(benchmark, console):
    _, client, members = console
    assert benchmark(_get, client, "/admin/members").count("data-member=") >= len(members)


def test_blacklist_page(benchmark, console):
    _, client, _ = console
    assert "<h1>" in benchmark(_get, client, "/admin/blacklist")
