"""azure-firewall's narrowed statement (Query.narrow, as the store runs it: the stored columns)
reads fewer JSON paths: it must keep, reject and skip the same records with the same values
in the columns it yields as the full statement."""

import json

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import store
from portlens.sources.azure_firewall import _DETAIL_COLUMNS, SOURCE
from portlens.sources.base import parse_file
from narrowing import full_and_narrow
from test_source_azure_firewall import legacy, structured

NAT = {"category": "AZFWNatRule", "time": "2024-01-01T00:00:00Z",
       "properties": {"Protocol": "TCP", "SourceIp": "1.2.3.4", "SourcePort": 1, "DestinationIp": "5.6.7.8",
                      "DestinationPort": 80, "TranslatedIp": "10.0.0.1", "TranslatedPort": 99999,
                      "Rule": "r", "ActionReason": "why"}}


def _both(path: str, keep: frozenset) -> tuple[pa.Table, pa.Table]:
    return full_and_narrow(SOURCE, path, keep)


def _write(tmp_path, recs) -> str:
    path = tmp_path / "fw.json"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return str(path)


def test_stored_columns_need_no_detail():
    assert store._KEEP.isdisjoint(_DETAIL_COLUMNS)


def test_narrowed_reads_fewer_paths(tmp_path):
    batch = next(parse_file(SOURCE, _write(tmp_path, [NAT])))
    assert "$.properties.Rule" in batch.pending.sql()
    assert "$.properties.Rule" not in batch.pending.sql(store._KEEP)
    full, narrow = _both(_write(tmp_path, [NAT]), store._KEEP)
    assert full.equals(narrow) and full["_reason"].to_pylist() == ["DstNatPortNumber: port outside 0-65535"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(legacy, structured, st.just(NAT)), min_size=1, max_size=8))
def test_narrowed_same_as_full(tmp_path_factory, recs):
    full, narrow = _both(_write(tmp_path_factory.mktemp("n"), recs), store._KEEP)
    assert full.equals(narrow)
