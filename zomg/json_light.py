"""JSON on the start-up path: json's own C scanner and encoder, without importing the json package.

Importing ``json`` compiles its regular expressions and loads its encoder,
about 2 ms here: more than the rest of a ``zomg box list``. The C parts that
``json.loads`` and ``json.dumps`` use (``_json``) load in a tenth of that.

``_json`` is private to CPython and changes between releases (3.15's scanner
reads a new ``array_hook`` from its settings), so it is only ever a fast path:
before either C part is trusted it must reproduce, exactly, what json gives
for a probe document; anything that goes wrong while it is built or used
(the module missing, a changed signature, a new attribute, a wrong answer)
turns the fast path off for the process or hands that one call to ``json``
itself, which decides and raises its own errors. Results are always exactly
those of the json package.
"""
from __future__ import annotations

try:
    import _json
except ImportError:  # an interpreter without CPython's accelerator: json does it all
    _json = None

_WHITESPACE = " \t\n\r"

# What the fast paths must reproduce to the character before they are used:
# every kind of value zomg's files hold, escapes and a nested empty object included.
_PROBE_TEXT = '{"a":[1,-2.5e3,"\\u00e9\\n",true,false,null],"b":{}}'
_PROBE_COMPACT = '{"a":[1,-2500.0,"\\u00e9\\n",true,false,null],"b":{}}'


def _probe_value() -> dict:
    return {"a": [1, -2500.0, "\u00e9\n", True, False, None], "b": {}}


class _DecoderSettings:
    # What json.JSONDecoder() hands the C scanner with its default arguments
    # (array_hook: read from 3.15 on, ignored before).
    strict = True
    object_hook = None
    object_pairs_hook = None
    array_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


def _build_scanner():
    """json's C scanner if it decodes the probe exactly as json does, else False."""
    try:
        scanner = _json.make_scanner(_DecoderSettings())
        value, end = scanner(_PROBE_TEXT, 0)
        # repr, not ==: True == 1 and 1 == 1.0 would let a changed scanner through.
        if end == len(_PROBE_TEXT) and repr(value) == repr(_probe_value()):
            return scanner
    except Exception:
        pass
    return False


def _encoder_of(markers: dict):
    # The arguments json.JSONEncoder passes for separators=(",", ":") and its
    # defaults (check_circular, allow_nan).
    return _json.make_encoder(
        markers, _not_serializable, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )


def _check_encoder() -> bool:
    try:
        return "".join(_encoder_of({})(_probe_value(), 0)) == _PROBE_COMPACT
    except Exception:
        return False


# None: not tried yet in this process; False: off for the rest of it.
_scanner = None
_encoder_ok = None


def loads(text: str) -> object:
    """``json.loads(text)``: the same value for valid JSON, the same error otherwise."""
    global _scanner
    if _scanner is None:
        _scanner = _build_scanner()
    if _scanner:
        stripped = text.strip(_WHITESPACE)
        try:
            value, end = _scanner(stripped, 0)
        except Exception:
            pass  # json below says what is wrong, in its own words
        else:
            if end == len(stripped):
                return value
    import json

    return json.loads(text)


def _not_serializable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps_compact(value: object) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=True)``."""
    global _encoder_ok
    if _encoder_ok is None:
        _encoder_ok = _check_encoder()
    if _encoder_ok:
        try:
            # A new encoder per call, as json makes one, so that the markers of a
            # failed call never linger into the next.
            return "".join(_encoder_of({})(value, 0))
        except Exception:
            pass  # json below raises its own error for a value it cannot encode
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)
