"""The scaling benchmark's changelog records match what the worker writes."""

from __future__ import annotations

import faust.serializers.codecs as faust_codecs
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from benchmarks import preload
from benchmarks.scaling import histogram_quantile, parse_args, plan_input
from schemas.signing import public_key_hex, verify
from streams.decision import AgentState, SeenEntry, claim_key, id_key

PARTITIONS = 6


def test_agent_record_matches_faust_json() -> None:
    """Key and value are what faust's json codec makes of the table key and state."""
    agent = preload.agent_id(7, 3)

    [(partition, key, value)] = preload.agent_records([agent], PARTITIONS)

    assert key == faust_codecs.dumps("json", agent)
    assert value == faust_codecs.dumps("json", preload.preloaded_state().to_dict())
    assert AgentState.from_dict(orjson.loads(value)) == preload.preloaded_state()
    assert partition == DefaultPartitioner()(agent.encode(), list(range(PARTITIONS)), [])


def test_preloaded_state_not_idle() -> None:
    """The sweep keeps an agent with review history, so the preload does not shrink."""
    state = preload.preloaded_state()

    assert state.approvals + state.rejections > 0
    assert state.last_offset == -1


def test_agent_id_is_public_key_of_signing_key() -> None:
    assert preload.agent_id(1, 42) == public_key_hex(preload.agent_signing_key(1, 42))
    assert preload.agent_id(1, 42) != preload.agent_id(2, 42)


def test_seen_records_count_and_keys() -> None:
    agents = [preload.agent_id(1, number) for number in range(3)]

    records = list(preload.seen_records(agents, 13, now_ms=10_000_000, partitions=PARTITIONS))

    assert len(records) == 13
    keys = [orjson.loads(key) for _, key, _ in records]
    assert len(set(keys)) == 13
    assert f"{agents[0]}/{id_key('old-0')}" in keys
    assert f"{agents[1]}/{claim_key(*preload.earlier_claim(1, 0))}" in keys
    for partition, key, value in records:
        agent = orjson.loads(key).split("/")[0]
        assert partition == preload.partition_of(agent, PARTITIONS)
        assert value == faust_codecs.dumps(
            "json", SeenEntry.from_dict(orjson.loads(value)).to_dict()
        )


def test_seen_entries_within_lookback() -> None:
    now_ms = 10_000_000_000
    agents = [preload.agent_id(1, 0)]

    entries = [
        SeenEntry.from_dict(orjson.loads(value))
        for _, _, value in preload.seen_records(agents, 1000, now_ms, PARTITIONS)
    ]

    assert max(now_ms - entry.at_ms for entry in entries) < 48 * 3_600_000
    assert all(entry.scored for entry in entries)


def test_plan_input_signs_and_spreads() -> None:
    planned = plan_input(agents=10, records=35, earlier_per_agent=5, duplicate_share=0.2, seed=1)

    assert len(planned.records) == 35
    assert planned.senders == 10
    assert planned.duplicates_of_preloaded > 0
    assert planned.duplicates_within_run == 0
    bodies = [orjson.loads(value) for _, value in planned.records]
    assert all(verify(body) for body in bodies)
    per_agent = {body["agent_id"] for body in bodies}
    assert per_agent <= {preload.agent_id(1, number) for number in range(10)}


def test_plan_input_one_record_per_agent() -> None:
    planned = plan_input(agents=1000, records=50, earlier_per_agent=0, duplicate_share=0.0, seed=2)

    assert planned.senders == 50


@pytest.mark.parametrize(
    ("quantile", "expected"),
    # Ranks 50 and 149 fall inside finite buckets; rank 200 falls in +Inf, which
    # returns the largest finite bound.
    [(0.25, 0.0015), (0.745, 0.006), (1.0, 0.01)],
)
def test_histogram_quantile_interpolates(quantile: float, expected: float) -> None:
    buckets = [(0.001, 0.0), (0.002, 100.0), (0.01, 198.0), (float("inf"), 200.0)]

    assert histogram_quantile(buckets, quantile) == pytest.approx(expected)


def test_histogram_quantile_empty() -> None:
    assert histogram_quantile([], 0.5) is None


def test_parse_args_rejects_flood_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--agents", "10,1000", "--records", "1000", "--curves", "agents"])

    assert "records per agent" in capsys.readouterr().err
