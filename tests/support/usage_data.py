"""Realistic usage data for the report's tests and bench: generated event logs and their truth computed plainly.

``UsageModel`` makes installations (operating system, architecture, CI or
not, a version, how busy they are: a few do most of the runs) and
deployments, then ``events()`` draws their cli.command and
deployment.metrics events over a period: skewed command use, flags per
command, errors with their classes, durations. Everything comes from a seed,
so a test can regenerate the same data. Events are built by
``tests.support.events`` (the one builder of valid events).

``truth(events, since, until, k)`` is the report's expected JSON object
computed the obvious way, from the event dicts with Counters and sets, in
no way sharing the report's SQL; tests compare the two.
"""
from __future__ import annotations

import datetime
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

from tests.support.events import cli_event, deployment_event
from zomg.telemetry import schema

# (command, subcommand, weight, the flags it may take, how long it usually runs)
COMMANDS = (
    ("exec", None, 40, ("--env", "--workdir"), ("<1s", "1s-10s", "10s-1m", "1m-10m", ">10m")),
    ("box", "list", 25, ("--all", "--json"), ("<1s",)),
    ("box", "create", 10, ("--force", "--from"), ("<1s", "1s-10s")),
    ("console", None, 9, ("--shell",), ("1m-10m", "10s-1m", ">10m")),
    ("box", "delete", 6, ("--force",), ("<1s",)),
    ("telemetry", "status", 4, ("--json",), ("<1s",)),
    ("setup", None, 3, ("--yes",), ("1s-10s",)),
    ("completion", "bash", 2, (), ("<1s",)),
    (None, None, 1, ("--version",), ("<1s",)),
)
OS_WEIGHTS = (("linux", 70), ("darwin", 24), ("windows", 4), ("freebsd", 1), ("other", 1))
ARCH_WEIGHTS = (("x86_64", 74), ("arm64", 23), ("arm", 2), ("x86", 1))
VERSIONS = (("0.1.0", 10), ("0.2.0", 25), ("0.2.1", 50), ("0.3.0b1", 15))
ERROR_WEIGHTS = (("usage", 40), ("not_found", 25), ("subprocess", 15), ("permission", 8), ("conflict", 6),
                 ("config", 3), ("network", 2), ("internal", 1))
CI_SHARE = 0.2


def _pick(rng: random.Random, weighted: tuple) -> object:
    return rng.choices([value for value, _ in weighted], [w for _, w in weighted])[0]


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class UsageModel:
    """A seeded population of installations and deployments over ``days`` days ending ``end`` (UTC)."""

    def __init__(self, seed: int = 1, installations: int = 200, deployments: int = 20, days: int = 30,
                 end: datetime.datetime = datetime.datetime(2026, 3, 31, 23, 59, 59)) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.end = end
        self.start = end - datetime.timedelta(days=days) + datetime.timedelta(seconds=1)
        self.installations = []
        for _ in range(installations):
            self.installations.append({
                "installation_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "os": _pick(rng, OS_WEIGHTS),
                "arch": _pick(rng, ARCH_WEIGHTS),
                "ci": rng.random() < CI_SHARE,
                "cli_version": _pick(rng, VERSIONS),
            })
        # Pareto: a few installations run most commands, as in real usage.
        self.activity = [rng.paretovariate(1.2) for _ in self.installations]
        self.deployments = [
            {"deployment_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
             "os": _pick(rng, OS_WEIGHTS[:2]), "arch": _pick(rng, ARCH_WEIGHTS[:2]),
             "cpu_bucket": rng.choice(schema.CPU_BUCKETS[:5]), "memory_bucket": rng.choice(schema.MEMORY_BUCKETS[:5]),
             "cli_version": _pick(rng, VERSIONS)}
            for _ in range(deployments)
        ]

    def _moment(self, share: float | None = None) -> str:
        # ``share`` of the period gone, give or take an hour: events reach a receiver about in time order.
        span = (self.end - self.start).total_seconds()
        at = self.rng.random() * span if share is None else share * span + self.rng.uniform(-3600, 3600)
        return _stamp(self.start + datetime.timedelta(seconds=int(min(max(at, 0), span))))

    def cli_events(self, count: int) -> Iterator[dict]:
        """``count`` cli.command events, about in time order."""
        rng = self.rng
        who = rng.choices(self.installations, self.activity, k=count)
        commands = rng.choices(COMMANDS, [c[2] for c in COMMANDS], k=count)
        for index, (installation, (command, subcommand, _, flags, durations)) in enumerate(zip(who, commands)):
            chance = rng.random()
            result = "error" if chance < 0.08 else "interrupted" if chance < 0.1 else "success"
            yield cli_event(
                installation_id=installation["installation_id"],
                timestamp=self._moment(index / count),
                cli_version=installation["cli_version"],
                command=command,
                subcommand=subcommand,
                flags=sorted(flag for flag in flags if rng.random() < 0.3),
                os=installation["os"],
                arch=installation["arch"],
                ci=installation["ci"],
                duration_bucket=rng.choice(durations),
                result=result,
                error_class=_pick(rng, ERROR_WEIGHTS) if result == "error" else None,
            )

    def deployment_events(self, per_deployment: int = 5) -> Iterator[dict]:
        rng = self.rng
        for deployment in self.deployments:
            for _ in range(per_deployment):
                yield deployment_event(
                    timestamp=self._moment(),
                    active_boxes_bucket=rng.choice(schema.ACTIVE_BOXES_BUCKETS),
                    storage_used_bucket=rng.choice(schema.STORAGE_SHARE_BUCKETS),
                    box_bytes_bucket=rng.choice(schema.BOX_BYTES_BUCKETS),
                    **deployment,
                )

    def events(self, count: int) -> list[dict]:
        """``count`` cli.command events and the deployments' metrics, in time order."""
        events = list(self.cli_events(count)) + list(self.deployment_events())
        events.sort(key=lambda event: event["timestamp"])
        return events


# --- the truth, computed plainly ----------------------------------------------


def _week(timestamp: str) -> str:
    day = datetime.date.fromisoformat(timestamp[:10])
    return (day - datetime.timedelta(days=day.weekday())).isoformat()


def _fold(rows: dict, key_names: tuple, k: int, extra: object = None) -> list[dict]:
    """{key tuple: (runs, installation set)} -> published rows, those below k folded into one.

    Sorted by installations, then runs, descending, ties by the key fields as text.
    """
    out, folded_runs, folded_ids = [], 0, set()
    for key, (runs, ids) in sorted(rows.items(), key=lambda item: (
            -len(item[1][1]), -item[1][0], tuple("" if v is None else str(v) for v in item[0]))):
        if len(ids) >= k:
            row = dict(zip(key_names, key))
            row.update(runs=runs, installations=len(ids))
            if extra:
                extra(row, key)
            out.append(row)
        else:
            folded_runs += runs
            folded_ids |= ids
    if folded_runs:
        row = dict.fromkeys(key_names)
        row.update(runs=folded_runs, installations=len(folded_ids), folded=True)
        if extra:
            extra(row, None)
        out.append(row)
    return out


def truth(events: Iterable[dict], since: str, until: str, k: int) -> dict:
    """The report's JSON object for ``events`` between the UTC dates ``since`` and ``until`` (inclusive)."""
    unique = {}
    for event in events:
        if since <= event["timestamp"][:10] <= until:
            unique[event["event_id"]] = event
    cli = [e for e in unique.values() if e["event"] == schema.CLI_COMMAND]
    dep = [e for e in unique.values() if e["event"] == schema.DEPLOYMENT_METRICS]

    def table(items: list, key, who: str = "installation_id") -> dict:
        rows = defaultdict(lambda: [0, set()])
        for e in items:
            for one in key(e):
                rows[one][0] += 1
                rows[one][1].add(e[who])
        return {key: (runs, ids) for key, (runs, ids) in rows.items()}

    command_runs = Counter((e["command"], e["subcommand"]) for e in cli)

    def share(row: dict, key: object) -> None:
        row["share"] = None if key is None else round(row["runs"] / command_runs[key[:2]], 4)

    tables = {
        "commands": _fold(table(cli, lambda e: [(e["command"], e["subcommand"])]), ("command", "subcommand"), k),
        "flags": _fold(table(cli, lambda e: [(e["command"], e["subcommand"], f) for f in e["flags"]]),
                       ("command", "subcommand", "flag"), k, share),
        "os": _fold(table(cli, lambda e: [(e["os"],)]), ("value",), k),
        "arch": _fold(table(cli, lambda e: [(e["arch"],)]), ("value",), k),
        "ci": _fold(table(cli, lambda e: [(e["ci"],)]), ("value",), k),
        "results": _fold(table(cli, lambda e: [(e["command"], e["subcommand"], e["result"], e["error_class"])]),
                         ("command", "subcommand", "result", "error_class"), k),
        "durations": _fold(table(cli, lambda e: [(e["command"], e["subcommand"], e["duration_bucket"])]),
                           ("command", "subcommand", "duration_bucket"), k),
        "cli_versions": _fold(table(cli, lambda e: [(e["cli_version"],)]), ("value",), k),
        "weekly_active": _fold(table(cli, lambda e: [(_week(e["timestamp"]),)]), ("week",), k),
        "node_shapes": _fold(table(dep, lambda e: [(e["cpu_bucket"], e["memory_bucket"])], "deployment_id"),
                             ("cpu_bucket", "memory_bucket"), k),
        "active_boxes": _fold(table(dep, lambda e: [(e["active_boxes_bucket"],)], "deployment_id"), ("value",), k),
        "storage_used": _fold(table(dep, lambda e: [(e["storage_used_bucket"],)], "deployment_id"), ("value",), k),
        "box_bytes": _fold(table(dep, lambda e: [(e["box_bytes_bucket"],)], "deployment_id"), ("value",), k),
    }
    return {
        "version": 1,
        "period": {"since": since, "until": until},
        "min_installations": k,
        "events": len(cli),
        "installations": len({e["installation_id"] for e in cli}),
        "deployment_events": len(dep),
        "deployments": len({e["deployment_id"] for e in dep}),
        "tables": tables,
    }
