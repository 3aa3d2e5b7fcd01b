"""The console's pages at 60 members (issue 16: each must answer in < 200 ms).

One bridge with the generated 60-member federation (tests/fedgen.py: some
suspended, revoked, expiring, pending, one renewed, a recognised list), the
FastAPI app in process (TestClient, signed in through /admin/login as an
administrator), and one page per benchmark: the overview (with the trust
graph), a member page, the audit trail, the verification page (empty, and
a chain verified through it), the detail panel a click on an edge opens; the
graph's two halves alone; and GET /v1/health, the reference the pages are
compared with in the same run.

    .venv/bin/pytest -q benchmarks/bench_console.py --benchmark-only --benchmark-columns=min,median,mean,ops

Figures: benchmarks/README.md, "Issue 16".
"""
from __future__ import annotations

import re

import pytest

from tests.fedgen import build_federation, init_env

PASSPHRASE = "bench console: not secret"


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from bridge.service import BridgeCA

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BRIDGECA_KEY_PASSPHRASE", PASSPHRASE)
        for var in ("BRIDGECA_DATABASE_URL", "BRIDGECA_BASE_URL", "BRIDGECA_HOME"):
            mp.delenv(var, raising=False)
        for name, value in init_env().items():
            mp.setenv(name, value)
        ca = BridgeCA.init(tmp_path_factory.mktemp("console") / "home", base_url="https://bridge.gba.example")
        members = build_federation(ca, 60)
        token = ca.create_token("admin")
        app = create_app(ca)
        with TestClient(app) as client:
            login = client.get("/admin/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
            signed_in = client.post("/admin/login", data={"csrf": csrf, "token": token}, follow_redirects=False)
            assert signed_in.status_code == 303, signed_in.text[:300]
            yield ca, client, members
        ca.close()


def _get(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response.text


def test_health_reference(benchmark, console):
    _, client, _ = console
    benchmark(_get, client, "/v1/health")


def test_graph_data(benchmark, console):
    from bridge.federation_graph import federation_graph

    ca, _, _ = console
    graph = benchmark(federation_graph, ca)
    assert len(graph.members()) == 60


def test_graph_svg(benchmark, console):
    from api.console.graph_svg import render_federation_svg
    from bridge.federation_graph import federation_graph

    ca, _, _ = console
    graph = federation_graph(ca)
    assert benchmark(render_federation_svg, graph).count('data-kind="cross"') >= 55


def test_overview_page(benchmark, console):
    _, client, _ = console
    assert 'data-kind="cross"' in benchmark(_get, client, "/admin")


def test_member_page(benchmark, console):
    _, client, members = console
    suspended = next(m for m in members if m.state == "suspended")
    assert suspended.name in benchmark(_get, client, f"/admin/members/{suspended.enrollment_id}")


def test_audit_page(benchmark, console):
    _, client, _ = console
    benchmark(_get, client, "/admin/audit")


def test_verify_page(benchmark, console):
    _, client, _ = console
    benchmark(_get, client, "/verify")


def test_verify_page_chain(benchmark, console):
    _, client, members = console
    page = _get(client, "/verify")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    member = next(m for m in members if m.state == "active")
    body = member.chain_body()
    form = {"csrf": csrf, "input": body["certificate"] + "".join(body["intermediates"])}

    def verify() -> str:
        response = client.post("/verify", data=form)
        assert response.status_code == 200, response.text[:300]
        return response.text

    benchmark(verify)


def test_details_of_a_cross_certificate(benchmark, console):
    """The detail panel a click on a graph edge opens (its fragment, fetched by the page's script)."""
    _, client, members = console
    suspended = next(m for m in members if m.state == "suspended")
    assert suspended.serials[0] in benchmark(_get, client, f"/admin/details?kind=cross&id={suspended.serials[0]}")
