"""The conform statement's text rules agree with their Python statement (hypothesis): trimming
as str.strip() does, protocols as protocol_name() does. The SQL takes shortcuts for the common
cases (printable ends, the common protocols); these properties hold them to the full rules."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from portlens import asim

_PROTOCOLISH = st.one_of(
    st.sampled_from(["tcp", "TCP", "Udp", "icmp", "6", "17", "1", "06", "017", "58", "gre", "ipv6-icmp",
                     "TCPv6", "icmp6", "256", "99999999999", "", "-", "tcp/ip"]),
    st.integers(min_value=0, max_value=300).map(str),
    st.text(alphabet="tcpudICMP0123456789-/ \t", max_size=6),
)
_SPACE = st.sampled_from([" ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\x1c", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_SPACE, _PROTOCOLISH, _SPACE), min_size=1, max_size=20))
def test_protocols_map_as_protocol_name_does(values):
    texts = [a + v + b for a, v, b in values]
    out = asim.conform({"TimeGenerated": ["2024-05-01T00:00:00Z"] * len(texts), "NetworkProtocol": texts})
    expected = [asim.protocol_name(t) for t in texts]
    # an unknown protocol rejects its row; a blank one is simply NULL
    want = [e for t, e in zip(texts, expected) if e is not None or not t.strip()]
    assert out.table["NetworkProtocol"].to_pylist() == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_SPACE, st.text(min_size=0, max_size=6), _SPACE), min_size=1, max_size=20))
def test_text_is_trimmed_as_str_strip_does(values):
    texts = [a + v + b for a, v, b in values]
    out = asim.conform({"TimeGenerated": ["2024-05-01T00:00:00Z"] * len(texts), "EventVendor": texts})
    assert out.table["EventVendor"].to_pylist() == [t.strip() or None for t in texts]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_PROTOCOLISH, st.tuples(_SPACE, _PROTOCOLISH).map("".join)), min_size=1, max_size=20))
def test_vendor_protocol_sql_settles_common_values_as_its_full_lookup_does(values):
    con = duckdb.connect()
    got = con.execute(f"SELECT {asim.protocol_sql('x')}, {asim.protocol_lookup_sql('x')} "
                      "FROM (SELECT unnest(?::VARCHAR[]) AS x)", [values]).fetchall()
    assert [fast for fast, _ in got] == [full for _, full in got]
