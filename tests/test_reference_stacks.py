"""A reference stack round-trips: restored, it is the stack `up` built — complete, clean, changed by
nothing, deletable — and each restore is a copy of its own."""
from __future__ import annotations

from pathlib import Path

import boto3

from helpers import cli
from test_crash_recovery import EXPECTED, census


def test_a_restored_stack_is_the_stack_up_built(built: Path, calls: list[str]) -> None:
    assert census() == EXPECTED
    status = cli("status", cwd=built)
    assert status.code == 0, status.stdout + status.stderr
    assert "not deployed" not in status.stdout
    again = cli("up", "--yes", cwd=built)
    assert again.code == 0, again.stderr
    changes = [op for op in calls if op.startswith(("Create", "Run", "Put", "Delete", "Modify", "Authorize"))
               and op not in ("PutParameter", "DeleteParameter")]  # the stack's lock
    assert changes == []
    down = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert down.code == 0, down.stderr
    assert boto3.client("ec2").describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])[
        "Vpcs"] == []


def test_each_restore_is_a_copy_of_its_own(reference_stacks, tmp_path: Path) -> None:
    with reference_stacks.restored("default", tmp_path / "first"):
        ec2 = boto3.client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:threetier:stack", "Values": ["threetier"]}])["Vpcs"][0]
        ec2.create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "touched", "Value": "yes"}])
        boto3.client("s3").put_object(Bucket=cli_bucket(), Key="touched", Body=b"yes")
    with reference_stacks.restored("default", tmp_path / "second"):
        again = boto3.client("ec2").describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]
        assert {"Key": "touched", "Value": "yes"} not in again.get("Tags", [])
        s3 = boto3.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=cli_bucket()).get("Contents", [])]
        assert keys and "touched" not in keys
        # Objects keep their bytes (moto's reset at the end of the first mock closes none of them).
        body = s3.get_object(Bucket=cli_bucket(), Key=keys[0])["Body"].read()
        assert body and len(body) == s3.head_object(Bucket=cli_bucket(), Key=keys[0])["ContentLength"]
        # moto knows the bucket's owner, as in the stack `up` built: CreateBucket of its name (what a
        # resuming `up` may ask) answers for that bucket instead of replacing it with an empty one.
        s3.create_bucket(Bucket=cli_bucket())
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=cli_bucket()).get("Contents", [])] == keys
        assert (tmp_path / "second" / ".threetier" / "threetier.json").is_file()
        assert (tmp_path / "second" / "state.json").is_file()


def cli_bucket() -> str:
    return next(b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"] if b["Name"].startswith("threetier-"))
