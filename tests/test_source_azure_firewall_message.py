"""azure-firewall's legacy message: the split_part reading of its common shapes must capture
what _MSG_RE captures, on every message."""

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import asim
from portlens.sources.azure_firewall import _MSG_GROUPS, _MSG_RE, _message, _shape
from portlens.sources._sql import lit


def _both(msgs: list) -> tuple[list, list, list]:
    """(regex captures, split_part captures, shapes) of each message."""
    groups = ", ".join(lit(g) for g in _MSG_GROUPS)
    t = asim.query(f"SELECT regexp_extract(m, {lit(_MSG_RE)}, [{groups}]) AS a, {_message('m', 's', 'w')} AS b, s "
                   f"FROM (SELECT *, string_split(m, ' ') AS w FROM (SELECT m, {_shape('m')} AS s FROM t))",
                   t=pa.table({"m": pa.array(msgs, pa.string())}))
    return t["a"].to_pylist(), t["b"].to_pylist(), t["s"].to_pylist()


def test_common_shapes():
    msgs = ["TCP request from 10.0.0.1:5 to 10.0.0.2:53. Action: Allow. Rule: r",
            "ICMP Type=8 request from 10.0.0.1 to 10.0.0.2. Action: Deny.",
            "TCP request from 1.2.3.4:5 to 5.6.7.8:80 was DNAT'ed to 10.0.0.9:8080",
            "TCP request from 1.2.3.4:5 to 5.6.7.8:80 was DNAT'ed to 10.0.0.9:8080.   Policy: p ",
            "UDP request from a: to b.. Action: Allow..", "TCP request from a to b.",
            "TCP\trequest from a to b. Action: Allow", "TCP request from a to b. x\ny", " TCP request from a to b.",
            "TCP request from a to b", "TCP request from a to b.c", None, ""]
    regex, split, shapes = _both(msgs)
    assert split == regex
    assert shapes[:6] == [1, 1, 2, 2, 1, 1] and shapes[6:12] == [0] * 6
    assert split[0] == {"proto": "TCP", "itype": "", "src": "10.0.0.1:5", "dst": "10.0.0.2:53", "nat": "",
                        "rest": "Action: Allow. Rule: r"}
    assert split[1]["itype"] == "8" and split[4]["dst"] == "b."


WORDS = ["TCP", "ICMP", "Type=8", "Type=", "Type=x", "request", "from", "to", "was", "DNAT'ed", "a", "1.2.3.4:5",
         "[::1]:80", "b.", ".", "..", "c.d", "Action:", "Allow.", "", "é"]
BLANKS = [" ", " ", " ", "  ", "\t", "\n"]


@st.composite
def messages(draw):
    head = draw(st.sampled_from(["TCP request from a to", "ICMP Type=8 request from a: to", "x request from [::1]:5 to",
                                 "TCP request from a to b was DNAT'ed to"]))
    words = draw(st.lists(st.sampled_from(WORDS), max_size=8))
    blanks = draw(st.lists(st.sampled_from(BLANKS), min_size=len(words) + 1, max_size=len(words) + 1))
    text = head + "".join(b + w for b, w in zip(blanks, words)) + blanks[-1] * draw(st.booleans())
    return draw(st.sampled_from([text, text.replace(" ", "\t", 1), " " + text, text + draw(st.text(max_size=4))]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages(), min_size=1, max_size=20))
def test_same_captures_as_the_regex(msgs):
    regex, split, _ = _both(msgs)
    assert split == regex
