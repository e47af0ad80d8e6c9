"""Route 53, as far as the model needs it: which CNAMEs are in a hosted zone, and since when (written by
ChangeResourceRecordSets, or there before). ACM's DNS validation waits for them (acm.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.model.core import after

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


def fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


def zone_cnames(model: LatencyModel) -> set[tuple[str, str]]:
    """The CNAMEs in every hosted zone now (moto's), as (name., value.)."""
    route53, found = model.raw("route53"), set[tuple[str, str]]()
    for zone in route53.list_hosted_zones()["HostedZones"]:
        for record_set in route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]:
            if record_set["Type"] == "CNAME":
                found |= {(fqdn(record_set["Name"]), fqdn(r["Value"])) for r in record_set.get("ResourceRecords", [])}
    return found


@after("route53", "ChangeResourceRecordSets")
def records_changed(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    for change in (params.get("ChangeBatch") or {}).get("Changes", []):
        record_set = change.get("ResourceRecordSet") or {}
        if record_set.get("Type") != "CNAME":
            continue
        name = fqdn(record_set.get("Name", ""))
        values = {fqdn(r.get("Value", "")) for r in record_set.get("ResourceRecords") or []}
        writes = change.get("Action") in ("CREATE", "UPSERT")
        for key in [k for k in model.cnames if k[0] == name and not (writes and k[1] in values)]:
            del model.cnames[key]
        if writes:
            for value in values:
                model.cnames.setdefault((name, value), model.now)
