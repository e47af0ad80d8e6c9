"""One Aws object, calls in another region than the stack's: CloudFront's certificates and web ACLs
live in us-east-1 whatever the stack's region (threetier/aws.py `region=`)."""
from __future__ import annotations

import boto3

from helpers import FakeClock, moto
from threetier.aws import Aws, Look


def test_a_call_and_a_look_in_us_east_1_from_a_stack_elsewhere_reach_that_region_only() -> None:
    with moto():
        aws = Aws("eu-west-1", clock=FakeClock(), emulator=True, read_threads=1)
        made = aws.call("acm", "request_certificate", resource="certificate", region="us-east-1",
                        DomainName="shop.example.com", ValidationMethod="DNS")["CertificateArn"]
        assert ":acm:us-east-1:" in made
        assert boto3.client("acm", region_name="eu-west-1").list_certificates()["CertificateSummaryList"] == []
        # The same read in either region: two entries of the inventory, each answering its own region.
        there = Look("acm", "list_certificates", key="CertificateSummaryList", region="us-east-1")
        here = Look("acm", "list_certificates", key="CertificateSummaryList")
        assert there.id != here.id
        aws.prefetch([there, here])
        assert [c["CertificateArn"] for c in aws.peek(there)] == [made]
        assert aws.look(here, resource="certificates") == []
        assert [c["CertificateArn"] for c in aws.items("acm", "list_certificates", "CertificateSummaryList",
                                                          resource="certificates", region="us-east-1")] == [made]
        # The stack's own region by name is the stack's client, not a second one.
        assert aws.client("acm", "eu-west-1") is aws.client("acm")
        assert aws.client("acm", "us-east-1") is not aws.client("acm")
