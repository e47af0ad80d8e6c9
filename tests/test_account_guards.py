"""The account's own guards (issue 26, item 4): `status` notes, for the stack's region, when no
CloudTrail trail logs management events or no GuardDuty detector is enabled, each with the command
that turns it on; threetier itself never turns either on. A read refused (AccessDenied) is skipped,
said in -v only, and never fails status."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from helpers import cli
from threetier.aws import Aws

REGION = "us-east-1"  # the tests' region (conftest)
OTHER = "eu-west-1"


def status_json(workdir: Path) -> dict[str, Any]:
    result = cli("status", "--json", cwd=workdir)
    assert result.code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def trail(name: str, region: str, *, multi_region: bool = False, logging: bool = True,
          selectors: dict[str, Any] | None = None) -> str:
    """A trail (its bucket too), logging or not, with these event selectors; its ARN."""
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = f"{name}-logs"
    s3.create_bucket(Bucket=bucket)
    cloudtrail = boto3.client("cloudtrail", region_name=region)
    arn = cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=multi_region)["TrailARN"]
    if selectors:
        cloudtrail.put_event_selectors(TrailName=name, **selectors)
    if logging:
        cloudtrail.start_logging(Name=name)
    return arn


def detector(enabled: bool) -> str:
    return boto3.client("guardduty", region_name=REGION).create_detector(Enable=enabled)["DetectorId"]


def test_no_trail_and_no_detector_are_two_notes_with_their_commands(built: Path) -> None:
    human = cli("status", cwd=built)
    assert human.code == 0, human.stdout + human.stderr  # the notes are not drift: status stays clean
    notes = [line for line in human.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2, human.stderr
    assert notes[0].startswith(f"note: CloudTrail: no trail in {REGION}; ")
    assert ("aws cloudtrail create-trail --name management-events --s3-bucket-name" in notes[0]
            and f"--is-multi-region-trail --region {REGION} && aws cloudtrail start-logging" in notes[0])
    assert notes[1] == (f"note: GuardDuty: no detector in {REGION}; threetier leaves it to the account's owner; to "
                        f"turn it on: aws guardduty create-detector --enable --region {REGION}")
    assert "note:" not in human.stdout  # stdout is the stack's view alone
    seen = status_json(built)["account_guards"]
    assert seen["cloudtrail"]["on"] is False and "create-trail" in seen["cloudtrail"]["enable"]
    assert seen["guardduty"] == {"on": False, "note": f"GuardDuty: no detector in {REGION}",
                                 "enable": f"aws guardduty create-detector --enable --region {REGION}"}
    # status PART is about that Part: no account guard read, no note
    part = cli("status", "network", "-v", cwd=built)
    assert "note:" not in part.stderr and "cloudtrail" not in part.stderr.lower()


@pytest.mark.parametrize("home", [REGION, OTHER])
def test_a_logging_multi_region_trail_with_management_events_and_an_enabled_detector_are_no_note(
        built: Path, home: str) -> None:
    """The trail's home region may be another: DescribeTrails lists it here (includeShadowTrails)."""
    trail("org-audit", home, multi_region=True, selectors={"EventSelectors": [
        {"ReadWriteType": "All", "IncludeManagementEvents": True}]})
    detector(enabled=True)
    human = cli("status", cwd=built)
    assert human.code == 0 and "note:" not in human.stderr, human.stderr
    seen = status_json(built)["account_guards"]
    assert seen["guardduty"] == {"on": True, "note": None, "enable": None}
    # moto answers GetEventSelectors for its own region's trails only (AWS: any trail by ARN): another
    # region's trail cannot be told here, which is no note either
    assert seen["cloudtrail"] == {"on": True if home == REGION else None, "note": None, "enable": None}


@pytest.mark.parametrize("made, said", [
    ({"logging": False}, "audit: not logging"),
    ({"selectors": {"AdvancedEventSelectors": [{"Name": "S3 writes only", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}]}},
     "audit: management events excluded"),
])
def test_a_trail_not_logging_or_without_management_events_and_a_disabled_detector_are_notes(
        built: Path, made: dict[str, Any], said: str) -> None:
    arn = trail("audit", REGION, **made)
    trail("elsewhere", OTHER)  # one region's own trail: not this region's
    disabled = detector(enabled=False)
    seen = status_json(built)["account_guards"]
    assert seen["cloudtrail"]["on"] is False
    assert seen["cloudtrail"]["note"] == f"CloudTrail: no trail in {REGION} logs management events ({said})"
    if "not logging" in said:  # it records management events once started: start it
        assert seen["cloudtrail"]["enable"] == f"aws cloudtrail start-logging --name {arn} --region {REGION}"
    else:
        assert seen["cloudtrail"]["enable"].startswith("aws cloudtrail create-trail ")
    assert seen["guardduty"] == {
        "on": False, "note": f"GuardDuty: the detector {disabled} in {REGION} is disabled",
        "enable": f"aws guardduty update-detector --detector-id {disabled} --enable --region {REGION}"}


def test_reads_refused_are_no_note_and_no_failure_said_with_v(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Aws._client

    def client(self: Aws, service: str, region: str | None) -> Any:
        made = real(self, service, region)
        if service in ("cloudtrail", "guardduty") and not hasattr(made, "refusing"):
            stubber = Stubber(made)
            stubber.add_client_error("describe_trails" if service == "cloudtrail" else "list_detectors",
                                     service_error_code="AccessDeniedException", http_status_code=403)
            stubber.activate()
            made.refusing = stubber
        return made
    monkeypatch.setattr(Aws, "_client", client)
    human = cli("status", "-v", cwd=built)
    assert human.code == 0, human.stdout + human.stderr
    assert "note:" not in human.stderr and "error" not in human.stderr.lower()
    assert ("account guards: cloudtrail: not checked (DescribeTrails: refused or not offered by this endpoint)"
            in human.stderr)
    assert "account guards: guardduty: not checked (ListDetectors:" in human.stderr
    # asked once each, with the inventory: a refusal is not asked again
    assert human.stderr.count("aws cloudtrail DescribeTrails") == human.stderr.count("aws guardduty ListDetectors") == 1
    assert "note:" not in cli("status", cwd=built).stderr  # and without -v, nothing at all


def test_what_counts_as_recording_management_events_and_what_cannot_be_told() -> None:
    """The judgements on answers written by hand: selectors of both kinds; a trail whose status or
    selectors nobody could read leaves CloudTrail unjudged unless another trail is on."""
    from threetier import guards
    from threetier.preflight import Unanswered
    assert guards.records_management_events({"EventSelectors": [], "AdvancedEventSelectors": []})  # AWS's default
    assert not guards.records_management_events({"EventSelectors": [
        {"ReadWriteType": "All", "IncludeManagementEvents": False, "DataResources": [{"Type": "AWS::S3::Object"}]}]})
    assert guards.records_management_events({"AdvancedEventSelectors": [{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]}]}]})
    arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/a"
    listed = {"trails": {"trailList": [{"Name": "a", "TrailARN": arn, "HomeRegion": REGION}]}}
    denied = {**listed, f"status {arn}": Unanswered("AccessDeniedException"), f"selectors {arn}": {}}
    assert guards.cloudtrail(REGION, denied).on is None and "AccessDeniedException" in (guards.cloudtrail(REGION, denied).why or "")
    stopped = {**listed, f"status {arn}": {"IsLogging": False}, f"selectors {arn}": Unanswered("denied")}
    assert guards.cloudtrail(REGION, stopped).on is False  # not logging is known whatever its selectors
    assert guards.guardduty(REGION, {"detectors": ["d1"], "detector d1": None}).on is None
