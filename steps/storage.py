"""Part 1 — storage and identity.

The guide: create an S3 bucket for the code, an IAM role for EC2 so instances
can use Session Manager (no SSH keys) and read the code, and upload the code.
Here the bucket is private, encrypted, versioned and (on real AWS) refuses
requests without TLS; each tier has its own role and instance profile, named
with the region (IAM names are account-wide, the stack is per region): the app
tier's reads `app-tier/*`, the web tier's `web-tier/*` and `nginx.conf`,
neither writes the bucket, and only the app tier's may read the database's
secret (Part 3 adds that, once it knows the secret).

The tiers' log groups are here too, with the roles that write them (the CloudWatch agent of
each tier's instances, builders included, ships the app's and nginx's logs): created by the
stack with config.yaml's retention, each role allowed to write its own tier's groups only.
"""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from steps import alarms, log_groups
from threetier import artifacts
from threetier.aws import Aws, AwsError, Look, tags
from threetier.engine import Check, Ctx

NUMBER = 1
NAME = "storage"
TITLE = "storage and identity"

SSM_MANAGED_POLICY = "AmazonSSMManagedInstanceCore"
CODE_POLICY_NAME = "read-code-bucket"
# One role and instance profile per tier; what each reads of the bucket (its builder's user data
# fetches exactly this: the tier's prefix, and the web tier nginx.conf at the root).
TIERS = ("app", "web")
TIER_READS = {"app": ("app-tier/*",), "web": ("web-tier/*", "nginx.conf")}
# Part 3 puts it on the app tier's role (it knows the secret); the shared role of before had it too.
SECRET_POLICY_NAME = "read-db-secret"
# The log groups each tier's CloudWatch agent writes (its configuration, threetier.artifacts, names
# the same), and what writing needs: never CreateLogGroup (a group the stack deleted stays deleted,
# not remade untagged and kept forever) nor PutRetentionPolicy (retention is config.yaml's).
LOGS_POLICY_NAME = "write-logs"
TIER_LOG_GROUPS = {"app": (log_groups.APP,), "web": (log_groups.NGINX_ACCESS, log_groups.NGINX_ERROR)}
LOG_WRITES = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")
TLS_ONLY_SID = "DenyRequestsWithoutTLS"
# Right after CreateBucket (or a delete of the same name) S3 may answer 409 OperationAborted,
# "a conflicting conditional operation is in progress": retried; botocore's retries do not.
BUCKET_BUSY = ("OperationAborted",)
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


# IAM names are account-wide, the stack is per region: each region's stack has its own roles and
# profiles, one of each per tier (the web tier, in public subnets, must not read the database's
# secret). IAM's limits: 64 characters for a role, 128 for an instance profile.
ROLE_NAME_LIMIT = 64
PROFILE_NAME_LIMIT = 128


def _iam_name(stack: str, region: str, suffix: str, limit: int) -> str:
    name = f"{stack}-{region}-{suffix}"
    if len(name) <= limit:
        return name  # with every region AWS has: 48 characters at most (21 + 1 + 14 + 1 + 11)
    # A region name config accepts but too long for IAM: a digest of it, still deterministic.
    return f"{stack}-{hashlib.sha256(region.encode()).hexdigest()[:12]}-{suffix}"


def role_name(ctx: Ctx, tier: str) -> str:
    return role_name_for(ctx.stack, ctx.aws.region, tier)


def role_name_for(stack: str, region: str, tier: str) -> str:
    return _iam_name(stack, region, f"{tier}-role", ROLE_NAME_LIMIT)


def instance_profile_name(ctx: Ctx, tier: str) -> str:
    return instance_profile_name_for(ctx.stack, ctx.aws.region, tier)


def instance_profile_name_for(stack: str, region: str, tier: str) -> str:
    return _iam_name(stack, region, f"{tier}-profile", PROFILE_NAME_LIMIT)


def profile_arn_key(tier: str) -> str:
    """Where Part 1's resources hold the ARN of the tier's instance profile (builders, templates)."""
    return f"{tier}_instance_profile_arn"


# Before IAM names carried the region, one role and profile served both tiers of a stack in every
# region. `up` leaves them (instances of the stack may still run with them); `down` deletes them
# when they are this region's (see legacy_iam).
def legacy_role_name_for(stack: str) -> str:
    return f"{stack}-ec2-role"


def legacy_instance_profile_name_for(stack: str) -> str:
    return f"{stack}-ec2-profile"


def code_read_policy(bucket: str, partition: str, tier: str) -> dict[str, Any]:
    """The tier reads its own keys of the code bucket, nothing else, and writes nothing.
    ListBucket (key names only) is what the bootstraps' HeadBucket and recursive copy need."""
    arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListCodeBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn},
            {"Sid": "ReadCode", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": [f"{arn}/{key}" for key in TIER_READS[tier]]},
        ],
    }


def logs_write_policy(ctx: Ctx, tier: str) -> dict[str, Any]:
    """The tier's agent writes streams of its own groups (`<group ARN>` and `:*`, its streams), nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "WriteTierLogs", "Effect": "Allow", "Action": list(LOG_WRITES),
             "Resource": [arn for what in TIER_LOG_GROUPS[tier]
                          for arn in (log_groups.arn(ctx, what), f"{log_groups.arn(ctx, what)}:*")]},
        ],
    }


def tier_log_groups() -> tuple[str, ...]:
    """Every group this part owns, app first."""
    return tuple(what for tier in TIERS for what in TIER_LOG_GROUPS[tier])


def tls_only_statement(bucket: str, partition: str) -> dict[str, Any]:
    arn = f"arn:{partition}:s3:::{bucket}"
    return {"Sid": TLS_ONLY_SID, "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def tls_only_policy(bucket: str, partition: str) -> dict[str, Any]:
    """The bucket refuses every request that does not come over TLS."""
    return {"Version": "2012-10-17", "Statement": [tls_only_statement(bucket, partition)]}


def has_tls_only(policy: Any, bucket: str, partition: str) -> bool:
    """Whether a bucket policy (as GetBucketPolicy returns it) holds the TLS-only statement, whatever its Sid."""
    if not policy:
        return False
    statements = json.loads(policy).get("Statement", []) if isinstance(policy, str) else policy.get("Statement", [])
    wanted = _without_sid(tls_only_statement(bucket, partition))
    return any(_without_sid(s) == wanted for s in ([statements] if isinstance(statements, dict) else statements))


def _without_sid(statement: dict[str, Any]) -> dict[str, Any]:
    found = {k: v for k, v in statement.items() if k != "Sid"}
    for key in ("Action", "Resource"):  # a list in any order, or one string, means the same
        if isinstance(found.get(key), list):
            found[key] = sorted(found[key])
        elif isinstance(found.get(key), str):
            found[key] = [found[key]]
    return found


# -- what the finders read (the inventory) ---------------------------------------
BUCKET_GONE = ("404", "NoSuchBucket", "NotFound")


def bucket_look(ctx: Ctx, operation: str, **params: Any) -> Look:
    missing_ok = {"head_bucket": BUCKET_GONE,
                  "get_public_access_block": ("NoSuchPublicAccessBlockConfiguration",),
                  "get_bucket_encryption": ("ServerSideEncryptionConfigurationNotFoundError",),
                  "get_bucket_policy": ("NoSuchBucketPolicy",)}.get(operation, ())
    return Look("s3", operation, {"Bucket": bucket_name(ctx), "ExpectedBucketOwner": ctx.aws.account, **params},
                missing_ok=missing_ok)


def code_look(ctx: Ctx, prefix: str) -> Look:
    return Look("s3", "list_objects_v2", {"Bucket": bucket_name(ctx), "Prefix": prefix}, key="Contents",
                missing_ok=("NoSuchBucket",))


def iam_look(operation: str, **params: Any) -> Look:
    key = {"list_attached_role_policies": "AttachedPolicies"}.get(operation)
    return Look("iam", operation, params, key=key, missing_ok=("NoSuchEntity",))


def wants_tls_policy(ctx: Ctx) -> bool:
    # The TLS-only bucket policy is put on real AWS only: moto's server speaks plain HTTP and
    # refuses every request under it (moto in-process too), so on an emulator it is skipped.
    return not ctx.aws.emulator


def looks(ctx: Ctx) -> Iterator[Look]:
    bucket_settings = ["get_public_access_block", "get_bucket_encryption", "get_bucket_versioning"]
    if wants_tls_policy(ctx):
        bucket_settings.append("get_bucket_policy")
    yield bucket_look(ctx, "head_bucket")
    if ctx.aws.has(bucket_look(ctx, "head_bucket")) and ctx.aws.peek(bucket_look(ctx, "head_bucket")) is not None:
        yield from (bucket_look(ctx, operation) for operation in bucket_settings)
        yield from (code_look(ctx, prefix) for prefix in CODE_PREFIXES)
    for tier in TIERS:
        role = role_name(ctx, tier)
        yield iam_look("get_role", RoleName=role)
        yield iam_look("list_attached_role_policies", RoleName=role)
        yield iam_look("get_role_policy", RoleName=role, PolicyName=CODE_POLICY_NAME)
        yield iam_look("get_role_policy", RoleName=role, PolicyName=LOGS_POLICY_NAME)
        yield iam_look("get_instance_profile", InstanceProfileName=instance_profile_name(ctx, tier))
    yield log_groups.groups_look(ctx)
    yield from alarms.topic_looks(ctx)


# -- apply -----------------------------------------------------------------------
def start(ctx: Ctx) -> None:
    bucket = ensure_bucket(ctx)
    ensure_code_uploaded(ctx, bucket)
    # Before any builder boots (Parts 4 and 6 need this part done): their agents write them.
    for what in tier_log_groups():
        log_groups.ensure(ctx, what)
    for tier in TIERS:
        role = ensure_role(ctx, bucket, tier)
        ensure_instance_profile(ctx, role, tier)
    # The alarms of Parts 3, 5 and 7 notify it (monitoring.email).
    alarms.ensure_topic(ctx)


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
        # OperationAborted here: a bucket of this name is still being deleted (`down` just ran).
        aws.call("s3", "create_bucket", resource=resource, Bucket=name, CreateBucketConfiguration=configuration,
                 ObjectOwnership="BucketOwnerEnforced", missing_ok=("BucketAlreadyOwnedByYou",),
                 retry_codes=BUCKET_BUSY)
        ctx.record("created", "bucket", name)

    current = aws.look(bucket_look(ctx, "get_public_access_block"), resource=resource)
    if (current or {}).get("PublicAccessBlockConfiguration") != PUBLIC_ACCESS_BLOCK:
        aws.call("s3", "put_public_access_block", resource=resource, Bucket=name,
                 PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK, retry_codes=BUCKET_BUSY, **owner)
        ctx.record("changed", "bucket public access block", name)

    current = aws.look(bucket_look(ctx, "get_bucket_encryption"), resource=resource)
    rules = (current or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if not any(r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules):
        aws.call("s3", "put_bucket_encryption", resource=resource, Bucket=name,
                 ServerSideEncryptionConfiguration=ENCRYPTION, retry_codes=BUCKET_BUSY, **owner)
        ctx.record("changed", "bucket encryption", name)

    versioning = aws.look(bucket_look(ctx, "get_bucket_versioning"), resource=resource)
    if versioning.get("Status") != "Enabled":
        aws.call("s3", "put_bucket_versioning", resource=resource, Bucket=name,
                 VersioningConfiguration={"Status": "Enabled"}, retry_codes=BUCKET_BUSY, **owner)
        ctx.record("changed", "bucket versioning", name)

    if wants_tls_policy(ctx):
        ensure_tls_only(ctx, name)
    ctx.resources["bucket"] = name
    return name


def ensure_tls_only(ctx: Ctx, name: str) -> None:
    """The bucket policy holds the TLS-only statement; the owner's other statements are kept."""
    aws = ctx.aws
    current = aws.look(bucket_look(ctx, "get_bucket_policy"), resource=f"bucket {name}")
    if has_tls_only((current or {}).get("Policy"), name, aws.partition):
        return
    document: dict[str, Any] = json.loads(current["Policy"]) if current and current.get("Policy") \
        else {"Version": "2012-10-17"}
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    document["Statement"] = [s for s in statements if s.get("Sid") != TLS_ONLY_SID] + \
        [tls_only_statement(name, aws.partition)]
    aws.call("s3", "put_bucket_policy", resource=f"bucket {name}", Bucket=name, Policy=json.dumps(document),
             ExpectedBucketOwner=aws.account, retry_codes=BUCKET_BUSY)
    ctx.record("changed", "bucket policy", name, "deny requests without TLS")


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


def _publish(ctx: Ctx, tier: str, key: str, value: str) -> None:
    """Part 1's resources: `<tier>_<key>` for each tier; the keys without a tier (`role`, `role_arn`,
    `instance_profile`, `instance_profile_arn`, public in `status --json` since there was one role)
    name the app tier's, the one with what that single role had."""
    ctx.resources[f"{tier}_{key}"] = value
    if tier == "app":
        ctx.resources[key] = value


def find_or_create_role(ctx: Ctx, name: str, trust: dict[str, Any], description: str) -> dict[str, Any]:
    """GetRole's answer for the role, created (tagged, with this trust policy) when it is missing."""
    resource = f"IAM role {name}"
    found = ctx.aws.look(iam_look("get_role", RoleName=name), resource=resource)
    if found is None:
        found = ctx.aws.call("iam", "create_role", resource=resource, RoleName=name,
                             AssumeRolePolicyDocument=json.dumps(trust), Description=description,
                             Tags=tags(ctx.stack, ctx.part_number, name))
        ctx.record("created", "IAM role", name)
    return found


def ensure_role(ctx: Ctx, bucket: str, tier: str) -> str:
    aws, name = ctx.aws, role_name(ctx, tier)
    resource = f"IAM role {name}"
    found = find_or_create_role(ctx, name, EC2_TRUST_POLICY, f"threetier {ctx.stack} in {aws.region}: {tier} tier "
                                                             f"instances (Session Manager, read their code in the bucket)")
    role_arn = found["Role"]["Arn"]

    policy_arn = f"arn:{aws.partition}:iam::aws:policy/{SSM_MANAGED_POLICY}"
    attached = {p["PolicyArn"] for p in aws.look(iam_look("list_attached_role_policies", RoleName=name),
                                                 resource=resource) or []}
    if policy_arn not in attached:
        aws.call("iam", "attach_role_policy", resource=resource, RoleName=name, PolicyArn=policy_arn)
        ctx.record("changed", "IAM role policy", f"{name}/{SSM_MANAGED_POLICY}")

    ensure_inline_policy(ctx, name, CODE_POLICY_NAME, code_read_policy(bucket, aws.partition, tier))
    ensure_inline_policy(ctx, name, LOGS_POLICY_NAME, logs_write_policy(ctx, tier))
    _publish(ctx, tier, "role", name)
    _publish(ctx, tier, "role_arn", role_arn)
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


def ensure_instance_profile(ctx: Ctx, role: str, tier: str) -> None:
    aws, name = ctx.aws, instance_profile_name(ctx, tier)
    resource = f"instance profile {name}"
    found = aws.look(iam_look("get_instance_profile", InstanceProfileName=name), resource=resource)
    if found is None:
        found = aws.call("iam", "create_instance_profile", resource=resource, InstanceProfileName=name,
                         Tags=tags(ctx.stack, ctx.part_number, name))
        ctx.record("created", "instance profile", name)
    profile = found["InstanceProfile"]
    roles = {r["RoleName"] for r in profile.get("Roles", [])}
    if role not in roles:
        for other in sorted(roles):  # a profile holds one role
            aws.call("iam", "remove_role_from_instance_profile", resource=resource,
                     InstanceProfileName=name, RoleName=other)
        aws.call("iam", "add_role_to_instance_profile", resource=resource, InstanceProfileName=name, RoleName=role)
        ctx.record("changed", "instance profile role", f"{name}/{role}")
    _publish(ctx, tier, "instance_profile", name)
    _publish(ctx, tier, "instance_profile_arn", profile["Arn"])


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
        if wants_tls_policy(ctx):
            policy = aws.look(bucket_look(ctx, "get_bucket_policy"), resource=f"bucket {bucket}")
            if not has_tls_only((policy or {}).get("Policy"), bucket, aws.partition):
                result.drift.append(f"bucket {bucket}: its policy does not deny requests without TLS (`up` puts it)")
        outdated, stale = code_diff(ctx, bucket, artifacts.application_files())
        if outdated or stale:
            result.drift.append(f"bucket {bucket}: application code: {len(outdated)} files missing or changed"
                                f"{f', {len(stale)} left over' if stale else ''} (`up` uploads them)")
    for what in tier_log_groups():
        log_groups.check(ctx, what, result)
    for tier in TIERS:
        check_tier_identity(ctx, result, bucket, tier)
    alarms.check_topic(ctx, result)
    return result


def check_tier_identity(ctx: Ctx, result: Check, bucket: str, tier: str) -> None:
    aws, role = ctx.aws, role_name(ctx, tier)
    found = aws.look(iam_look("get_role", RoleName=role), resource=f"IAM role {role}")
    if result.found(f"IAM role {role}", found is not None):
        _publish(ctx, tier, "role", role)
        _publish(ctx, tier, "role_arn", found["Role"]["Arn"])
        attached = {p["PolicyName"] for p in aws.look(iam_look("list_attached_role_policies", RoleName=role),
                                                      resource=f"IAM role {role}") or []}
        if SSM_MANAGED_POLICY not in attached:
            result.drift.append(f"IAM role {role}: {SSM_MANAGED_POLICY} is not attached")
        inline = aws.look(iam_look("get_role_policy", RoleName=role, PolicyName=CODE_POLICY_NAME),
                          resource=f"IAM role {role}")
        if inline is None or policy_document(inline["PolicyDocument"]) != code_read_policy(bucket, aws.partition, tier):
            result.drift.append(f"IAM role {role}: policy {CODE_POLICY_NAME} is missing or changed")
        logs = aws.look(iam_look("get_role_policy", RoleName=role, PolicyName=LOGS_POLICY_NAME),
                        resource=f"IAM role {role}")
        if logs is None or policy_document(logs["PolicyDocument"]) != logs_write_policy(ctx, tier):
            result.drift.append(f"IAM role {role}: policy {LOGS_POLICY_NAME} is missing or changed")

    profile = instance_profile_name(ctx, tier)
    found = aws.look(iam_look("get_instance_profile", InstanceProfileName=profile),
                     resource=f"instance profile {profile}")
    if result.found(f"instance profile {profile}", found is not None):
        _publish(ctx, tier, "instance_profile", profile)
        _publish(ctx, tier, "instance_profile_arn", found["InstanceProfile"]["Arn"])
        if role not in {r["RoleName"] for r in found["InstanceProfile"].get("Roles", [])}:
            result.drift.append(f"instance profile {profile}: does not hold role {role}")


# -- the role and profile of before (one for both tiers, named without the region) -------------
def legacy_iam(aws: Aws, stack: str) -> tuple[str | None, str | None]:
    """(role, instance profile) of before, those that exist and are this region's stack's; None
    for each that is not there or is another region's. The role was shared by the stack in every
    region and rewritten by each `up`: it is another region's when its policies name that region's
    bucket or secret (the last `up` to write it was there, so instances there run with it)."""
    role, profile = legacy_role_name_for(stack), legacy_instance_profile_name_for(stack)
    role_here: str | None = None
    if aws.call("iam", "get_role", resource=f"IAM role {role}", RoleName=role, missing_ok=("NoSuchEntity",)):
        role_here = role if _legacy_role_is_here(aws, stack, role) else None
    found = aws.call("iam", "get_instance_profile", resource=f"instance profile {profile}",
                     InstanceProfileName=profile, missing_ok=("NoSuchEntity",))
    profile_here: str | None = None
    if found is not None:
        held = {r["RoleName"] for r in found["InstanceProfile"].get("Roles", [])}
        # Empty, it serves no one; holding the old role, it goes with it.
        profile_here = profile if role not in held or role_here else None
    return role_here, profile_here


def _legacy_role_is_here(aws: Aws, stack: str, role: str) -> bool:
    bucket_arn = f"arn:{aws.partition}:s3:::{bucket_name_for(stack, aws.account, aws.region)}"
    code = aws.call("iam", "get_role_policy", resource=f"IAM role {role}", RoleName=role,
                    PolicyName=CODE_POLICY_NAME, missing_ok=("NoSuchEntity",))
    if code is not None:
        named = _policy_resources(code["PolicyDocument"])
        return any(r == bucket_arn or r.startswith(f"{bucket_arn}/") for r in named)
    secret = aws.call("iam", "get_role_policy", resource=f"IAM role {role}", RoleName=role,
                      PolicyName=SECRET_POLICY_NAME, missing_ok=("NoSuchEntity",))
    if secret is not None:
        return any(f":secretsmanager:{aws.region}:" in r for r in _policy_resources(secret["PolicyDocument"]))
    return True  # nothing ties it to another region


def _policy_resources(document: Any) -> set[str]:
    statements = policy_document(document).get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    named: set[str] = set()
    for statement in statements:
        value = statement.get("Resource", [])
        named.update([value] if isinstance(value, str) else value)
    return named


# -- destroy ---------------------------------------------------------------------
def destroy(ctx: Ctx) -> None:
    """Profiles before roles (a role in a profile cannot be deleted), bucket emptied of every version.
    Last of all: instances (builders, Auto Scaling groups) run with the profiles, read the bucket and
    write their last lines to the log groups. The shared role and profile of before go too, when they
    are this region's."""
    ctx.need_for_teardown()  # steps/graph.py: every Part whose instances or policies use this one's
    for what in tier_log_groups():
        log_groups.delete(ctx, what)
    legacy_role, legacy_profile = legacy_iam(ctx.aws, ctx.stack)
    profiles = [instance_profile_name(ctx, tier) for tier in TIERS] + ([legacy_profile] if legacy_profile else [])
    roles = [role_name(ctx, tier) for tier in TIERS] + ([legacy_role] if legacy_role else [])
    for profile in profiles:
        delete_instance_profile(ctx, profile)
    # Every role let go of first (profiles, policies), then deleted: a role with either is not deletable.
    doomed = [role for role in roles if release_role(ctx, role)]
    for role in doomed:
        ctx.aws.call("iam", "delete_role", resource=f"IAM role {role}", RoleName=role, missing_ok=("NoSuchEntity",))
        ctx.record("deleted", "IAM role", role)
    delete_bucket(ctx)
    alarms.delete_topic(ctx)


def delete_instance_profile(ctx: Ctx, name: str) -> None:
    aws = ctx.aws
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


def release_role(ctx: Ctx, name: str) -> bool:
    """Take the role out of every profile, detach and delete its policies: then it is deletable.
    False when there is no such role."""
    aws = ctx.aws
    resource = f"IAM role {name}"
    if aws.call("iam", "get_role", resource=resource, RoleName=name, missing_ok=("NoSuchEntity",)) is None:
        return False
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
    return True


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
