"""What `_records.event_fields` reads out of a Windows event XML record (the sysmon and
windows-firewall sources rely on it): small exact cases, and a per-record Python reference the
vectorized extraction must agree with on generated records, so a faster rewrite can be held to
the same results."""

import re

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from portlens.sources._records import event_fields

# What Arrow's utf8_trim_whitespace trims (Unicode white space).
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
              "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_S = r"[\t\n\f\r ]"  # RE2's \s
_DATA = re.compile(rf"""Name{_S}*={_S}*["'](?P<k>[^"']*)["']{_S}*(?:/>|>(?P<v>[^<]*)</Data>)""")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def clean(value):
    if value is None:
        return None
    value = value.strip(WHITESPACE)
    for entity, char in _ENTITIES:
        value = value.replace(entity, char)
    return value or None


def reference(record, data, system, attributes):
    """One record's fields, the plain way."""
    out = {}
    pairs = [m for m in (_DATA.match(p) for p in record.split("<Data ")) if m]
    for name in data:
        hit = next((m for m in pairs if m["k"].strip(WHITESPACE).lower() == name.lower()), None)
        out[name] = clean(hit["v"]) if hit else None
    for tag in system:
        m = re.search(rf"<{tag}(?:{_S}[^>]*)?>([^<]*)</{tag}>", record)
        out[tag] = clean(m[1]) if m else None
    for tag, attr in attributes:
        m = re.search(rf"""<{tag}{_S}[^>]*?\b{attr}{_S}*={_S}*["']([^"']*)["']""", record, re.ASCII)
        out[f"{tag}@{attr}"] = clean(m[1]) if m else None
    return out


def fields(records, data=("SourceIp", "DestinationPort"), system=("EventID",),
           attributes=(("TimeCreated", "SystemTime"),)):
    t = event_fields(pa.table({"_raw": pa.array(records, pa.string())}), data, system, attributes)
    return t.drop_columns(["_raw"]).to_pylist()


def test_names_are_case_insensitive_and_the_first_wins():
    record = ('<Event><System><EventID>3</EventID><TimeCreated SystemTime="2024-05-01T00:00:00Z"/>'
              '</System><EventData><Data Name="sourceip">10.0.0.1</Data><Data Name="SourceIp">10.0.0.2</Data>'
              '<Data Name=\'DestinationPort\' >443</Data></EventData></Event>')
    assert fields([record]) == [{"SourceIp": "10.0.0.1", "DestinationPort": "443", "EventID": "3",
                                 "TimeCreated@SystemTime": "2024-05-01T00:00:00Z"}]


def test_values_are_trimmed_unescaped_and_empty_is_null():
    record = ('<Event><EventData><Data Name=" SourceIp ">\u3000a&amp;lt;b&lt; </Data>'
              '<Data Name="DestinationPort"/></EventData></Event>')
    assert fields([record]) == [{"SourceIp": "a&lt;b<", "DestinationPort": None, "EventID": None,
                                 "TimeCreated@SystemTime": None}]


def test_a_malformed_element_is_passed_over():
    record = ('<Event><EventData><Data Name="SourceIp">a<b>c</Data>'
              '<Data Name="SourceIp">10.0.0.9</Data></EventData></Event>')
    assert fields([record])[0]["SourceIp"] == "10.0.0.9"


def test_null_and_empty_records():
    assert fields([None, ""]) == [dict.fromkeys(["SourceIp", "DestinationPort", "EventID",
                                                 "TimeCreated@SystemTime"])] * 2


_PIECES = st.sampled_from([
    "<Data ", "Name=", '"', "'", "SourceIp", "sourceIP", " SourceIp ", "DestinationPort", ">", "/>", "</Data>",
    "<", " ", "\t", "\u3000", "&amp;", "&lt;", "x", "10.0.0.1", "<EventID>", "</EventID>", "<EventID a='1'>",
    "<TimeCreated ", "SystemTime=", "2024", "<Event>", "</Event>", "<EventData>", "</EventData>",
    # whole elements as Windows writes them, so records often hold several
    '<Data Name="SourceIp">', '<Data Name="SourceIp">10.0.0.2</Data>', '<Data Name="DestinationPort"/>',
    '<Data Name="DestinationPort">53</Data>', '<Data Name="sourceip">x</Data>', '<Data Name="Other">1</Data>',
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_PIECES, max_size=25).map("".join), min_size=1, max_size=8))
def test_property_agrees_with_the_reference(records):
    data, system, attributes = ("SourceIp", "DestinationPort"), ("EventID",), (("TimeCreated", "SystemTime"),)
    assert fields(records, data, system, attributes) == [reference(r, data, system, attributes) for r in records]
