"""Every deterministic name of the stack's resources, from the stack's name (and the account, region
and partition where the name is global).

The Parts and their blocks make resources by these names; `threetier.scan` finds what is left of a
stack by the same names, with no state file. Names of the form `<stack>-<role>` (`Ctx.name`) are
not here: only those made another way, or that scan looks up.
"""
from __future__ import annotations

import hashlib


# -- the code bucket (Part 1) ---------------------------------------------------------
def bucket_name_for(stack: str, account: str, region: str) -> str:
    # Bucket names are global: stack + account + region makes it unique and findable again.
    return f"{stack}-code-{account}-{region}"


# -- IAM (Parts 1 and 2) ---------------------------------------------------------------
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


def role_name_for(stack: str, region: str, tier: str) -> str:
    return _iam_name(stack, region, f"{tier}-role", ROLE_NAME_LIMIT)


def instance_profile_name_for(stack: str, region: str, tier: str) -> str:
    return _iam_name(stack, region, f"{tier}-profile", PROFILE_NAME_LIMIT)


def flow_logs_role_name_for(stack: str, region: str) -> str:
    """`<stack>-<region>-flow-logs-role`: IAM names are account-wide, the stack is per region."""
    return role_name_for(stack, region, "flow-logs")


# Before IAM names carried the region, one role and profile served both tiers of a stack in every
# region. `up` leaves them (instances of the stack may still run with them); `down` deletes them
# when they are this region's (see legacy_iam).
def legacy_role_name_for(stack: str) -> str:
    return f"{stack}-ec2-role"


def legacy_instance_profile_name_for(stack: str) -> str:
    return f"{stack}-ec2-profile"


# -- log groups (Parts 1 and 2) ----------------------------------------------------------
# `/threetier/<stack>/<what>`: the trailing slash of the prefix keeps stack `a` from matching stack
# `a-b`'s groups.
def log_group_prefix_for(stack: str) -> str:
    return f"/threetier/{stack}/"


def log_group_name_for(stack: str, what: str) -> str:
    return f"{log_group_prefix_for(stack)}{what}"


# -- the alarms' SNS topic (Part 1) -----------------------------------------------------------
TOPIC_ROLE = "alarms"


def topic_name_for(stack: str) -> str:
    return f"{stack}-{TOPIC_ROLE}"


def topic_arn_for(stack: str, partition: str, region: str, account: str) -> str:
    """Deterministic: SNS topic ARNs are the region, the account and the name."""
    return f"arn:{partition}:sns:{region}:{account}:{topic_name_for(stack)}"


# -- the dashboard (Part 7) --------------------------------------------------------------------
DASHBOARD_ROLE = "dashboard"


def dashboard_name_for(stack: str, region: str) -> str:
    """Dashboards are global to the account (PutDashboard), unlike the stack: the region is in the name,
    as in the IAM names, or the same stack in two regions would share one and overwrite it."""
    return f"{stack}-{region}-{DASHBOARD_ROLE}"


# -- the database (Part 3) -------------------------------------------------------------------------
def db_subnet_group_name_for(stack: str) -> str:
    return f"{stack}-db-subnet-group"


def db_parameter_group_name_for(stack: str) -> str:
    return f"{stack}-aurora-params"


def final_snapshot_prefix_for(stack: str) -> str:
    """`down` keeps a final snapshot of the database (unless skipped), `<prefix><UTC time>`: the data,
    not a leftover."""
    return f"{stack.rstrip('-')}-final-"


def backup_snapshot_prefix_for(stack: str) -> str:
    """`backup` names its snapshots `<prefix><UTC time>`: the data too, kept by `down`."""
    return f"{stack.rstrip('-')}-backup-"
