"""IAM of the stack: each tier's role and instance profile (Part 1), the policies on a role (inline
and managed), the roles of other services (the flow logs', Part 2), and their teardown.

Each tier has its own role and instance profile, named with the region (IAM names are
account-wide, the stack is per region: threetier.names): the app tier's reads `app-tier/*` of the
code bucket, the web tier's `web-tier/*` and `nginx.conf`, neither writes the bucket, each writes its
own tier's log groups only, and only the app tier's may read the database's secret (Part 3 puts that
policy, once it knows the secret).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from threetier.aws import Aws, Look, tags
from threetier.blocks import log_groups
from threetier.engine import Check, Ctx
from threetier.names import (
    bucket_name_for,
    instance_profile_name_for,
    legacy_instance_profile_name_for,
    legacy_role_name_for,
    role_name_for,
)

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

EC2_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


# -- names -----------------------------------------------------------------------
def role_name(ctx: Ctx, tier: str) -> str:
    return role_name_for(ctx.stack, ctx.aws.region, tier)


def instance_profile_name(ctx: Ctx, tier: str) -> str:
    return instance_profile_name_for(ctx.stack, ctx.aws.region, tier)


# -- policies ----------------------------------------------------------------------
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


# -- what the finders read (the inventory) ---------------------------------------
def iam_look(operation: str, **params: Any) -> Look:
    key = {"list_attached_role_policies": "AttachedPolicies"}.get(operation)
    return Look("iam", operation, params, key=key, missing_ok=("NoSuchEntity",))


def tier_looks(ctx: Ctx, tier: str) -> Iterator[Look]:
    """The reads of the tier's role, its policies and its instance profile."""
    role = role_name(ctx, tier)
    yield iam_look("get_role", RoleName=role)
    yield iam_look("list_attached_role_policies", RoleName=role)
    yield iam_look("get_role_policy", RoleName=role, PolicyName=CODE_POLICY_NAME)
    yield iam_look("get_role_policy", RoleName=role, PolicyName=LOGS_POLICY_NAME)
    yield iam_look("get_instance_profile", InstanceProfileName=instance_profile_name(ctx, tier))


# -- apply -----------------------------------------------------------------------
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
                             Tags=tags(ctx.stack, ctx.part_number, name), exists=ALREADY_EXISTS,
                             found=lambda: ctx.aws.look(iam_look("get_role", RoleName=name), resource=resource,
                                                        live=True))
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
                         Tags=tags(ctx.stack, ctx.part_number, name), exists=ALREADY_EXISTS,
                         found=lambda: profile_now(ctx, name))
        ctx.record("created", "instance profile", name)
    profile = found["InstanceProfile"]
    roles = {r["RoleName"] for r in profile.get("Roles", [])}
    if role not in roles:
        for other in sorted(roles):  # a profile holds one role
            aws.call("iam", "remove_role_from_instance_profile", resource=resource,
                     InstanceProfileName=name, RoleName=other)
        # A profile holds one role: LimitExceeded is the answer to a copy of this call whose first one
        # was performed (its answer lost).
        aws.call("iam", "add_role_to_instance_profile", resource=resource, InstanceProfileName=name, RoleName=role,
                 exists=("LimitExceeded",), found=lambda: holds_role(ctx, name, role))
        ctx.record("changed", "instance profile role", f"{name}/{role}")
    _publish(ctx, tier, "instance_profile", name)
    _publish(ctx, tier, "instance_profile_arn", profile["Arn"])


ALREADY_EXISTS = ("EntityAlreadyExists",)


def profile_now(ctx: Ctx, name: str) -> Any:
    """GetInstanceProfile's answer, from AWS (None: there is none)."""
    return ctx.aws.look(iam_look("get_instance_profile", InstanceProfileName=name), resource=f"instance profile {name}",
                        live=True)


def holds_role(ctx: Ctx, profile: str, role: str) -> dict[str, Any] | None:
    """Something (not None) when the profile holds the role."""
    found = profile_now(ctx, profile)
    held = {r["RoleName"] for r in (found or {}).get("InstanceProfile", {}).get("Roles", [])}
    return {} if role in held else None


# -- check -----------------------------------------------------------------------
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


# -- helpers ---------------------------------------------------------------------
def policy_document(value: Any) -> Any:
    """IAM returns policy documents URL-encoded strings (boto3 decodes them to dicts)."""
    if isinstance(value, str):
        return json.loads(unquote(value))
    return value
