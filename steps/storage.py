"""Part 1 — storage and identity.

The guide: create an S3 bucket for the code, an IAM role for EC2 so instances
can use Session Manager (no SSH keys) and read the code, and upload the code.
Here the bucket is private, encrypted, versioned and (on real AWS) refuses
requests without TLS; each tier has its own role and instance profile
(threetier.blocks.iam): the app tier's reads `app-tier/*`, the web tier's
`web-tier/*` and `nginx.conf`, neither writes the bucket, and only the app
tier's may read the database's secret (Part 3 adds that, once it knows the secret).

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

from threetier import artifacts
from threetier.aws import AwsError, Look
from threetier.blocks import iam, log_groups, topic
from threetier.config import ConfigError
from threetier.engine import Check, Ctx
from threetier.names import bucket_name_for

NUMBER = 1
NAME = "storage"
TITLE = "storage and identity"

TLS_ONLY_SID = "DenyRequestsWithoutTLS"
# Right after CreateBucket (or a delete of the same name) S3 may answer 409 OperationAborted,
# "a conflicting conditional operation is in progress": retried; botocore's retries do not.
BUCKET_BUSY = ("OperationAborted",)
# Prefixes this part owns in the bucket; nginx.conf at the root is Part 6's.
CODE_PREFIXES = tuple(f"{tier}/" for tier in artifacts.TIERS)

PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]}


# -- names -----------------------------------------------------------------------
def bucket_name(ctx: Ctx) -> str:
    return bucket_name_for(ctx.stack, ctx.aws.account, ctx.aws.region)


def tier_log_groups() -> tuple[str, ...]:
    """Every group this part owns, app first."""
    return tuple(what for tier in iam.TIERS for what in iam.TIER_LOG_GROUPS[tier])


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


# -- what the other Parts stand on (read by them, as this Part found or made it) -----------
def profile_arn_key(tier: str) -> str:
    """Where Part 1's resources hold the ARN of the tier's instance profile (builders, templates)."""
    return f"{tier}_instance_profile_arn"


def profile_arn(ctx: Ctx, tier: str) -> str:
    """The tier's instance profile ARN, as this Part found or made it, for the Part that launches the
    tier's instances; "" while unknown (`status` of a stack without it)."""
    return str(ctx.resources_of(NUMBER).get(profile_arn_key(tier), ""))


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
    for tier in iam.TIERS:
        yield from iam.tier_looks(ctx, tier)
    yield log_groups.groups_look(ctx)
    yield from topic.topic_looks(ctx)


# -- apply -----------------------------------------------------------------------
def start(ctx: Ctx) -> None:
    bucket = ensure_bucket(ctx)
    ensure_code_uploaded(ctx, bucket)
    # Before any builder boots (Parts 4 and 6 need this part done): their agents write them.
    for what in tier_log_groups():
        log_groups.ensure(ctx, what)
    for tier in iam.TIERS:
        role = iam.ensure_role(ctx, bucket, tier)
        iam.ensure_instance_profile(ctx, role, tier)
    # The alarms of Parts 3, 5 and 7 notify it (monitoring.email).
    topic.ensure_topic(ctx)


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


def code_files(ctx: Ctx, tier: str | None = None) -> dict[str, bytes]:
    """Bucket key -> content of the code this Part uploads (config.yaml's app.source and web.source, or the
    bundled demo's), of one tier (`app-tier` or `web-tier`) or both."""
    files = artifacts.code_files(ctx.config.app.source, ctx.config.web.source)
    return files if tier is None else {key: body for key, body in files.items() if key.startswith(f"{tier}/")}


def ensure_code_uploaded(ctx: Ctx, bucket: str) -> None:
    """Upload app-tier/ and web-tier/; only what changed, and remove what is gone."""
    aws = ctx.aws
    files = code_files(ctx)
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
        try:
            outdated, stale = code_diff(ctx, bucket, code_files(ctx))
        except ConfigError as exc:  # a source directory gone: status goes on (up, plan refuse it)
            result.drift.append(f"bucket {bucket}: application code: {exc}")
            outdated, stale = [], []
        if outdated or stale:
            result.drift.append(f"bucket {bucket}: application code: {len(outdated)} files missing or changed"
                                f"{f', {len(stale)} left over' if stale else ''} (`up` uploads them)")
    for what in tier_log_groups():
        log_groups.check(ctx, what, result)
    for tier in iam.TIERS:
        iam.check_tier_identity(ctx, result, bucket, tier)
    topic.check_topic(ctx, result)
    return result


# -- the role and profile of before (one for both tiers, named without the region) -------------


# -- destroy ---------------------------------------------------------------------
def destroy(ctx: Ctx) -> None:
    """Profiles before roles (a role in a profile cannot be deleted), bucket emptied of every version.
    Last of all: instances (builders, Auto Scaling groups) run with the profiles, read the bucket and
    write their last lines to the log groups. The shared role and profile of before go too, when they
    are this region's."""
    ctx.need_for_teardown()  # steps/graph.py: every Part whose instances or policies use this one's
    for what in tier_log_groups():
        log_groups.delete(ctx, what)
    legacy_role, legacy_profile = iam.legacy_iam(ctx.aws, ctx.stack)
    profiles = [iam.instance_profile_name(ctx, tier) for tier in iam.TIERS] + ([legacy_profile] if legacy_profile else [])
    roles = [iam.role_name(ctx, tier) for tier in iam.TIERS] + ([legacy_role] if legacy_role else [])
    for profile in profiles:
        iam.delete_instance_profile(ctx, profile)
    # Every role let go of first (profiles, policies), then deleted: a role with either is not deletable.
    doomed = [role for role in roles if iam.release_role(ctx, role)]
    for role in doomed:
        ctx.aws.call("iam", "delete_role", resource=f"IAM role {role}", RoleName=role, missing_ok=("NoSuchEntity",))
        ctx.record("deleted", "IAM role", role)
    delete_bucket(ctx)
    topic.delete_topic(ctx)


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


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
