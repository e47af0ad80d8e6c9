"""Route 53 for the front door (Part 7, config.yaml `edge`): the user's hosted zone, the records the
stack writes in it (the certificate's validation records, the alias A record of edge.domain to the
external ALB), and the state's memory of which records those are.

The zone is the user's: found by ID or name, never created, never deleted. A record the stack did
not write is never overwritten nor deleted: only those the state remembers (or, without a state,
aliases of the stack's own names aimed at its own ALB) are the stack's.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from threetier.aws import Look
from threetier.blocks import balancing
from threetier.config import HOSTED_ZONE_ID
from threetier.engine import Ctx
from threetier.errors import ThreetierError

ZONE_GONE = ("NoSuchHostedZone",)
# Part 7's resources: the Route 53 records the stack wrote, "<zone ID> <name.> <type> <value>" each
# (Entry), remembered and saved before each is written: what `up` with edge off and `down` remove,
# whatever the config says then. Absent: no state of it (a lost state file, or one written before
# the key existed).
RECORDS = "edge_records"
# Part 7's resources: the DomainName of the stack's own (tagged) distribution (threetier.blocks.cdn), with
# edge.cdn: an alias to it is the stack's, as one to its ALB is (a lost state file knows neither record).
DISTRIBUTION_DOMAIN = "cdn_domain_name"
# The record types a name can answer with that would compete with the stack's alias record.
ADDRESS_TYPES = ("A", "AAAA", "CNAME")


def domain(ctx: Ctx) -> str:
    assert ctx.config.edge.domain is not None
    return ctx.config.edge.domain


def fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


# -- what the finders read (the inventory) ---------------------------------------
def zone_look(ctx: Ctx) -> Look:
    zone = ctx.config.edge.hosted_zone or ""
    if HOSTED_ZONE_ID.match(zone):
        return Look("route53", "get_hosted_zone", {"Id": zone.split("/")[-1]}, missing_ok=ZONE_GONE)
    return Look("route53", "list_hosted_zones_by_name", {"DNSName": fqdn(zone)})


def records_look(zone_id: str) -> Look:
    return Look("route53", "list_resource_record_sets", {"HostedZoneId": zone_id}, missing_ok=ZONE_GONE,
                key="ResourceRecordSets")


# -- the hosted zone, and the records the stack remembers writing -------------------------------
def zone_from(ctx: Ctx, found: Any) -> dict[str, Any] | None:
    """The zone out of GetHostedZone or ListHostedZonesByName: {"Id": "Z...", "Name": "example.com."};
    None when there is none. Two public zones of that name: refused, we do not guess."""
    if not found:
        return None
    if "HostedZone" in found:
        zones = [found["HostedZone"]]
    else:
        name = fqdn(ctx.config.edge.hosted_zone or "")
        zones = [z for z in found.get("HostedZones", [])
                 if z["Name"].lower() == name and not z.get("Config", {}).get("PrivateZone")]
        if len(zones) > 1:
            raise ThreetierError(f"edge.hosted_zone: {len(zones)} public hosted zones are named {name} "
                                 f"({', '.join(z['Id'].split('/')[-1] for z in zones)}); give the ID of the one to use")
    if not zones:
        return None
    zone = zones[0]
    if zone.get("Config", {}).get("PrivateZone"):
        raise ThreetierError(f"edge.hosted_zone: {zone['Id'].split('/')[-1]} is a private zone; the site needs "
                             f"a public one")
    return {"Id": zone["Id"].split("/")[-1], "Name": zone["Name"].lower()}


def find_zone(ctx: Ctx) -> dict[str, Any] | None:
    return zone_from(ctx, ctx.aws.look(zone_look(ctx), resource=f"hosted zone {ctx.config.edge.hosted_zone}"))


def need_zone(ctx: Ctx) -> dict[str, Any]:
    zone = find_zone(ctx)
    if zone is None:
        raise ThreetierError(f"edge.hosted_zone: no public Route 53 hosted zone {ctx.config.edge.hosted_zone} in this "
                             f"account; threetier never creates one: create it (and delegate the domain to it), "
                             f"or fix the key")
    if not inside(domain(ctx), zone["Name"]):
        raise ThreetierError(f"edge.domain: {domain(ctx)} is not inside the hosted zone {zone['Name']} ({zone['Id']})")
    return zone


def inside(name: str, zone_name: str) -> bool:
    """The name is the zone's apex or a name under it."""
    return fqdn(name) == fqdn(zone_name) or fqdn(name).endswith(f".{fqdn(zone_name)}")


def records(ctx: Ctx, zone: dict[str, Any]) -> list[dict[str, Any]]:
    return ctx.aws.look(records_look(zone["Id"]), resource=f"records of hosted zone {zone['Name']}") or []


def change_records(ctx: Ctx, zone: dict[str, Any], action: str, record_sets: list[dict[str, Any]], why: str) -> None:
    if not record_sets:
        return
    ctx.aws.call("route53", "change_resource_record_sets", resource=f"records of hosted zone {zone['Name']}",
                 HostedZoneId=zone["Id"], ChangeBatch={"Comment": f"threetier {ctx.stack}: {why}", "Changes": [
                     {"Action": action, "ResourceRecordSet": record_set} for record_set in record_sets]})


class Entry(NamedTuple):
    """A record the stack wrote, as its state remembers it: "<zone ID> <name.> <type> <value>"."""
    zone_id: str
    name: str  # fqdn: lower case, a final dot
    type: str
    # What threetier wrote there (record_value): the alias's target, the CNAME's value. "" in an entry
    # written before the value was kept: then any record of that name and type is the one.
    value: str = ""

    def __str__(self) -> str:
        return " ".join(field for field in self if field)

    def matches(self, zone_id: str, record_set: dict[str, Any]) -> bool:
        """`record_set`, read in zone `zone_id`, is this record as threetier wrote it (never someone
        else's record of the same name: one that was there, or one written where ours failed)."""
        return (zone_id, fqdn(record_set["Name"]), record_set["Type"]) == (self.zone_id, self.name, self.type) \
            and self.value in ("", record_value(record_set))

    @classmethod
    def parse(cls, text: str) -> Entry | None:
        fields = text.split()
        return cls(fields[0], fqdn(fields[1]), *fields[2:]) if len(fields) in (3, 4) else None

    @classmethod
    def of(cls, zone_id: str, record_set: dict[str, Any]) -> Entry:
        return cls(zone_id, fqdn(record_set["Name"]), record_set["Type"], record_value(record_set))


def record_value(record_set: dict[str, Any]) -> str:
    """What a record answers with, as one word: an alias's target (a load balancer's DNS name as an
    alias holds it), or its values, each a name with a final dot."""
    alias = record_set.get("AliasTarget")
    if alias:
        return balancer_name(alias.get("DNSName", ""))
    return ",".join(fqdn(v["Value"]).replace(" ", "_") for v in record_set.get("ResourceRecords", []))


def recorded(ctx: Ctx, kind: str | None = None) -> list[Entry]:
    """The records the stack wrote, of one type or all."""
    entries = (Entry.parse(text) for text in ctx.resources.get(RECORDS) or [])
    return [entry for entry in entries if entry is not None and (kind is None or entry.type == kind)]


def remember(ctx: Ctx, zone_id: str, record_set: dict[str, Any]) -> None:
    entries = ctx.resources.setdefault(RECORDS, [])
    entry = str(Entry.of(zone_id, record_set))
    if entry not in entries:
        entries.append(entry)


def forget(ctx: Ctx, zone_id: str, name: str, record_type: str, keep: str | None = None) -> None:
    """Forget the records of this name and type in the zone (but the one of value `keep`)."""
    if RECORDS in ctx.resources:
        ctx.resources[RECORDS] = [str(e) for e in recorded(ctx) if (e.zone_id, e.name, e.type) != (
            zone_id, fqdn(name), record_type) or (keep is not None and e.value == keep)]


def is_recorded(ctx: Ctx, zone_id: str, record_set: dict[str, Any]) -> bool:
    return any(entry.matches(zone_id, record_set) for entry in recorded(ctx))


def write_records(ctx: Ctx, zone: dict[str, Any], record_sets: list[dict[str, Any]], why: str) -> None:
    """UPSERT these records, remembered first, and the state file written before the call: the file is
    all that will ever say they are the stack's, and a run killed right after the call runs nothing more.
    One remembered and never written is no harm: only a record there as it was remembered is deleted."""
    if not record_sets:
        return
    for record_set in record_sets:
        remember(ctx, zone["Id"], record_set)
    ctx.save()
    change_records(ctx, zone, "UPSERT", record_sets, why)
    for record_set in record_sets:  # what was there before at these names is no more
        forget(ctx, zone["Id"], record_set["Name"], record_set["Type"], keep=record_value(record_set))


def zone_by_id(zone_id: str) -> dict[str, Any]:
    """A recorded zone, named by its ID in messages (its name is not recorded)."""
    return {"Id": zone_id, "Name": zone_id}


def delete_recorded(ctx: Ctx, entries: list[Entry], why: str, kind: str) -> None:
    """Delete these recorded records where they still are as the stack wrote them (zone by zone), and
    forget them; another record at such a name (the write failed, someone wrote theirs) is named, left."""
    for zone_id in sorted({entry.zone_id for entry in entries}):
        here = [entry for entry in entries if entry.zone_id == zone_id]
        zone = zone_by_id(zone_id)
        present = ctx.aws.look(records_look(zone_id), resource=f"records of hosted zone {zone_id}") or []
        stale = [r for r in present if any(entry.matches(zone_id, r) for entry in here)]
        change_records(ctx, zone, "DELETE", stale, why)
        for record_set in stale:
            ctx.record("deleted", kind, record_set["Name"].rstrip("."))
        leave_others(ctx, zone, present, here, kind)


def leave_others(ctx: Ctx, zone: dict[str, Any], present: list[dict[str, Any]], entries: list[Entry],
                 kind: str) -> None:
    """After the stack's records at these entries' names went: a record still there at one of them
    holds something else than threetier wrote (its write never happened, and someone wrote theirs):
    not the stack's, named and left. The entries are forgotten: nothing of the stack's is there."""
    for record_set in present:
        if any((fqdn(record_set["Name"]), record_set["Type"]) == (e.name, e.type) for e in entries) \
                and not any(e.matches(zone["Id"], record_set) for e in entries):
            ctx.out.info(f"  note: {kind} {record_set['Name'].rstrip('.')} in hosted zone {zone['Name'].rstrip('.')} "
                         f"holds {describe_record(record_set)}, not what threetier wrote there; left as it is")
    for entry in entries:
        forget(ctx, zone["Id"], entry.name, entry.type)


def zone_holding(ctx: Ctx, name: str) -> dict[str, Any] | None:
    """The public zone of this account that holds `name` (the longest suffix of it), found without
    config or state; None when there is none, or when two public zones have that name (no guess)."""
    labels = fqdn(name).rstrip(".").split(".")
    for start in range(1, len(labels) - 1):
        suffix = fqdn(".".join(labels[start:]))
        found = ctx.aws.look(Look("route53", "list_hosted_zones_by_name", {"DNSName": suffix}),
                             resource=f"hosted zone {suffix}") or {}
        zones = [z for z in found.get("HostedZones", [])
                 if z["Name"].lower() == suffix and not z.get("Config", {}).get("PrivateZone")]
        if len(zones) == 1:
            return {"Id": zones[0]["Id"].split("/")[-1], "Name": suffix}
        if zones:
            return None
    return None


# -- the alias record ---------------------------------------------------------------
def balancer_name(dns_name: str) -> str:
    """An ALB's DNS name as an alias record holds it: no dualstack. prefix, lower case, a final dot."""
    return fqdn(dns_name).removeprefix("dualstack.")


def aimed_at(record_set: dict[str, Any], dns_name: str | None) -> bool:
    """An alias A or AAAA record to the load balancer (or distribution) of exactly this DNS name (the same
    stack in another region, sharing the zone, has an ALB of the same name and another DNS name)."""
    target = (record_set.get("AliasTarget") or {}).get("DNSName")
    return bool(dns_name and target) and record_set.get("Type") in ("A", "AAAA") \
        and balancer_name(target or "") == balancer_name(dns_name or "")


def ours(ctx: Ctx, zone_id: str, record_set: dict[str, Any], dns_name: str | None) -> bool:
    """Aimed at the stack's ALB or at its own distribution (found by its tags: DISTRIBUTION_DOMAIN), or
    written by the stack (its state says so)."""
    return aimed_at(record_set, dns_name) or aimed_at(record_set, ctx.resources.get(DISTRIBUTION_DOMAIN)) \
        or is_recorded(ctx, zone_id, record_set)


def describe_record(record_set: dict[str, Any]) -> str:
    alias = record_set.get("AliasTarget")
    if alias:
        return f"an alias to {str(alias.get('DNSName', '?')).rstrip('.')}"
    values = [v["Value"] for v in record_set.get("ResourceRecords", [])]
    return ", ".join(values) or "no value"


def refuse_foreign_records(ctx: Ctx, zone: dict[str, Any], present: list[dict[str, Any]],
                           dns_name: str | None, *, unproven_cloudfront: bool = False) -> None:
    """A record answering for the domain (or, with edge.cdn, origin.<domain>) that is not the stack's is
    someone's site: never overwritten. `unproven_cloudfront` (preflight, with edge.cdn and a state that does
    not know the distribution): an alias to a CloudFront distribution is left for `up` to prove by its tags."""
    names = {fqdn(name) for name in (domain(ctx), ctx.config.edge.origin_domain) if name}
    for record_set in present:
        if unproven_cloudfront and (record_set.get("AliasTarget") or {}).get("HostedZoneId") == CLOUDFRONT_ZONE:
            continue
        if fqdn(record_set["Name"]) in names and record_set["Type"] in ADDRESS_TYPES \
                and not ours(ctx, zone["Id"], record_set, dns_name):
            raise ThreetierError(
                f"edge.domain: hosted zone {zone['Name'].rstrip('.')} ({zone['Id']}) already has the "
                f"{record_set['Type']} record {record_set['Name'].rstrip('.')} ({describe_record(record_set)}) that threetier did not "
                f"write; nothing was changed: delete that record in Route 53 if the stack should take the name "
                f"over, or choose another edge.domain, then run `threetier up` again")


def check_domain_free(ctx: Ctx) -> None:
    """Before anything is requested or written: the domain is not someone else's record."""
    zone = need_zone(ctx)
    refuse_foreign_records(ctx, zone, records(ctx, zone), ctx.resources.get("load_balancer_dns"))


def alias_record(ctx: Ctx, balancer: dict[str, Any]) -> dict[str, Any]:
    return {"Name": fqdn(domain(ctx)), "Type": "A", "AliasTarget": {
        "HostedZoneId": balancer["CanonicalHostedZoneId"], "DNSName": balancer["DNSName"],
        # Route 53 takes the ALB's health into account (with one record there is no other answer to
        # fall back on; it matters if the user adds failover or latency records beside it).
        "EvaluateTargetHealth": True}}


def ensure_alias_record(ctx: Ctx, tier: balancing.Tier) -> None:
    """The domain's alias A record to the ALB; one of ours for another name (the domain changed) goes."""
    balancer = need_balancer(ctx, tier)
    ensure_alias_records(ctx, [alias_record(ctx, balancer)], balancer["DNSName"], f"{domain(ctx)} to the external load balancer")


def need_balancer(ctx: Ctx, tier: balancing.Tier) -> dict[str, Any]:
    balancer = balancing.find_load_balancer(ctx, tier)
    if balancer is None:  # made in start: not expected
        raise ThreetierError(f"load balancer {ctx.name(tier.alb_role)} is gone; run `threetier up` again")
    return balancer


def ensure_alias_records(ctx: Ctx, wanted: list[dict[str, Any]], dns_name: str | None, why: str, *,
                         prune: bool = True) -> None:
    """These alias records, written where they are not as wanted. `prune`: the wanted set is complete, and
    the stack's alias records (A, AAAA) of other names and types go (the domain changed, edge.cdn turned
    off: origin.<domain> and the AAAA record); other records aimed at the ALB are the user's and stay."""
    zone = need_zone(ctx)
    present = records(ctx, zone)
    refuse_foreign_records(ctx, zone, present, dns_name)
    for record_set in wanted:
        have = next((r for r in present if fqdn(r["Name"]) == record_set["Name"] and r["Type"] == record_set["Type"]), None)
        shown = record_set["Name"].rstrip(".") + (" (IPv6)" if record_set["Type"] == "AAAA" else "")
        if have is None or not same_alias(have, record_set):
            write_records(ctx, zone, [record_set], why)
            ctx.record("created" if have is None else "changed", "alias record", shown)
        else:  # ours already (aimed where the stack aims it): remembered, a lost state file or not
            remember(ctx, zone["Id"], record_set)
            forget(ctx, zone["Id"], record_set["Name"], record_set["Type"], keep=record_value(record_set))
    if prune:
        kept = {(zone["Id"], r["Name"], r["Type"]) for r in wanted}
        delete_recorded(ctx, [e for e in recorded_aliases(ctx) if (e.zone_id, e.name, e.type) not in kept],
                        "a name the stack no longer uses", "alias record")


def recorded_aliases(ctx: Ctx) -> list[Entry]:
    """The alias records the stack wrote: A (the domain, origin.<domain>) and AAAA (the domain, to CloudFront)."""
    return [entry for entry in recorded(ctx) if entry.type in ALIAS_TYPES]


# -- edge.cdn: CloudFront serves the domain; it reaches the ALB as origin.<domain> ---------------------
# The hosted zone ID of every CloudFront distribution's alias target (AWS's Route 53 API reference,
# AliasTarget: "Specify Z2FDTNDATAQYW2" for a CloudFront distribution).
CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2"
ALIAS_TYPES = ("A", "AAAA")


def origin_record(ctx: Ctx, balancer: dict[str, Any]) -> dict[str, Any]:
    """origin.<domain> to the ALB: the name CloudFront reaches it by over HTTPS (its certificate covers it)."""
    assert ctx.config.edge.origin_domain is not None
    return {**alias_record(ctx, balancer), "Name": fqdn(ctx.config.edge.origin_domain)}


def cloudfront_records(ctx: Ctx, distribution_domain: str) -> list[dict[str, Any]]:
    """The domain's A and AAAA alias records to the distribution (it serves IPv6 too: IsIPV6Enabled)."""
    return [{"Name": fqdn(domain(ctx)), "Type": kind, "AliasTarget": {
        "HostedZoneId": CLOUDFRONT_ZONE, "DNSName": distribution_domain,
        "EvaluateTargetHealth": False}}  # Route 53 allows no health evaluation of a CloudFront target
        for kind in ALIAS_TYPES]


def same_alias(have: dict[str, Any], wanted: dict[str, Any]) -> bool:
    target, aim = have.get("AliasTarget") or {}, wanted["AliasTarget"]
    return target.get("HostedZoneId") == aim["HostedZoneId"] and fqdn(target.get("DNSName", "")) == fqdn(aim["DNSName"])
