"""Hypothesis strategies for valid events, read off the schema's rules."""
from __future__ import annotations

from hypothesis import strategies as st

from zomg.telemetry import schema
from zomg.telemetry.schema import ERROR_CLASSES

from .events import cli_event


def valid_events_of(event_name: str):
    """A hypothesis strategy for valid events of any registered type, read off its rules."""
    fields, cross_check = schema.EVENT_TYPES[event_name]

    def values(rule):
        kind = type(rule).__name__
        if kind == "Const":
            return st.just(rule.expected)
        if kind == "Enum":
            return st.sampled_from(list(rule.allowed) + ([None] if rule.nullable else []))
        if kind == "Pattern":
            text = st.from_regex(rule.body, fullmatch=True, alphabet=st.characters(codec="ascii"))
            return st.none() | text if rule.nullable else text
        if kind == "Timestamp":
            return st.datetimes().map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0"))
        if kind == "Bool":
            return st.booleans()
        if kind == "Flags":
            flag = st.from_regex(rule.match.body, fullmatch=True, alphabet=st.characters(codec="ascii"))
            return st.lists(flag, max_size=4, unique=True).map(sorted)
        raise AssertionError(f"no strategy for {kind}")

    def fix(event: dict) -> dict:
        if cross_check is not None:
            wanted = event[cross_check.other] == cross_check.value
            if wanted and event[cross_check.field] is None:
                rule = dict((key, rule) for key, rule, _ in fields)[cross_check.field]
                event[cross_check.field] = rule.allowed[0]
            elif not wanted:
                event[cross_check.field] = None
        return {key: event[key] for key, _, _ in fields}  # the schema's order, as the CLI builds them

    return st.fixed_dictionaries({key: values(rule) for key, rule, _ in fields}).map(fix)


# Small pools keep generation cheap; the values cover every character class the patterns allow.
_names = st.sampled_from(["box", "exec", "list", "create", "a", "z9", "x-y-1", "n" * 32])
_versions = st.sampled_from(["0.1.0", "1", "2.0.0rc1", "1.2+local.7", "3!1.0", "9-a.B"])
_flag_pool = st.sampled_from(["--all", "--json", "-f", "-9", "--force", "--x-y", "--" + "q" * 32])


@st.composite
def quick_cli_events(draw) -> dict:
    """Valid cli.command events, cheaply: small pools of values instead of regex generation."""
    result = draw(st.sampled_from(schema.RESULTS))
    return cli_event(
        event_id=str(draw(st.uuids(version=4))),
        installation_id=str(draw(st.uuids(version=4))),
        timestamp=draw(st.datetimes()).strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0"),
        cli_version=draw(_versions),
        command=draw(st.none() | _names),
        subcommand=draw(st.none() | _names),
        flags=sorted(draw(st.sets(_flag_pool, max_size=4))),
        os=draw(st.sampled_from(schema.OS_VALUES)),
        arch=draw(st.sampled_from(schema.ARCH_VALUES)),
        ci=draw(st.booleans()),
        duration_bucket=draw(st.sampled_from(schema.DURATION_BUCKETS)),
        result=result,
        error_class=draw(st.sampled_from(ERROR_CLASSES)) if result == "error" else None,
    )

