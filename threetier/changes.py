"""What a run did to resources, and how it is counted: one meaning in every summary.

Kept apart from the engine (which loads boto3) so the command line can count without it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# What a run did to a resource. One meaning everywhere (the ✓ lines, up's summary and last line,
# --json): `configured` is a setting applied to something this same run created (the bucket's
# encryption, a new security group's rules), part of creating it, not a change to count.
CREATED, CHANGED, CONFIGURED, DELETED = "created", "changed", "configured", "deleted"
COUNTED = (CREATED, CHANGED, DELETED)


@dataclass(frozen=True)
class Change:
    part: int
    action: str  # created | changed | configured | deleted
    kind: str    # e.g. "subnet"
    name: str
    id: str | None = None


def counts(changes: Iterable[Change]) -> dict[str, int]:
    """How many created, changed and deleted: what every summary of a run says."""
    tally = dict.fromkeys(COUNTED, 0)
    for change in changes:
        if change.action in tally:
            tally[change.action] += 1
    return tally


def describe_counts(tally: dict[str, int]) -> str:
    return ", ".join(f"{tally[action]} {action}" for action in COUNTED if tally[action]) or "nothing"


def subjects(name: str) -> set[str]:
    """What a record is about: the first name or ID of its name ("threetier-web-sg: tcp 80 from …",
    "s3://bucket/key", "role/policy"), or what follows " of " ("default security group of vpc: …").
    Not every word: a route to a new NAT gateway changes the route table, not the gateway."""
    text = name.replace("s3://", "")
    found = {re.split(r"[\s/]+", text, maxsplit=1)[0].strip(":,()")}
    if " of " in text:
        found.add(re.split(r"[\s/]+", text.split(" of ", 1)[1], maxsplit=1)[0].strip(":,()"))
    return found - {""}
