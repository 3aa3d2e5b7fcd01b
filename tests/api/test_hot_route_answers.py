"""The hot routes (POST /v1/verify/chain, /v1/verify/signature,
/v1/verify/batch) answer every case tests/api exercises as they did before
their handlers were rewritten for issue 17: each case of
tests/api/record_hot_answers.py is replayed against a new federation and
compared with tests/api/data/hot_route_answers.json (status, content type,
problem code and the body, deterministic parts)."""
from __future__ import annotations

import json

import pytest

from .conftest import bridge_env, make_federation
from .record_hot_answers import DATA, record


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    fed = make_federation(tmp_path_factory.mktemp("hot") / "home", codes=("HK", "GD"))
    try:
        with bridge_env(), fed.client:
            yield record(fed)
    finally:
        fed.ca.close()


def test_every_recorded_case_is_still_asked(replayed):
    recorded = json.loads(DATA.read_text())
    assert set(replayed) == set(recorded)
    assert len(recorded) > 200


def test_every_answer_equals_the_recorded_one(replayed):
    recorded = json.loads(DATA.read_text())
    differ = [f"{key}:\n  was {json.dumps(recorded[key], sort_keys=True)[:400]}\n  now {json.dumps(answer, sort_keys=True)[:400]}"
              for key, answer in sorted(replayed.items()) if key in recorded and recorded[key] != answer]
    assert not differ, f"{len(differ)} answers changed:\n" + "\n".join(differ)
