"""Least privilege on real AWS: IAM names per region, S3 calls
retried on OperationAborted, one role and instance profile per tier, and a bucket that refuses
requests without TLS on real AWS."""
from __future__ import annotations

import base64
import fnmatch
import json
import re
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, cli, make_engine, write_config
from threetier import scan
from threetier.aws import PART_TAG, STACK_TAG, Aws, Call

STACK = "threetier"
REGION = "us-east-1"
ACCOUNT = "123456789012"
TIERS = ("app", "web")


def role_name(tier: str, region: str = REGION, stack: str = STACK) -> str:
    return f"{stack}-{region}-{tier}-role"


def profile_name(tier: str, region: str = REGION, stack: str = STACK) -> str:
    return f"{stack}-{region}-{tier}-profile"


def bucket(region: str = REGION) -> str:
    return f"{STACK}-code-{ACCOUNT}-{region}"


# -- reading IAM back: every statement that applies to a role, evaluated here -------------------
# (moto implements no iam:SimulatePrincipalPolicy.) An Allow statement grants an action on a
# resource when both match its patterns; conditions are taken as true, which can only make a role
# look *more* able than it is: right for "cannot" assertions.
def role_statements(role: str) -> list[dict[str, Any]]:
    iam = boto3.client("iam")
    documents = [iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                 for name in iam.list_role_policies(RoleName=role)["PolicyNames"]]
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        documents.append(iam.get_policy_version(PolicyArn=attached["PolicyArn"],
                                                VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"])
    statements = []
    for document in documents:
        if isinstance(document, str):
            document = json.loads(document)
        found = document["Statement"]
        statements.extend([found] if isinstance(found, dict) else found)
    return statements


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _matches(patterns: list[str], value: str, *, case: bool) -> bool:
    if case:
        return any(fnmatch.fnmatchcase(value, p) for p in patterns)
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)


def grants(statement: dict[str, Any], action: str, resource: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        action_ok = not _matches(_listed(statement["NotAction"]), action, case=False)
    else:
        action_ok = _matches(_listed(statement.get("Action")), action, case=False)
    if "NotResource" in statement:
        resource_ok = not _matches(_listed(statement["NotResource"]), resource, case=True)
    else:
        resource_ok = _matches(_listed(statement.get("Resource")), resource, case=True)
    return action_ok and resource_ok


def allowed(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    # Denies would only take away; the stack's roles have none.
    assert not any(s.get("Effect") == "Deny" for s in statements)
    return any(grants(s, action, resource) for s in statements)


SECRET_READS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
BUCKET_WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl",
                 "s3:PutObjectTagging", "s3:RestoreObject", "s3:AbortMultipartUpload", "s3:ReplicateObject",
                 "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:DeleteBucket", "s3:PutBucketVersioning",
                 "s3:PutLifecycleConfiguration", "s3:PutEncryptionConfiguration", "s3:PutBucketAcl",
                 "s3:PutBucketPublicAccessBlock")


@pytest.fixture(scope="class")
def built(tmp_path_factory):
    """The whole stack, built once by the CLI (`up`) in moto, for the read-only IAM assertions of
    TestBuiltStack (class-wide: moto's state must not outlive them, other tests start their own);
    the AWS calls it made are kept in `UP_CALLS` (moto forgets a terminated builder's profile)."""
    from bench.moto_env import moto as bench_moto  # fake AWS environment + moto + "an emulator", class-wide
    made: list[Aws] = []
    real_init = Aws.__init__

    def init(self: Aws, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(self)

    path = tmp_path_factory.mktemp("built")
    (path / "config.yaml").write_text("{}\n")  # the defaults, in a file: `down` needs one
    with bench_moto():
        with mock.patch.object(Aws, "__init__", init):
            result = cli("up", "--yes", cwd=path)
        assert result.code == 0, result.stderr
        UP_CALLS[:] = [call for aws in made for call in aws.calls]
        yield path


UP_CALLS: list[Call] = []


def fetched_by_builder(tier: str) -> set[str]:
    """The bucket keys the tier's builder downloads: read from its user data as rendered (`fetch_tier
    PREFIX` copies every key of the package under it; `s3://$BUCKET/KEY` one key)."""
    from threetier import artifacts
    if tier == "app":
        user_data = artifacts.render_app_user_data(
            bucket=bucket(), region=REGION, db_host="db.example.com", db_name="webappdb", port=4000,
            db_secret_arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds-AbCdEf",
            log_group=f"/threetier/{STACK}/app")
    else:
        user_data = artifacts.render_web_user_data(bucket=bucket(), region=REGION,
                                                   access_log_group=f"/threetier/{STACK}/nginx-access",
                                                   error_log_group=f"/threetier/{STACK}/nginx-error")
    prefixes = re.findall(r"^\s*fetch_tier (\S+)", user_data, re.M)
    keys = set(re.findall(r"s3://\$BUCKET/([A-Za-z0-9._-][^\"'\s]*)", user_data))
    assert prefixes and all(not key.endswith("/") for key in keys)
    return keys | {k for k in artifacts.application_files() if any(k.startswith(f"{p}/") for p in prefixes)}


def state_resources(path: Path, part: int) -> dict[str, Any]:
    state = json.loads((path / ".threetier" / f"{STACK}.json").read_text())
    return state["parts"][str(part)]["resources"]


# -- item 10: one role and instance profile per tier -----------------------------------------------
class TestBuiltStack:
    def test_the_web_tier_cannot_read_any_secret_and_the_app_tier_reads_exactly_the_clusters(self, built: Path) -> None:
        secret = boto3.client("rds").describe_db_clusters(
            DBClusterIdentifier=f"{STACK}-aurora")["DBClusters"][0]["MasterUserSecret"]["SecretArn"]
        web, app = role_statements(role_name("web")), role_statements(role_name("app"))
        some_other_secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:someone-elses-AbCdEf"
        for action in SECRET_READS:
            # No statement of the web role names a Secrets Manager read, on any resource.
            assert not any(_matches(_listed(s.get("Action")), action, case=False) or "NotAction" in s for s in web)
            assert not allowed(web, action, secret) and not allowed(web, action, some_other_secret)
            assert allowed(app, action, secret)
            assert not allowed(app, action, some_other_secret)
            assert not allowed(app, action, secret + "-and-more")
        # Exactly: every statement of the app role that grants a secret read names that ARN and nothing else.
        readers = [s for s in app if any(_matches(_listed(s.get("Action")), a, case=False) for a in SECRET_READS)]
        assert readers and all(_listed(s["Resource"]) == [secret] for s in readers)


    def test_neither_tier_writes_the_bucket_and_each_reads_its_own_prefix(self, built: Path) -> None:
        arn = f"arn:aws:s3:::{bucket()}"
        reads = {"app": {"app-tier/package-lock.json", "app-tier/src/server.js"},
                 "web": {"web-tier/index.html", "nginx.conf"}}
        for tier in TIERS:
            statements = role_statements(role_name(tier))
            for action in BUCKET_WRITES:
                for resource in (arn, f"{arn}/*", f"{arn}/app-tier/x", f"{arn}/web-tier/index.html", f"{arn}/nginx.conf"):
                    assert not allowed(statements, action, resource), (tier, action, resource)
            assert allowed(statements, "s3:ListBucket", arn)  # the bootstraps' head-bucket and recursive copy
            everything = reads["app"] | reads["web"] | {"other/key"}
            readable = {key for key in everything if allowed(statements, "s3:GetObject", f"{arn}/{key}")}
            assert readable == reads[tier], tier
            # What the builder's user data fetches (and the bucket holds for it) is within what its role reads.
            for key in fetched_by_builder(tier):
                assert allowed(statements, "s3:GetObject", f"{arn}/{key}"), (tier, key)
            attached = [p["PolicyName"] for p in
                        boto3.client("iam").list_attached_role_policies(RoleName=role_name(tier))["AttachedPolicies"]]
            assert attached == ["AmazonSSMManagedInstanceCore"]  # the bake's health gate: SSM Run Command


    def test_each_tier_has_its_own_profile_for_its_builder_and_its_launch_template(self, built: Path) -> None:
        iam, ec2 = boto3.client("iam"), boto3.client("ec2")
        storage = state_resources(built, 1)
        for tier in TIERS:
            profile = iam.get_instance_profile(InstanceProfileName=profile_name(tier))["InstanceProfile"]
            assert [r["RoleName"] for r in profile["Roles"]] == [role_name(tier)]
            for tagged in (profile, iam.get_role(RoleName=role_name(tier))["Role"]):
                tags = {t["Key"]: t["Value"] for t in tagged.get("Tags", [])}
                assert tags[STACK_TAG] == STACK and tags[PART_TAG] == "1" and tags["Name"] in (role_name(tier),
                                                                                              profile_name(tier))
            assert storage[f"{tier}_instance_profile_arn"] == profile["Arn"]
            assert storage[f"{tier}_role"] == role_name(tier)
            runs = [c.params for c in UP_CALLS if c.operation == "RunInstances" and any(
                t["Value"] == f"{STACK}-{tier}-builder" for spec in c.params["TagSpecifications"] for t in spec["Tags"])]
            assert len(runs) == 1 and runs[0]["IamInstanceProfile"] == {"Arn": profile["Arn"]}
            data = ec2.describe_launch_template_versions(LaunchTemplateName=f"{STACK}-{tier}-lt",
                                                         Versions=["$Default"])["LaunchTemplateVersions"][0]
            assert data["LaunchTemplateData"]["IamInstanceProfile"]["Arn"] == profile["Arn"]
        # Tagged at creation, never in a second call (every role and profile of the stack: the tiers'
        # once each, and any other part's, such as Part 2's for the VPC flow logs).
        creates = [c for c in UP_CALLS if c.operation in ("CreateRole", "CreateInstanceProfile")]
        created = [c.params.get("RoleName") or c.params.get("InstanceProfileName") for c in creates]
        tier_iam = [name for tier in TIERS for name in (role_name(tier), profile_name(tier))]
        assert sorted(name for name in created if name in tier_iam) == sorted(tier_iam)
        assert all({t["Key"] for t in c.params["Tags"]} >= {STACK_TAG, PART_TAG, "Name"} for c in creates)
        assert not [c for c in UP_CALLS if c.operation in ("TagRole", "TagInstanceProfile")]
        # The public keys of status stay: the app tier's (it has what the one role had).
        assert storage["instance_profile_arn"] == storage["app_instance_profile_arn"]
        assert storage["role"] == role_name("app")
        status = cli("status", "--json", cwd=built)
        assert status.code == 0, status.stdout + status.stderr
        part1 = json.loads(status.stdout)["parts"][0]["resources"]
        assert {"role", "instance_profile_arn", "app_role", "web_role", "web_instance_profile_arn"} <= set(part1)


    def test_each_tier_writes_its_own_log_groups_only_and_its_builder_ships_to_exactly_those(self, built: Path) -> None:
        """Issue 12: the tier's CloudWatch agent (configured by its builder's user data, in its image)
        writes streams of its tier's groups; its role allows that and nothing else of CloudWatch Logs:
        no other tier's group, no group it could create (a group `down` deleted stays deleted) and no
        retention it could set (config.yaml's, set by Part 1)."""
        groups = {"app": [f"/threetier/{STACK}/app"],
                  "web": [f"/threetier/{STACK}/nginx-access", f"/threetier/{STACK}/nginx-error"]}
        every = groups["app"] + groups["web"] + [f"/threetier/{STACK}-b/app", f"/threetier/{STACK}/vpc-flow-logs"]
        for tier in TIERS:
            statements = role_statements(role_name(tier))
            for group in every:
                group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
                mine = group in groups[tier]
                for action, resource in (("logs:CreateLogStream", f"{group_arn}:log-stream:i-0123456789abcdef0"),
                                         ("logs:PutLogEvents", f"{group_arn}:log-stream:i-0123456789abcdef0"),
                                         ("logs:DescribeLogStreams", group_arn),
                                         ("logs:DescribeLogStreams", f"{group_arn}:*")):
                    assert allowed(statements, action, resource) == mine, (tier, action, resource)
                for action in ("logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
                               "logs:DeleteLogGroup", "logs:DeleteLogStream", "logs:GetLogEvents",
                               "logs:FilterLogEvents", "logs:TagResource"):
                    for resource in (group_arn, f"{group_arn}:*", "*"):
                        assert not allowed(statements, action, resource), (tier, action, resource)
            # Every statement of the role that names CloudWatch Logs is write-logs's, exactly.
            loggers = [st for st in statements if any(a.lower().startswith("logs:") for a in _listed(st.get("Action")))]
            assert len(loggers) == 1 and sorted(_listed(loggers[0]["Action"])) == sorted(
                ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"])

            runs = [c.params for c in UP_CALLS if c.operation == "RunInstances" and any(
                t["Value"] == f"{STACK}-{tier}-builder" for spec in c.params["TagSpecifications"] for t in spec["Tags"])]
            user_data = runs[0]["UserData"]  # as recorded: botocore base64-encodes it in the same params
            user_data = user_data if user_data.startswith("#!") else base64.b64decode(user_data).decode()
            agent = re.search(r"<<'AGENT_CONFIG'\n(.*?)\nAGENT_CONFIG\n", user_data, re.S)
            shipped = [e["log_group_name"] for e in json.loads(agent.group(1))["logs"]["logs_collected"]["files"]["collect_list"]]
            assert shipped == groups[tier]
            for group in shipped:
                assert allowed(statements, "logs:PutLogEvents",
                               f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:i-0123456789abcdef0")
            # The groups the agent writes exist before the builder boots (Part 1, with the stack's retention).
            found = boto3.client("logs").describe_log_groups(logGroupNamePrefix=f"/threetier/{STACK}/")["logGroups"]
            assert {g["logGroupName"]: g.get("retentionInDays") for g in found if g["logGroupName"] in shipped} == \
                dict.fromkeys(shipped, 14)


# -- item 2: IAM names carry the region ---------------------------------------------------------
def test_iam_names_carry_the_region_and_fit_iams_limits() -> None:
    from threetier import names
    longest_stack, longest_region = "a" + "b" * 20, "ap-southeast-4"
    for tier in TIERS:
        role = names.role_name_for(longest_stack, longest_region, tier)
        profile = names.instance_profile_name_for(longest_stack, longest_region, tier)
        assert longest_region in role and longest_region in profile
        assert len(role) <= 64 and len(profile) <= 128
        assert names.role_name_for(STACK, "us-east-1", tier) != names.role_name_for(STACK, "eu-west-1", tier)
    # A region name the config accepts but AWS has not (yet): still deterministic, still within the limit.
    odd = "us-" + "x" * 60 + "-1"
    assert names.role_name_for(longest_stack, odd, "app") == names.role_name_for(longest_stack, odd, "app")
    assert len(names.role_name_for(longest_stack, odd, "app")) <= 64


def test_two_regions_same_stack_name_have_independent_roles(stack_from, tmp_path: Path) -> None:
    east = stack_from("default", tmp_path / "east")  # the default region, us-east-1: restored
    west = tmp_path / "west"  # the same stack name in another region: built beside it
    west.mkdir()
    write_config(west, region="eu-west-1")
    assert cli("up", "--yes", cwd=west).code == 0
    iam = boto3.client("iam")
    for region in ("us-east-1", "eu-west-1"):
        secret = boto3.client("rds", region_name=region).describe_db_clusters(
            DBClusterIdentifier=f"{STACK}-aurora")["DBClusters"][0]["MasterUserSecret"]["SecretArn"]
        assert f":{region}:" in secret
        document = iam.get_role_policy(RoleName=role_name("app", region), PolicyName="read-db-secret")
        assert [s["Resource"] for s in document["PolicyDocument"]["Statement"]] == [secret]
        for tier in TIERS:  # each reads its own region's bucket
            statements = role_statements(role_name(tier, region))
            assert allowed(statements, "s3:ListBucket", f"arn:aws:s3:::{bucket(region)}")
            other = bucket("eu-west-1" if region == "us-east-1" else "us-east-1")
            assert not allowed(statements, "s3:ListBucket", f"arn:aws:s3:::{other}")

    down = cli("down", "--yes", "--skip-final-snapshot", cwd=east)
    assert down.code == 0, down.stderr
    for tier in TIERS:
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.get_role(RoleName=role_name(tier, "us-east-1"))
        profile = iam.get_instance_profile(InstanceProfileName=profile_name(tier, "eu-west-1"))["InstanceProfile"]
        assert [r["RoleName"] for r in profile["Roles"]] == [role_name(tier, "eu-west-1")]
    status = cli("status", "--json", cwd=west)
    assert status.code == 0, status.stdout
    assert all(part["status"] == "done" and not part["drift"] for part in json.loads(status.stdout)["parts"])
    assert cli("down", "--yes", "--skip-final-snapshot", cwd=west).code == 0
    assert [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(STACK)] == []
    assert iam.list_instance_profiles()["InstanceProfiles"] == []


def make_legacy(region: str) -> None:
    """The role and profile of threetier before IAM names carried the region: `{stack}-ec2-role`
    (read-code-bucket naming `region`'s bucket) in `{stack}-ec2-profile`."""
    iam = boto3.client("iam")
    tags = [{"Key": STACK_TAG, "Value": STACK}, {"Key": PART_TAG, "Value": "1"}]
    iam.create_role(RoleName=f"{STACK}-ec2-role", Tags=[*tags, {"Key": "Name", "Value": f"{STACK}-ec2-role"}],
                    AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.attach_role_policy(RoleName=f"{STACK}-ec2-role",
                           PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
    arn = f"arn:aws:s3:::{bucket(region)}"
    iam.put_role_policy(RoleName=f"{STACK}-ec2-role", PolicyName="read-code-bucket", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{arn}/*"}]}))
    iam.create_instance_profile(InstanceProfileName=f"{STACK}-ec2-profile",
                                Tags=[*tags, {"Key": "Name", "Value": f"{STACK}-ec2-profile"}])
    iam.add_role_to_instance_profile(InstanceProfileName=f"{STACK}-ec2-profile", RoleName=f"{STACK}-ec2-role")


def test_down_removes_the_old_shared_role_and_profile_of_this_region(built: Path) -> None:
    make_legacy(REGION)  # as left by an `up` of threetier before this change
    found = {(f.kind, f.name) for f in scan.tagged(make_engine(built).ctx.aws, STACK)}
    assert {("IAM role", f"{STACK}-ec2-role"), ("instance profile", f"{STACK}-ec2-profile")} <= found
    assert {("IAM role", role_name(t)) for t in TIERS} <= found
    assert cli("up", "--yes", cwd=built).code == 0  # up leaves it alone: instances may still run with it
    assert boto3.client("iam").get_role(RoleName=f"{STACK}-ec2-role")
    down = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert down.code == 0, down.stderr
    iam = boto3.client("iam")
    assert [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(STACK)] == []
    assert iam.list_instance_profiles()["InstanceProfiles"] == []


def test_down_leaves_the_old_shared_role_of_another_region_alone(built: Path) -> None:
    make_legacy("eu-west-1")  # last written by that region's stack: its instances may run with it
    assert ("IAM role", f"{STACK}-ec2-role") not in {(f.kind, f.name) for f in
                                                     scan.tagged(make_engine(built).ctx.aws, STACK)}
    down = cli("down", "--yes", "--skip-final-snapshot", cwd=built)
    assert down.code == 0, down.stderr
    iam = boto3.client("iam")
    assert iam.get_role(RoleName=f"{STACK}-ec2-role")["Role"]
    assert [r["RoleName"] for r in iam.get_instance_profile(
        InstanceProfileName=f"{STACK}-ec2-profile")["InstanceProfile"]["Roles"]] == [f"{STACK}-ec2-role"]
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"{STACK}-{REGION}-")]


# -- items 4 and 13 on the real-AWS path, under botocore's Stubber ----------------------------------
def storage_engine(tmp_path: Path, clock: FakeClock):
    engine = make_engine(tmp_path, clock=clock)
    engine.ctx.aws.emulator = False  # real AWS: the bucket policy is put
    engine.ctx.part = next(p for p in engine.parts if p.number == 1)
    return engine


def tls_statement() -> dict[str, Any]:
    arn = f"arn:aws:s3:::{bucket()}"
    return {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def test_s3_configuration_after_create_bucket_is_retried_on_operation_aborted(tmp_path: Path) -> None:
    from steps import storage
    clock = FakeClock()
    engine = storage_engine(tmp_path, clock)
    aws = engine.ctx.aws
    owner = {"Bucket": bucket(), "ExpectedBucketOwner": ACCOUNT}
    with Stubber(aws.client("sts")) as sts, Stubber(aws.client("s3")) as s3:
        sts.add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/me"})
        s3.add_client_error("head_bucket", service_error_code="404", http_status_code=404)
        s3.add_client_error("create_bucket", service_error_code="OperationAborted", http_status_code=409)
        s3.add_response("create_bucket", {"Location": f"/{bucket()}"})
        s3.add_client_error("get_public_access_block", service_error_code="NoSuchPublicAccessBlockConfiguration",
                            http_status_code=404)
        for operation in ("put_public_access_block",):
            s3.add_client_error(operation, service_error_code="OperationAborted", http_status_code=409)
            s3.add_response(operation, {})
        s3.add_client_error("get_bucket_encryption", service_error_code="ServerSideEncryptionConfigurationNotFoundError",
                            http_status_code=404)
        s3.add_client_error("put_bucket_encryption", service_error_code="OperationAborted", http_status_code=409)
        s3.add_response("put_bucket_encryption", {})
        s3.add_response("get_bucket_versioning", {}, owner)
        s3.add_client_error("put_bucket_versioning", service_error_code="OperationAborted", http_status_code=409)
        s3.add_response("put_bucket_versioning", {})
        s3.add_client_error("get_bucket_policy", service_error_code="NoSuchBucketPolicy", http_status_code=404)
        s3.add_client_error("put_bucket_policy", service_error_code="OperationAborted", http_status_code=409)
        s3.add_response("put_bucket_policy", {})
        assert storage.ensure_bucket(engine.ctx) == bucket()
        s3.assert_no_pending_responses()
    assert len(clock.sleeps) == 5  # once each: CreateBucket and the four settings
    put = [c for c in aws.calls if c.operation == "PutBucketPolicy"][-1]
    policy = json.loads(put.params["Policy"])
    assert [{k: v for k, v in s.items() if k != "Sid"} for s in policy["Statement"]] == [tls_statement()]


def test_a_bucket_that_has_it_all_makes_no_mutating_call_on_real_aws(tmp_path: Path) -> None:
    from steps import storage
    engine = storage_engine(tmp_path, FakeClock())
    aws = engine.ctx.aws
    with Stubber(aws.client("sts")) as sts, Stubber(aws.client("s3")) as s3:
        sts.add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/me"})
        s3.add_response("head_bucket", {})
        s3.add_response("get_public_access_block", {"PublicAccessBlockConfiguration": storage.PUBLIC_ACCESS_BLOCK})
        s3.add_response("get_bucket_encryption", {"ServerSideEncryptionConfiguration": storage.ENCRYPTION})
        s3.add_response("get_bucket_versioning", {"Status": "Enabled"})
        # Another statement of the owner's is kept; ours is there (with whatever Sid AWS returns).
        theirs = {"Sid": "Theirs", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
                  "Resource": f"arn:aws:s3:::{bucket()}"}
        s3.add_response("get_bucket_policy", {"Policy": json.dumps(
            {"Version": "2012-10-17", "Statement": [theirs, {"Sid": "Anything", **tls_statement()}]})})
        storage.ensure_bucket(engine.ctx)
        s3.assert_no_pending_responses()
    assert aws.mutating_calls() == []


def test_status_on_real_aws_reports_the_tls_policy_missing_as_drift(built: Path) -> None:
    # The emulator's bucket has no policy: moto's server would refuse every request under it.
    with pytest.raises(boto3.client("s3").exceptions.ClientError, match="NoSuchBucketPolicy"):
        boto3.client("s3").get_bucket_policy(Bucket=bucket())
    engine = make_engine(built)
    assert engine.check(engine.parts[0]).drift == []  # the emulator: no policy is expected
    engine = make_engine(built)
    engine.ctx.aws.emulator = False
    drift = engine.check(engine.parts[0]).drift
    assert any("TLS" in line and bucket() in line for line in drift), drift


def test_the_tls_policy_document_denies_every_request_without_tls() -> None:
    from steps import storage
    document = storage.tls_only_policy(bucket(), "aws")
    statements = document["Statement"]
    assert len(statements) == 1
    assert {k: v for k, v in statements[0].items() if k != "Sid"} == tls_statement()
