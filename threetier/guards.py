"""The account's own guards in the stack's region: a CloudTrail trail logging management events, and
an enabled GuardDuty detector. `status` says when either is missing, with the AWS CLI command that
turns it on.

threetier never turns them on itself: both belong to the account, not to the stack (one trail and
one detector serve every workload of the account and region, outlive any stack, and bill by the
account's whole activity), so whether to have them, and where the trail's logs go, is the account
owner's choice.

Reads: the first round (DescribeTrails with the other regions' multi-region trails, ListDetectors)
rides with `status`'s inventory (`first_round`, Runtime.inspector's `also`): no round of its own; the
second (each trail's status and event selectors, each detector) is one round of concurrent reads.
Only `status` reads them, `up` and `plan` never. A read refused (AccessDenied) or not offered (an
emulator) leaves its guard unjudged, said in -v: a status that cannot tell says nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threetier.aws import Aws, Look
from threetier.preflight import CANNOT_TELL, Unanswered, ask

CLOUDTRAIL, GUARDDUTY = "cloudtrail", "guardduty"
ENABLED = "ENABLED"  # a GuardDuty detector's Status when it watches
NEW_TRAIL = "management-events"  # the name the suggested trail gets


@dataclass(frozen=True)
class Guard:
    """One guard as status found it: on (True), off (False: the note and the command that enables
    it), or not known (None: why, for -v)."""
    name: str
    on: bool | None
    note: str | None = None
    enable: str | None = None
    why: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"on": self.on, "note": self.note, "enable": self.enable}

    def line(self) -> str:
        return f"{self.note}; threetier leaves it to the account's owner; to turn it on: {self.enable}"


def refused(look: Look) -> Look:
    """An answer that cannot tell (refused, not offered) comes back as None, in one call."""
    return Look(look.service, look.operation, look.params, missing_ok=CANNOT_TELL, key=look.key)


def first_round() -> dict[str, Look]:
    return {"trails": refused(Look(CLOUDTRAIL, "describe_trails", {"includeShadowTrails": True})),
            "detectors": refused(Look(GUARDDUTY, "list_detectors", key="DetectorIds"))}


def trails_of(answers: dict[str, Any]) -> list[dict[str, Any]]:
    found = answers.get("trails")
    return [t for t in (found or {}).get("trailList", []) if t.get("TrailARN")] if isinstance(found, dict) else []


def detectors_of(answers: dict[str, Any]) -> list[str]:
    found = answers.get("detectors")
    return list(found) if isinstance(found, list) else []


def second_round(answers: dict[str, Any]) -> dict[str, Look]:
    """Each trail's status and selectors (by ARN: another region's multi-region trail is known by its
    ARN only), each detector."""
    looks: dict[str, Look] = {}
    for trail in trails_of(answers):
        arn = trail["TrailARN"]
        looks[f"status {arn}"] = refused(Look(CLOUDTRAIL, "get_trail_status", {"Name": arn}))
        looks[f"selectors {arn}"] = refused(Look(CLOUDTRAIL, "get_event_selectors", {"TrailName": arn}))
    for detector in detectors_of(answers):
        looks[f"detector {detector}"] = refused(Look(GUARDDUTY, "get_detector", {"DetectorId": detector}))
    return looks


def unknown(answer: Any) -> str | None:
    """Why an answer cannot tell (None: it can)."""
    if isinstance(answer, Unanswered):
        return answer.why
    if answer is None:
        return "refused or not offered by this endpoint"
    return None


# -- the judgements (pure) -------------------------------------------------------------
def records_management_events(selectors: dict[str, Any]) -> bool:
    """GetEventSelectors' answer includes management events: a basic selector with
    IncludeManagementEvents, or an advanced one of eventCategory Management. None at all: AWS's
    default for a trail given none (every management event; moto answers so)."""
    basic = selectors.get("EventSelectors") or []
    advanced = selectors.get("AdvancedEventSelectors") or []
    if not basic and not advanced:
        return True
    if any(selector.get("IncludeManagementEvents", True) for selector in basic):
        return True
    return any(field.get("Field") == "eventCategory" and "Management" in field.get("Equals", [])
               for selector in advanced for field in selector.get("FieldSelectors", []))


def cloudtrail(region: str, answers: dict[str, Any]) -> Guard:
    why = unknown(answers.get("trails"))
    if why:
        return Guard(CLOUDTRAIL, None, why=f"DescribeTrails: {why}")
    create = (f"aws cloudtrail create-trail --name {NEW_TRAIL} --s3-bucket-name <a bucket whose policy lets "
              f"CloudTrail write> --is-multi-region-trail --region {region} && aws cloudtrail start-logging "
              f"--name {NEW_TRAIL} --region {region}")
    trails = trails_of(answers)
    if not trails:
        return Guard(CLOUDTRAIL, False, f"CloudTrail: no trail in {region}", create)
    faults: list[str] = []
    unknowns: list[str] = []
    stopped: dict[str, Any] | None = None  # a trail that records management events but is not logging
    for trail in trails:
        arn, name = trail["TrailARN"], trail.get("Name", trail["TrailARN"])
        status: Any = answers.get(f"status {arn}")
        selectors: Any = answers.get(f"selectors {arn}")
        logging = None if unknown(status) else bool(status.get("IsLogging"))
        management = None if unknown(selectors) else records_management_events(selectors)
        if logging and management:
            return Guard(CLOUDTRAIL, True)
        if logging is False or management is False:
            said = [what for what, bad in (("not logging", logging is False),
                                           ("management events excluded", management is False)) if bad]
            faults.append(f"{name}: {', '.join(said)}")
            if logging is False and management and stopped is None:
                stopped = trail
        else:
            unknowns.append(f"{name}: {unknown(status) or unknown(selectors)}")
    if unknowns:
        return Guard(CLOUDTRAIL, None, why="; ".join(unknowns))
    note = f"CloudTrail: no trail in {region} logs management events ({'; '.join(faults)})"
    if stopped is not None:
        home = stopped.get("HomeRegion") or region
        return Guard(CLOUDTRAIL, False, note, f"aws cloudtrail start-logging --name {stopped['TrailARN']} "
                                              f"--region {home}")
    return Guard(CLOUDTRAIL, False, note, create)


def guardduty(region: str, answers: dict[str, Any]) -> Guard:
    why = unknown(answers.get("detectors"))
    if why:
        return Guard(GUARDDUTY, None, why=f"ListDetectors: {why}")
    detectors = detectors_of(answers)
    if not detectors:
        return Guard(GUARDDUTY, False, f"GuardDuty: no detector in {region}",
                     f"aws guardduty create-detector --enable --region {region}")
    unknowns = []
    for detector in detectors:
        answer: Any = answers.get(f"detector {detector}")
        if unknown(answer):
            unknowns.append(f"{detector}: {unknown(answer)}")
        elif answer.get("Status") == ENABLED:
            return Guard(GUARDDUTY, True)
    if unknowns:
        return Guard(GUARDDUTY, None, why="; ".join(unknowns))
    return Guard(GUARDDUTY, False, f"GuardDuty: the detector {detectors[0]} in {region} is disabled",
                 f"aws guardduty update-detector --detector-id {detectors[0]} --enable --region {region}")


# -- the whole -------------------------------------------------------------------------
def check(aws: Aws) -> list[Guard]:
    """Both guards of the stack's region: the first round's answers from the inventory (when status
    took it with `first_round`), then one round of concurrent reads."""
    answers = ask(aws, first_round(), label="account guards")
    answers.update(ask(aws, second_round(answers), label="account guards"))
    return [cloudtrail(aws.region, answers), guardduty(aws.region, answers)]


def say(guards: list[Guard], out: Any) -> None:
    """The view: a note per guard off (stderr, as status's other notes on the account and the
    stack's lock), and in -v each that could not be told."""
    for guard in guards:
        if guard.on is False:
            out.info(f"note: {guard.line()}")
        elif guard.on is None:
            out.detail(f"account guards: {guard.name}: not checked ({guard.why})")


def to_json(guards: list[Guard]) -> dict[str, dict[str, Any]]:
    return {guard.name: guard.to_json() for guard in guards}
