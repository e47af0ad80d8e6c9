"""Part 1 — storage and identity.

The guide: create an S3 bucket for the code, an IAM role for EC2 so instances
can use Session Manager (no SSH keys) and read the code, and upload the code.
Here the bucket is private, encrypted and versioned, and the role may read
that bucket only.
"""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from threetier import artifacts
from threetier.aws import AwsError, Look
from threetier.engine import GONE, Check, Ctx

NUMBER = 1
NAME = "storage"
TITLE = "storage and identity"
NEEDS: tuple[int, ...] = ()

SSM_MANAGED_POLICY = "AmazonSSMManagedInstanceCore"
CODE_POLICY_NAME = "read-code-bucket"
# Prefixes this part owns in the bucket; nginx.conf at the root is Part 6's.
CODE_PREFIXES = tuple(f"{tier}/" for tier in artifacts.TIERS)

EC2_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]}


# -- names -----------------------------------------------------------------------
def bucket_name(ctx: Ctx) -> str:
    return bucket_name_for(ctx.stack, ctx.aws.account, ctx.aws.region)


def bucket_name_for(stack: str, account: str, region: str) -> str:
    # Bucket names are global: stack + account + region makes it unique and findable again.
    return f"{stack}-code-{account}-{region}"


def role_name(ctx: Ctx) -> str:
    return role_name_for(ctx.stack)


def role_name_for(stack: str) -> str:
    return f"{stack}-ec2-role"


def instance_profile_name(ctx: Ctx) -> str:
    return instance_profile_name_for(ctx.stack)


def instance_profile_name_for(stack: str) -> str:
    return f"{stack}-ec2-profile"


def code_read_policy(bucket: str, partition: str) -> dict[str, Any]:
    arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListCodeBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn},
            {"Sid": "ReadCode", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{arn}/*"},
        ],
    }


# -- what the finders read (the inventory) ---------------------------------------
BUCKET_GONE = ("404", "NoSuchBucket", "NotFound")


def bucket_look(ctx: Ctx, operation: str, **params: Any) -> Look:
    missing_ok = {"head_bucket": BUCKET_GONE,
                  "get_public_access_block": ("NoSuchPublicAccessBlockConfiguration",),
                  "get_bucket_encryption": ("ServerSideEncryptionConfigurationNotFoundError",)}.get(operation, ())
    return Look("s3", operation, {"Bucket": bucket_name(ctx), "ExpectedBucketOwner": ctx.aws.account, **params},
                missing_ok=missing_ok)


def code_look(ctx: Ctx, prefix: str) -> Look:
    return Look("s3", "list_objects_v2", {"Bucket": bucket_name(ctx), "Prefix": prefix}, key="Contents",
                missing_ok=("NoSuchBucket",))


def iam_look(operation: str, **params: Any) -> Look:
    key = {"list_attached_role_policies": "AttachedPolicies"}.get(operation)
    return Look("iam", operation, params, key=key, missing_ok=("NoSuchEntity",))


def looks(ctx: Ctx) -> Iterator[Look]:
    bucket_settings = ("get_public_access_block", "get_bucket_encryption", "get_bucket_versioning")
    yield bucket_look(ctx, "head_bucket")
    if ctx.aws.has(bucket_look(ctx, "head_bucket")) and ctx.aws.peek(bucket_look(ctx, "head_bucket")) is not None:
        yield from (bucket_look(ctx, operation) for operation in bucket_settings)
        yield from (code_look(ctx, prefix) for prefix in CODE_PREFIXES)
    role = role_name(ctx)
    yield iam_look("get_role", RoleName=role)
    yield iam_look("list_attached_role_policies", RoleName=role)
    yield iam_look("get_role_policy", RoleName=role, PolicyName=CODE_POLICY_NAME)
    yield iam_look("get_instance_profile", InstanceProfileName=instance_profile_name(ctx))


# -- apply -----------------------------------------------------------------------
def start(ctx: Ctx) -> None:
    bucket = ensure_bucket(ctx)
    ensure_code_uploaded(ctx, bucket)
    role = ensure_role(ctx, bucket)
    ensure_instance_profile(ctx, role)


def finish(ctx: Ctx) -> None:
    """Nothing in this part is slow; Part 4 waits for the profile to be usable by RunInstances."""


def ensure_bucket(ctx: Ctx) -> str:
    aws, name = ctx.aws, bucket_name(ctx)
    resource = f"bucket {name}"
    owner: dict[str, Any] = {"ExpectedBucketOwner": aws.account}
    exists = aws.look(bucket_look(ctx, "head_bucket"), resource=resource)
    if exists is None:
        configuration: dict[str, Any] = {"Tags": ctx.tags("code-bucket")}
        if aws.region != "us-east-1":  # us-east-1 refuses its own name as a LocationConstraint
            configuration["LocationConstraint"] = aws.region
        aws.call("s3", "create_bucket", resource=resource, Bucket=name, CreateBucketConfiguration=configuration,
                 ObjectOwnership="BucketOwnerEnforced", missing_ok=("BucketAlreadyOwnedByYou",))
        ctx.record("created", "bucket", name)

    current = aws.look(bucket_look(ctx, "get_public_access_block"), resource=resource)
    if (current or {}).get("PublicAccessBlockConfiguration") != PUBLIC_ACCESS_BLOCK:
        aws.call("s3", "put_public_access_block", resource=resource, Bucket=name,
                 PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK, **owner)
        ctx.record("changed", "bucket public access block", name)

    current = aws.look(bucket_look(ctx, "get_bucket_encryption"), resource=resource)
    rules = (current or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if not any(r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules):
        aws.call("s3", "put_bucket_encryption", resource=resource, Bucket=name,
                 ServerSideEncryptionConfiguration=ENCRYPTION, **owner)
        ctx.record("changed", "bucket encryption", name)

    versioning = aws.look(bucket_look(ctx, "get_bucket_versioning"), resource=resource)
    if versioning.get("Status") != "Enabled":
        aws.call("s3", "put_bucket_versioning", resource=resource, Bucket=name,
                 VersioningConfiguration={"Status": "Enabled"}, **owner)
        ctx.record("changed", "bucket versioning", name)

    ctx.resources["bucket"] = name
    return name


def ensure_code_uploaded(ctx: Ctx, bucket: str) -> None:
    """Upload app-tier/ and web-tier/; only what changed, and remove what is gone."""
    aws = ctx.aws
    files = artifacts.application_files()
    outdated, stale = code_diff(ctx, bucket, files)
    for key in outdated:
        aws.call("s3", "put_object", resource=f"object s3://{bucket}/{key}", Bucket=bucket, Key=key, Body=files[key],
                 ContentMD5=_content_md5(files[key]), ExpectedBucketOwner=aws.account)
    for chunk in _chunks(stale, 1000):
        aws.call("s3", "delete_objects", resource=f"bucket {bucket}", Bucket=bucket,
                 Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})
    if outdated or stale:
        ctx.record("changed", "application code", f"s3://{bucket}/", f"{len(outdated)} uploaded, {len(stale)} removed")
    ctx.resources["code_objects"] = len(files)


def code_diff(ctx: Ctx, bucket: str, files: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """(keys to upload: missing or changed, keys in the bucket the package no longer has)."""
    present: dict[str, str] = {}
    for prefix in CODE_PREFIXES:
        for obj in ctx.aws.look(code_look(ctx, prefix), resource=f"bucket {bucket}") or []:
            present[obj["Key"]] = obj["ETag"].strip('"')
    # With SSE-S3 and a single-part upload, the ETag is the MD5 of the content.
    outdated = [key for key, body in files.items() if present.get(key) != hashlib.md5(body).hexdigest()]
    return outdated, sorted(set(present) - set(files))


def ensure_role(ctx: Ctx, bucket: str) -> str:
    aws, name = ctx.aws, role_name(ctx)
    resource = f"IAM role {name}"
    found = aws.look(iam_look("get_role", RoleName=name), resource=resource)
    if found is None:
        found = aws.call("iam", "create_role", resource=resource, RoleName=name,
                         AssumeRolePolicyDocument=json.dumps(EC2_TRUST_POLICY),
                         Description=f"threetier {ctx.stack}: EC2 instances (Session Manager, read the code bucket)",
                         Tags=ctx.tags("ec2-role"))
        ctx.record("created", "IAM role", name)
    role_arn = found["Role"]["Arn"]

    policy_arn = f"arn:{aws.partition}:iam::aws:policy/{SSM_MANAGED_POLICY}"
    attached = {p["PolicyArn"] for p in aws.look(iam_look("list_attached_role_policies", RoleName=name),
                                                 resource=resource) or []}
    if policy_arn not in attached:
        aws.call("iam", "attach_role_policy", resource=resource, RoleName=name, PolicyArn=policy_arn)
        ctx.record("changed", "IAM role policy", f"{name}/{SSM_MANAGED_POLICY}")

    ensure_inline_policy(ctx, name, CODE_POLICY_NAME, code_read_policy(bucket, aws.partition))
    ctx.resources["role"] = name
    ctx.resources["role_arn"] = role_arn
    return name


def ensure_inline_policy(ctx: Ctx, role: str, policy_name: str, document: dict[str, Any]) -> None:
    """Put an inline policy on the role unless it is already exactly this document."""
    resource = f"IAM role {role} policy {policy_name}"
    current = ctx.aws.look(iam_look("get_role_policy", RoleName=role, PolicyName=policy_name), resource=resource)
    if current is not None and policy_document(current["PolicyDocument"]) == document:
        return
    ctx.aws.call("iam", "put_role_policy", resource=resource, RoleName=role, PolicyName=policy_name,
                 PolicyDocument=json.dumps(document))
    ctx.record("changed", "IAM inline policy", f"{role}/{policy_name}")


def ensure_instance_profile(ctx: Ctx, role: str) -> None:
    aws, name = ctx.aws, instance_profile_name(ctx)
    resource = f"instance profile {name}"
    found = aws.look(iam_look("get_instance_profile", InstanceProfileName=name), resource=resource)
    if found is None:
        found = aws.call("iam", "create_instance_profile", resource=resource, InstanceProfileName=name,
                         Tags=ctx.tags("ec2-profile"))
        ctx.record("created", "instance profile", name)
    profile = found["InstanceProfile"]
    roles = {r["RoleName"] for r in profile.get("Roles", [])}
    if role not in roles:
        for other in sorted(roles):  # a profile holds one role
            aws.call("iam", "remove_role_from_instance_profile", resource=resource,
                     InstanceProfileName=name, RoleName=other)
        aws.call("iam", "add_role_to_instance_profile", resource=resource, InstanceProfileName=name, RoleName=role)
        ctx.record("changed", "instance profile role", f"{name}/{role}")
    ctx.resources["instance_profile"] = name
    ctx.resources["instance_profile_arn"] = profile["Arn"]


# -- check -----------------------------------------------------------------------
def check(ctx: Ctx) -> Check:
    """What is live, compared with what `start` would make; no mutating call."""
    aws, result = ctx.aws, Check()
    bucket = bucket_name(ctx)
    exists = aws.look(bucket_look(ctx, "head_bucket"), resource=f"bucket {bucket}") is not None
    if result.found(f"bucket {bucket}", exists):
        ctx.resources["bucket"] = bucket
        versioning = aws.look(bucket_look(ctx, "get_bucket_versioning"), resource=f"bucket {bucket}")
        if versioning.get("Status") != "Enabled":
            result.drift.append(f"bucket {bucket}: versioning is {versioning.get('Status', 'off')}")
        block = aws.look(bucket_look(ctx, "get_public_access_block"), resource=f"bucket {bucket}")
        if (block or {}).get("PublicAccessBlockConfiguration") != PUBLIC_ACCESS_BLOCK:
            result.drift.append(f"bucket {bucket}: public access is not fully blocked")
        if aws.look(bucket_look(ctx, "get_bucket_encryption"), resource=f"bucket {bucket}") is None:
            result.drift.append(f"bucket {bucket}: no default encryption")
        outdated, stale = code_diff(ctx, bucket, artifacts.application_files())
        if outdated or stale:
            result.drift.append(f"bucket {bucket}: application code: {len(outdated)} files missing or changed"
                                f"{f', {len(stale)} left over' if stale else ''} (`up` uploads them)")

    role = role_name(ctx)
    found = aws.look(iam_look("get_role", RoleName=role), resource=f"IAM role {role}")
    if result.found(f"IAM role {role}", found is not None):
        ctx.resources["role"] = role
        ctx.resources["role_arn"] = found["Role"]["Arn"]
        attached = {p["PolicyName"] for p in aws.look(iam_look("list_attached_role_policies", RoleName=role),
                                                      resource=f"IAM role {role}") or []}
        if SSM_MANAGED_POLICY not in attached:
            result.drift.append(f"IAM role {role}: {SSM_MANAGED_POLICY} is not attached")
        inline = aws.look(iam_look("get_role_policy", RoleName=role, PolicyName=CODE_POLICY_NAME),
                          resource=f"IAM role {role}")
        if inline is None or policy_document(inline["PolicyDocument"]) != code_read_policy(bucket, aws.partition):
            result.drift.append(f"IAM role {role}: policy {CODE_POLICY_NAME} is missing or changed")

    profile = instance_profile_name(ctx)
    found = aws.look(iam_look("get_instance_profile", InstanceProfileName=profile),
                     resource=f"instance profile {profile}")
    if result.found(f"instance profile {profile}", found is not None):
        ctx.resources["instance_profile"] = profile
        ctx.resources["instance_profile_arn"] = found["InstanceProfile"]["Arn"]
        if role not in {r["RoleName"] for r in found["InstanceProfile"].get("Roles", [])}:
            result.drift.append(f"instance profile {profile}: does not hold role {role}")
    return result


# -- destroy ---------------------------------------------------------------------
def destroy(ctx: Ctx) -> None:
    """Profile before role (a role in a profile cannot be deleted), bucket emptied of every version.
    Last of all: instances (builders, Auto Scaling groups) run with the profile and read the bucket."""
    for number in (7, 6, 5, 4, 3):
        ctx.need(number, GONE)
    delete_instance_profile(ctx)
    delete_role(ctx)
    delete_bucket(ctx)


def delete_instance_profile(ctx: Ctx) -> None:
    aws, name = ctx.aws, instance_profile_name(ctx)
    resource = f"instance profile {name}"
    found = aws.call("iam", "get_instance_profile", resource=resource, InstanceProfileName=name,
                     missing_ok=("NoSuchEntity",))
    if found is None:
        return
    for role in found["InstanceProfile"].get("Roles", []):
        aws.call("iam", "remove_role_from_instance_profile", resource=resource, InstanceProfileName=name,
                 RoleName=role["RoleName"], missing_ok=("NoSuchEntity",))
    aws.call("iam", "delete_instance_profile", resource=resource, InstanceProfileName=name,
             missing_ok=("NoSuchEntity",))
    ctx.record("deleted", "instance profile", name)


def delete_role(ctx: Ctx) -> None:
    aws, name = ctx.aws, role_name(ctx)
    resource = f"IAM role {name}"
    if aws.call("iam", "get_role", resource=resource, RoleName=name, missing_ok=("NoSuchEntity",)) is None:
        return
    # A role is deletable only once no profile holds it and no policy is attached or inline.
    for profile in aws.items("iam", "list_instance_profiles_for_role", "InstanceProfiles", resource=resource,
                             RoleName=name):
        aws.call("iam", "remove_role_from_instance_profile", resource=resource,
                 InstanceProfileName=profile["InstanceProfileName"], RoleName=name, missing_ok=("NoSuchEntity",))
    for policy in aws.items("iam", "list_attached_role_policies", "AttachedPolicies", resource=resource, RoleName=name):
        aws.call("iam", "detach_role_policy", resource=resource, RoleName=name, PolicyArn=policy["PolicyArn"],
                 missing_ok=("NoSuchEntity",))
    for policy_name in aws.items("iam", "list_role_policies", "PolicyNames", resource=resource, RoleName=name):
        aws.call("iam", "delete_role_policy", resource=resource, RoleName=name, PolicyName=policy_name,
                 missing_ok=("NoSuchEntity",))
    aws.call("iam", "delete_role", resource=resource, RoleName=name, missing_ok=("NoSuchEntity",))
    ctx.record("deleted", "IAM role", name)


def delete_bucket(ctx: Ctx) -> None:
    aws, name = ctx.aws, bucket_name(ctx)
    resource = f"bucket {name}"
    if aws.call("s3", "head_bucket", resource=resource, Bucket=name, ExpectedBucketOwner=aws.account,
                missing_ok=("404", "NoSuchBucket", "NotFound")) is None:
        return
    # A versioned bucket is empty only when every version and delete marker is gone.
    doomed: list[dict[str, str]] = []
    for page in aws.pages("s3", "list_object_versions", resource=resource, Bucket=name):
        for key in ("Versions", "DeleteMarkers"):
            doomed.extend({"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get(key, []))
    for chunk in _chunks(doomed, 1000):
        result = aws.call("s3", "delete_objects", resource=resource, Bucket=name,
                          Delete={"Objects": chunk, "Quiet": True})
        errors = result.get("Errors", [])
        if errors:
            first = errors[0]
            raise AwsError(aws.part, "empty", resource, first.get("Code", "Unknown"),
                           f"{first.get('Key')}: {first.get('Message', '')}")
    aws.call("s3", "delete_bucket", resource=resource, Bucket=name, missing_ok=("NoSuchBucket",))
    ctx.record("deleted", "bucket", name, f"{len(doomed)} object versions")


# -- helpers ---------------------------------------------------------------------
def _content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def policy_document(value: Any) -> Any:
    """IAM returns policy documents URL-encoded strings (boto3 decodes them to dicts)."""
    if isinstance(value, str):
        return json.loads(unquote(value))
    return value


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
