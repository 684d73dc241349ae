"""selection.key_index: how series keys are numbered."""


def test_key_numbering_follows_values_not_row_order():
    """Series (and so alert) order must not depend on the order the engine returns rows in;
    an all-null key column (no port app names, say) is numbered too."""
    import pyarrow as pa

    from portlens.selection import key_index
    t = pa.table({"app": pa.array([None] * 5, pa.string()), "proto": ["UDP", "TCP", None, "TCP", "UDP"],
                  "port": [53, 22, 1, 22, 53]})
    first, k = key_index(t, ["app", "proto", "port"])
    assert k.tolist() == [2, 1, 0, 1, 2]
    shuffled = t.take([3, 0, 2, 4, 1])
    first2, k2 = key_index(shuffled, ["app", "proto", "port"])
    assert shuffled.take(first2).to_pylist() == t.take(first).to_pylist()
