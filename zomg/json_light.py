"""JSON on the start-up path: json's own C scanner and encoder, without importing the json package.

Importing ``json`` compiles its regular expressions and loads its encoder,
about 2 ms here: more than the rest of a ``zomg box list``. The C parts that
``json.loads`` and ``json.dumps`` use (``_json``) load in a tenth of that.
Results are exactly those of the json package: valid input is decoded by the
very scanner ``json.loads`` uses, and anything the fast path does not accept
(malformed input, an interpreter without ``_json``) is handed to ``json``
itself, which decides and raises its own errors.
"""
from __future__ import annotations

try:
    import _json
except ImportError:  # an interpreter without CPython's accelerator: json does it all
    _json = None

_WHITESPACE = " \t\n\r"


class _DecoderSettings:
    # What json.JSONDecoder() hands the C scanner with its default arguments.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scanner = None


def loads(text: str) -> object:
    """``json.loads(text)``: the same value for valid JSON, the same error otherwise."""
    global _scanner
    if _json is not None:
        if _scanner is None:
            _scanner = _json.make_scanner(_DecoderSettings())
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
    if _json is None:
        import json

        return json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    # The arguments json.JSONEncoder passes for the same settings (check_circular,
    # allow_nan); a new encoder per call, as json makes one, so that the markers of
    # a failed call never linger into the next.
    encode = _json.make_encoder(
        {}, _not_serializable, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    return "".join(encode(value, 0))
