"""What an accepted event becomes at PostHog: the mapping to a personless event, and the ``/batch/`` body.

Each event is rebuilt from the schema's field list: the installation id
becomes ``distinct_id``, the event id ``uuid`` (so PostHog drops a retried
duplicate), the timestamp ``timestamp``, and every other field a property.
Nothing of the client's request is sent: no header (PostHog would take the
client's address from a forwarded-for header), no ``sent_at``, no library
details beyond a fixed ``$lib``. ``$ip`` is a fixed placeholder that is no
one's address: PostHog fills an empty ``$ip`` with the address the request
came from, which would be the receiver's (docs/receiver.md).

Sending the body is ``posthog_client``'s business; when and how often, the
forwarder's (zomg/receiver/forwarder.py).
"""
from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterable

from zomg.receiver.fastpath import encode_json
from zomg.telemetry import schema

LIB = "zomg-receiver"  # the $lib of every event, and the client's User-Agent
# Truthy, so PostHog's normalisation keeps it instead of the sender's address;
# the unspecified address, so it locates and identifies no one.
NO_ADDRESS = "0.0.0.0"

# Which schema field fills which PostHog event field; the rest become properties.
# distinct_id is each event type's own random id: the installation for CLI
# events, the deployment for deployment metrics (the two never share one).
DISTINCT_ID_FIELDS = ("installation_id", "deployment_id")
UUID_FIELD = "event_id"
TIMESTAMP_FIELD = "timestamp"
NAME_FIELD = "event"
PERSONLESS = {"$process_person_profile": False, "$geoip_disable": True, "$lib": LIB, "$ip": NO_ADDRESS}

_plans: dict = {}


def _plan(event_name: str) -> tuple[str, tuple[str, ...]]:
    """(the distinct_id field, the property fields) of an event type, from the schema."""
    plan = _plans.get(event_name)
    if plan is None:
        names = schema.field_names(event_name)
        [distinct] = [name for name in DISTINCT_ID_FIELDS if name in names]
        mapped = {NAME_FIELD, distinct, UUID_FIELD, TIMESTAMP_FIELD}
        plan = _plans[event_name] = (distinct, tuple(name for name in names if name not in mapped))
    return plan


def to_posthog(event: dict) -> dict:
    """One validated event as a PostHog capture event."""
    distinct, property_names = _plan(event[NAME_FIELD])
    properties = {name: event[name] for name in property_names}
    properties.update(PERSONLESS)
    return {
        "event": event[NAME_FIELD],
        "distinct_id": event[distinct],
        "uuid": event[UUID_FIELD],
        "timestamp": event[TIMESTAMP_FIELD],
        "properties": properties,
    }


def batch_body(api_key: str, events: Iterable) -> bytes:
    """The exact body of the ``/batch/`` request for validated ``events``."""
    payload = {"api_key": api_key, "batch": [to_posthog(event) for event in events]}
    return encode_json(payload)


def body_from_lines(api_key: str, lines: list) -> bytes:
    """The ``/batch/`` body for events given as the schema's JSON lines (validated already).

    Exactly ``batch_body``'s bytes for the decoded lines when they are in
    canonical form (encode_event's text, as the spool keeps them): lines of one
    event type are rearranged as text, by one generated pattern per event type,
    without decoding a value (decoding and re-encoding was the forwarder's
    largest cost per event). A line whose start or keys are laid out otherwise
    sends the call to decoding; spaces between the members of a run of
    properties would be kept as they are (the same JSON values, other bytes),
    and the spool's lines never hold any.
    """
    if lines:
        rearranging = _rearranging(lines[0])
        if rearranging is not None:
            pattern, order, template = rearranging
            found = pattern.findall(b"\n".join(lines))
            if len(found) == len(lines):  # every line matched (one match at most per line)
                events = b",".join([template % order(values) for values in found])
                return b'{"api_key":' + encode_json(api_key) + b',"batch":[' + events + b"]}"
    # One parse of all the lines as a JSON array: a fraction of a parse per line.
    return batch_body(api_key, json.loads(b"[" + b",".join(lines) + b"]"))


_rearrangers: dict = {}
# One JSON value of a canonical line: a string, a list, or a number, true, false or null.
_STRING = rb'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_VALUE = rb"(" + _STRING + rb"|\[(?:[^\]\"\n]|" + _STRING + rb")*\]|[-+.\w]+)"
_NAME_START = b'{"' + NAME_FIELD.encode("ascii") + b'":"'


def _rearranging(line: bytes) -> tuple | None:
    """(pattern, reorder, template) for the event type ``line`` starts with; None if it starts otherwise.

    The pattern's groups are, in the schema's order, the values of the fields
    PostHog takes apart (distinct_id, uuid, timestamp) and the runs of
    ``"name":value`` members between them, the properties, taken whole;
    ``template % reorder(groups)`` is the PostHog event, to_posthog's JSON. A
    key's text (a comma, the quoted name, a colon) cannot occur inside a value
    of a valid line (a quote in a string is escaped, no value is an object),
    so a line splits exactly at its keys, and a line whose keys are laid out
    otherwise (reordered, spaces around a taken key) does not match. Matching every property's
    value instead cost three times as much per event, and this is the
    forwarder's largest cost per event.
    """
    if not line.startswith(_NAME_START):
        return None
    event_name = line[len(_NAME_START):line.find(b'"', len(_NAME_START))].decode("ascii", "replace")
    made = _rearrangers.get(event_name)
    if made is None:
        if event_name not in schema.EVENT_TYPES:
            return None
        distinct, property_names = _plan(event_name)
        taken = (distinct, UUID_FIELD, TIMESTAMP_FIELD)
        pattern = rb"^" + re.escape(b'{"' + NAME_FIELD.encode("ascii") + b'":' + encode_json(event_name))
        grouped: list = []  # what each group holds: a taken field's name, or the index of a run
        runs = 0
        in_run = False
        for name in schema.field_names(event_name):
            if name == NAME_FIELD:
                continue
            key = re.escape(b'"' + name.encode("ascii") + b'":')
            if name in taken:
                if in_run:
                    pattern += rb")"
                    in_run = False
                pattern += b"," + key + _VALUE
                grouped.append(name)
            elif not in_run:
                # Lazy, up to the next taken key: one scan, no value parsed.
                pattern += b",(" + key + rb".*?"
                grouped.append(runs)
                runs += 1
                in_run = True
        if in_run:  # the last run, greedy: to the line's end at once, then back to its brace
            pattern = pattern[:-len(rb".*?")] + rb".*)"
        pattern = re.compile(pattern + rb"\}$", re.MULTILINE)
        wanted = [*taken, *range(runs)]
        template = (b'{"event":' + encode_json(event_name).replace(b"%", b"%%")
                    + b',"distinct_id":%s,"uuid":%s,"timestamp":%s,"properties":{'
                    + b"%s," * runs
                    + encode_json(PERSONLESS)[1:-1].replace(b"%", b"%%") + b"}}")
        made = _rearrangers[event_name] = (pattern, operator.itemgetter(*[grouped.index(n) for n in wanted]),
                                           template)
    return made


def batch_shape(lines: list) -> str:
    """What a batch holds, without a single value: counts per event type and their field names."""
    counts: dict = {}
    for line in lines:
        event = json.loads(line)
        key = (event[NAME_FIELD], ",".join(event))
        counts[key] = counts.get(key, 0) + 1
    return "; ".join(f"{count} x {name} [{fields}]" for (name, fields), count in sorted(counts.items()))
