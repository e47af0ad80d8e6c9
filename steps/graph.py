"""Which Part waits for which, and why: every edge between the Parts, declared once, here.

An edge says that Part `part`, somewhere in its code (`ctx.need`), waits for Part `needs` to reach
a milestone: EXISTS (its `start` is over: the IDs are known), one of Part 2's named ones
(SUBNETS_AND_GROUPS, ROUTES), or DONE (its `finish` is over: it is ready). The engine refuses any
wait not declared here (`Ctx.need`), even one whose milestone is reached already.

Read from here, not written twice: each Part's `needs` (what `replay` looks at first), and the
teardown. An edge whose `holds` says what of `needs` the waiting Part's resources hold (ENIs in its
subnets, instances running with its profile) turns around into a GONE edge: `needs`'s destroy waits
until that Part is gone (as in stacker, teardown is the build graph transposed). The other edges
(an AMI baked from an endpoint, a DNS name in nginx.conf, a round trip) hold nothing in AWS: those
Parts go together. `threetier graph` draws it all.
"""
from __future__ import annotations

from collections.abc import Iterable

from steps import app_image, app_tier, database, network, storage, web_image, web_tier
from steps.network import ROUTES, SUBNETS_AND_GROUPS
from threetier.engine import DONE, EXISTS, GONE, Edge
from threetier.errors import ThreetierError

STORAGE, NETWORK, DATABASE, APP_IMAGE, APP_TIER, WEB_IMAGE, WEB_TIER = (
    storage.NUMBER, network.NUMBER, database.NUMBER, app_image.NUMBER, app_tier.NUMBER, web_image.NUMBER,
    web_tier.NUMBER)

ALARM_TOPIC = "its alarms' actions name the SNS topic (monitoring.email)"  # threetier/blocks/alarms.py, Parts 3, 5, 7

# The build: in each Part, in the order its code waits.
BUILD: tuple[Edge, ...] = (
    Edge(DATABASE, STORAGE, DONE, "the app role gets the secret-read policy",
         holds="its secret-read policy is on the app role"),
    Edge(DATABASE, NETWORK, SUBNETS_AND_GROUPS, "DB subnet group in the DB subnets, with db-sg",
         holds="the cluster's ENIs are in the DB subnets and db-sg"),
    Edge(DATABASE, STORAGE, EXISTS, ALARM_TOPIC),

    Edge(APP_IMAGE, STORAGE, DONE, "the builder boots with the app profile, from the code bucket",
         holds="the builder runs with the app instance profile"),
    Edge(APP_IMAGE, DATABASE, EXISTS, "user data names the DB endpoint and secret"),
    Edge(APP_IMAGE, NETWORK, ROUTES, "the builder goes out by the NAT route (its launch waits)",
         holds="the builder's ENI is in an app subnet"),

    Edge(APP_TIER, NETWORK, SUBNETS_AND_GROUPS, "internal ALB in the app subnets, internal-alb-sg",
         holds="the internal ALB and app instances are in the app subnets"),
    Edge(APP_TIER, STORAGE, EXISTS, ALARM_TOPIC),
    Edge(APP_TIER, APP_IMAGE, DONE, "the launch template runs the app AMI"),
    Edge(APP_TIER, STORAGE, DONE, "the launch template names the app instance profile",
         holds="the app instances run with the app instance profile"),

    Edge(WEB_IMAGE, STORAGE, DONE, "nginx.conf goes to the code bucket; the web profile",
         holds="the builder runs with the web instance profile"),
    Edge(WEB_IMAGE, NETWORK, ROUTES, "the builder goes out by the internet gateway's route",
         holds="the builder's ENI is in a public subnet"),
    Edge(WEB_IMAGE, APP_TIER, EXISTS, "nginx.conf proxies /api/ to the internal ALB's name"),

    Edge(WEB_TIER, NETWORK, SUBNETS_AND_GROUPS, "external ALB in the public subnets, external-alb-sg",
         holds="the external ALB and web instances are in the public subnets"),
    Edge(WEB_TIER, STORAGE, EXISTS, ALARM_TOPIC),
    Edge(WEB_TIER, APP_TIER, EXISTS, "the dashboard shows the internal ALB and its targets"),
    Edge(WEB_TIER, DATABASE, EXISTS, "the dashboard shows the cluster"),
    Edge(WEB_TIER, WEB_IMAGE, DONE, "the launch template runs the web AMI"),
    Edge(WEB_TIER, STORAGE, DONE, "the launch template names the web instance profile",
         holds="the web instances run with the web instance profile"),
    Edge(WEB_TIER, APP_TIER, DONE, "the round trip needs the app tier's targets healthy"),
    Edge(WEB_TIER, DATABASE, DONE, "the round trip reaches Aurora (writer and reader up)"),
)


def transposed(build: Iterable[Edge]) -> tuple[Edge, ...]:
    """The teardown: for every Part whose resources hold another's, a GONE edge the other way (one
    per pair, what is held said once), by Part, and in each the latest Part first (the order in
    which `down` starts them)."""
    held: dict[tuple[int, int], list[str]] = {}
    for edge in build:
        if edge.holds:
            held.setdefault((edge.needs, edge.part), []).append(edge.holds)
    pairs = sorted(held, key=lambda pair: (pair[0], -pair[1]))
    return tuple(Edge(part, holder, GONE, "; ".join(dict.fromkeys(held[part, holder]))) for part, holder in pairs)


TEARDOWN: tuple[Edge, ...] = transposed(BUILD)
EDGES: tuple[Edge, ...] = BUILD + TEARDOWN


def problems(build: Iterable[Edge], numbers: Iterable[int]) -> list[str]:
    """What is wrong with a declared build graph; nothing, or steps cannot be imported."""
    known, said, seen = set(numbers), [], set()
    for edge in build:
        what = f"Part {edge.part} needs Part {edge.needs} {edge.milestone}"
        if edge.part not in known or edge.needs not in known:
            said.append(f"{what}: no such Part")
        # A Part needs only Parts before it in the guide: no two Parts can wait for each other,
        # `sequential` runs them in order, and the teardown waits only for later Parts.
        if edge.needs >= edge.part:
            said.append(f"{what}: a Part needs only Parts before it")
        if edge.milestone == GONE:
            said.append(f"{what}: GONE edges are derived (transposed), not declared")
        if (edge.part, edge.needs, edge.milestone) in seen:
            said.append(f"{what}: declared twice")
        seen.add((edge.part, edge.needs, edge.milestone))
        if not edge.why:
            said.append(f"{what}: no why")
    return said


_wrong = problems(BUILD, (STORAGE, NETWORK, DATABASE, APP_IMAGE, APP_TIER, WEB_IMAGE, WEB_TIER))
if _wrong:
    raise ThreetierError(f"internal error: steps/graph.py: {'; '.join(_wrong)}")
