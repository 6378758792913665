"""zomg.json_light gives exactly what json.loads and json.dumps give, without importing json."""
from __future__ import annotations

import json
import math
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from zomg import json_light

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _same(a: object, b: object) -> bool:
    # NaN is not equal to itself; compare through json's own spelling of both.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@given(_values, st.sampled_from([None, 0, 2]), st.sampled_from(["", " ", "\n\t "]))
def test_valid_json_decodes_as_json_decodes_it(value, indent, padding):
    text = padding + json.dumps(value, indent=indent) + padding
    assert _same(json_light.loads(text), json.loads(text))


@given(st.text(alphabet=st.sampled_from('{}[]":,. \n0123456789-+eEtrufalsnNIy\\u\ufeffa'), max_size=30))
def test_any_text_gives_jsons_value_or_jsons_error(text):
    try:
        expected = json.loads(text)
    except ValueError as exc:
        try:
            json_light.loads(text)
        except ValueError as got:
            assert (type(got), str(got)) == (type(exc), str(exc))
        else:
            raise AssertionError(f"{text!r} decoded, json refuses it: {exc}")
    else:
        assert _same(json_light.loads(text), expected)


@given(_values)
def test_compact_encoding_is_jsons(value):
    assert json_light.dumps_compact(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def test_non_finite_numbers_and_refusals_follow_json():
    assert math.isnan(json_light.loads("NaN"))
    assert json_light.loads("[-Infinity]") == [float("-inf")]
    try:
        json_light.dumps_compact({"a": object()})
    except TypeError as exc:
        assert "not JSON serializable" in str(exc)
    else:
        raise AssertionError("an object was encoded")
    # A failed call leaves nothing behind that the next call would trip over.
    shared = ["x"]
    assert json_light.dumps_compact([shared, shared]) == '[["x"],["x"]]'


def test_the_json_package_is_not_imported():
    code = (
        "import sys\n"
        "from zomg import json_light\n"
        "assert json_light.loads(' {\"a\": [1, \"\\\\u00e9\"]} ') == {'a': [1, '\\u00e9']}\n"
        "assert json_light.dumps_compact({'a': [True, None]}) == '{\"a\":[true,null]}'\n"
        "print('json' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
