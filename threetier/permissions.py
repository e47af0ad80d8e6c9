"""The IAM permissions threetier needs: for each command, the actions it makes with a given config
(`actions_for`, what a preflight simulates), and the least-privilege policy that covers them all, in
two managed policies (`policy_document("core")`, `policy_document("edge")`; docs/iam-policy.json and
docs/iam-policy-edge.json are `python -m threetier.permissions --write`).

GRANTS below is the one list. Each entry names the commands that need its actions and the
statement of the policy they go in (what they may act on); an entry with a `feature` is needed
only with that part of config.yaml on. Most actions are the API calls themselves (`iam_action`
maps a recorded call to its action); some are asked for by AWS beyond the call: tags given at
creation (ec2:CreateTags, elasticloadbalancing:AddTags, rds:AddTagsToResource, ...), a role handed
to a service (iam:PassRole), a service-linked role made on first use, the database's secret
(RDS makes it in Secrets Manager as the caller).

A feature turned off in config.yaml: the next `up` (or `down`) removes what it left with that
feature's actions, which `actions_for` leaves out once it is off; the policies have them all.

IAM takes at most 6,144 characters in a managed policy, and all of it is more: the grants of the
features of `edge` (edge.domain, edge.waf, edge.cdn) are a policy of their own (POLICIES), which a
stack without a domain does not need.

`resume` and `replay` are `up` by another name, and so are `deploy` and `rollback` (Parts 1 and 4-7;
`deploy --finish` tags the new color's Auto Scaling group, CreateOrUpdateTags); `cost`, `graph` and
`sandbox` call no AWS at all.
"""
from __future__ import annotations

import fnmatch
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from threetier.config import Config

# -- the commands -----------------------------------------------------------------------------
STATUS, PLAN, UP, DOWN, PAUSE, BACKUP = "status", "plan", "up", "down", "pause", "backup"
# They run `up`'s engine: `deploy` and `rollback` for Parts 1 and 4-7 only, but GRANTS has no Part
# to narrow by, so up's list (a superset) is theirs.
SAME_AS = {"resume": UP, "replay": UP, "deploy": UP, "rollback": UP}
NO_AWS_CALL = frozenset({"cost", "graph", "sandbox"})
COMMANDS = (UP, DOWN, STATUS, PLAN, PAUSE, BACKUP, *SAME_AS, *NO_AWS_CALL)

CHECKS = frozenset({STATUS, PLAN, UP, PAUSE})  # read the whole stack (the inventory and every Part's check)
EVERY = CHECKS | {DOWN}
CHANGES = frozenset({UP, DOWN, PAUSE})  # hold the stack's lock (threetier.lock)
UP_DOWN = frozenset({UP, DOWN})
PREFLIGHT = frozenset({UP, PLAN})  # threetier/preflight.py: before up's (resume's, replay's) first change
# What only `status` reads (threetier/guards.py): the account's own guards, which `up` never touches.
ACCOUNT_GUARDS = ("cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors",
                  "guardduty:ListDetectors", "guardduty:GetDetector")

# -- the parts of config.yaml that add calls ---------------------------------------------------
FEATURES: dict[str, Callable[[Config], bool]] = {
    "edge": lambda config: config.edge.https,               # edge.domain: ACM, Route 53, HTTPS listener
    "waf": lambda config: config.edge.waf,                  # edge.waf: a WAFv2 web ACL
    "cdn": lambda config: config.edge.cdn,                  # edge.cdn: CloudFront, its certificate; the origin's group, rule, secret
    "email": lambda config: config.monitoring.email is not None,  # an SNS topic and its subscription
    "alarms": lambda config: config.monitoring.alarms,
    "dashboard": lambda config: config.monitoring.dashboard,
    "flow_logs": lambda config: config.monitoring.flow_logs,
    "restore": lambda config: config.database.restore_from is not None,  # database.restore_from
}
# The two managed policies, and their files: the core, and the edge's (the grants of these features).
POLICIES = {"core": "docs/iam-policy.json", "edge": "docs/iam-policy-edge.json"}
EDGE_FEATURES = frozenset({"edge", "waf", "cdn"})

# -- what the statements may act on: (resources, condition) by Sid ---------------------------------
# Any partition (aws, aws-cn, aws-us-gov). Names are the stack's (threetier.names): `*` stands for
# the stack, the region and the account, as the policy is one for every stack.
ANY = "AnyResource"
STATEMENTS: dict[str, tuple[tuple[str, ...], dict[str, Any] | None]] = {
    # What has no name to scope by: EC2's resources, load balancers, groups, clusters, alarms,
    # certificates, zones and web ACLs are known by IDs and ARNs AWS picks; and the reads and lists
    # that IAM authorizes on no resource at all.
    ANY: (("*",), None),
    # The secrets made as the caller: `rds!cluster-<id>` (ManageMasterUserPassword: RDS makes it), and
    # with edge.cdn the origin header's, `<stack>-cdn-origin-header` (threetier/blocks/origin.py)...
    "StackSecrets": (("arn:*:secretsmanager:*:*:secret:rds!*",
                      "arn:*:secretsmanager:*:*:secret:*-cdn-origin-header-*"), None),
    # ...which alone threetier reads, restores and deletes (never the database's; AWS adds `-` and 6
    # characters to a secret's name in its ARN).
    "CdnOriginSecret": (("arn:*:secretsmanager:*:*:secret:*-cdn-origin-header-*",), None),
    "CodeBucket": (("arn:*:s3:::*-code-*", "arn:*:s3:::*-code-*/*"), None),
    # `<stack>-<region>-<app|web|flow-logs>-role`, `<stack>-<region>-<app|web>-profile`, and the
    # shared `<stack>-ec2-role`/`-ec2-profile` of before, which `down` removes.
    "StackRoles": (("arn:*:iam::*:role/*-role", "arn:*:iam::*:instance-profile/*-profile"), None),
    # The one managed policy the stack attaches (to the tiers' roles): Session Manager.
    "AttachSessionManagerPolicyOnly": (("arn:*:iam::*:role/*-role",), {
        "ArnLike": {"iam:PolicyARN": "arn:*:iam::aws:policy/AmazonSSMManagedInstanceCore"}}),
    "ServiceLinkedRoles": (("arn:*:iam::*:role/aws-service-role/*",), {
        "StringEquals": {"iam:AWSServiceName": ["autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com",
                                                "rds.amazonaws.com"]}}),
    # The stack's lock `/threetier/<stack>/lock`, and the public Amazon Linux 2023 AMI parameters.
    "StackLockAndBaseImage": (("arn:*:ssm:*:*:parameter/threetier/*",
                               "arn:*:ssm:*:*:parameter/aws/service/ami-amazon-linux-latest/*"), None),
    "HealthGate": (("arn:*:ssm:*:*:document/AWS-RunShellScript", "arn:*:ec2:*:*:instance/*"), None),
    "StackLogGroups": (("arn:*:logs:*:*:log-group:/threetier/*",), None),
    "AlarmTopic": (("arn:*:sns:*:*:*-alarms", "arn:*:sns:*:*:*-alarms:*"), None),
}
# IAM takes at most 6,144 characters (whitespace aside) in a managed policy, and each action by name
# is more than that: in the policy, the reads of the services with many go by their read-only verb.
# `actions_for` still names each action (what a simulation asks about).
READ_WILDCARDS = ("ec2:Describe*", "elasticloadbalancing:Describe*", "autoscaling:Describe*", "rds:Describe*",
                  "iam:Get*", "iam:List*")
POLICY_SIZE_LIMIT = 6144


@dataclass(frozen=True)
class Grant:
    statement: str                # its Sid in STATEMENTS
    commands: frozenset[str]      # the commands that need these actions
    actions: tuple[str, ...]
    feature: str | None = None    # needed only with this feature of config.yaml on (FEATURES)


def _grant(statement: str, commands: Iterable[str], *actions: str, feature: str | None = None) -> Grant:
    return Grant(statement, frozenset(commands), actions, feature)


GRANTS: tuple[Grant, ...] = (
    # -- The preflight (threetier/preflight.py): quotas and their use, offerings, the permissions -------
    _grant(ANY, PREFLIGHT, "ec2:DescribeAccountAttributes", "ec2:DescribeInstanceTypeOfferings",
           "elasticloadbalancing:DescribeAccountLimits", "rds:DescribeAccountAttributes",
           "rds:DescribeOrderableDBInstanceOptions", "rds:DescribeDBEngineVersions", "servicequotas:GetServiceQuota",
           "servicequotas:GetAWSDefaultServiceQuota", "iam:SimulatePrincipalPolicy"),

    # -- The account's own guards, which `status` notes when off (threetier/guards.py) ---------------------
    _grant(ANY, [STATUS], *ACCOUNT_GUARDS),

    # -- EC2: the network (Part 2), the builders and images (Parts 4, 6), the tiers' templates ------
    _grant(ANY, EVERY, "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeInternetGateways",
           "ec2:DescribeNatGateways", "ec2:DescribeAddresses", "ec2:DescribeRouteTables",
           "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:DescribeFlowLogs",
           "ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeLaunchTemplates"),
    _grant(ANY, CHECKS, "ec2:DescribeAvailabilityZones", "ec2:DescribeVpcAttribute",
           "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplateVersions"),
    _grant(ANY, UP_DOWN, "ec2:DescribeSnapshots"),  # an image's snapshots, deleted with it
    _grant(ANY, [DOWN], "ec2:DescribeVolumes", "ec2:DescribeVpcEndpoints"),  # the scan, what holds the VPC
    _grant(ANY, [UP], "ec2:CreateVpc", "ec2:ModifyVpcAttribute", "ec2:CreateSubnet", "ec2:ModifySubnetAttribute",
           "ec2:CreateInternetGateway", "ec2:AttachInternetGateway", "ec2:AllocateAddress", "ec2:CreateNatGateway",
           "ec2:CreateRouteTable", "ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:AssociateRouteTable",
           "ec2:ReplaceRouteTableAssociation", "ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress",
           "ec2:RevokeSecurityGroupEgress", "ec2:RunInstances", "ec2:CreateImage", "ec2:CreateLaunchTemplate",
           "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate",
           # Every create names the stack's tags (TagSpecifications): AWS asks for CreateTags too.
           "ec2:CreateTags",
           "ec2:DeleteTags"),  # an image's rejected tag, cleared when it is deployed again (blue/green)
    _grant(ANY, [UP], "ec2:CreateFlowLogs", feature="flow_logs"),
    _grant(ANY, UP_DOWN, "ec2:DeleteFlowLogs", feature="flow_logs"),
    _grant(ANY, UP_DOWN, "ec2:RevokeSecurityGroupIngress", "ec2:TerminateInstances", "ec2:DeregisterImage",
           "ec2:DeleteSnapshot"),
    _grant(ANY, CHANGES, "ec2:DeleteNatGateway", "ec2:DisassociateAddress", "ec2:ReleaseAddress"),
    _grant(ANY, [PAUSE], "ec2:DeleteRoute"),  # the app subnets' routes to the NAT gateways
    # `up` too: a second copy of a route table or internet gateway with nothing attached (finders.one).
    _grant(ANY, UP_DOWN, "ec2:DeleteRouteTable", "ec2:DeleteInternetGateway"),
    _grant(ANY, UP_DOWN, "ec2:DeleteLaunchTemplate"),  # `up` too: the color a deploy replaced (blue/green)
    _grant(ANY, [DOWN], "ec2:DisassociateRouteTable",
           "ec2:DeleteSecurityGroup", "ec2:DetachInternetGateway",
           "ec2:DeleteSubnet", "ec2:DeleteVpc"),

    # -- Elastic Load Balancing: both tiers' ALBs, target groups, listeners (Parts 5, 7) ---------------
    _grant(ANY, EVERY, "elasticloadbalancing:DescribeLoadBalancers",
           "elasticloadbalancing:DescribeLoadBalancerAttributes", "elasticloadbalancing:DescribeListeners",
           "elasticloadbalancing:DescribeTargetGroups"),
    _grant(ANY, CHECKS, "elasticloadbalancing:DescribeTargetGroupAttributes",
           "elasticloadbalancing:DescribeTargetHealth"),
    _grant(ANY, CHECKS, "elasticloadbalancing:DescribeListenerAttributes", feature="edge"),
    _grant(ANY, [DOWN], "elasticloadbalancing:DescribeTags"),  # the scan: which ALBs are the stack's
    _grant(ANY, [UP], "elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:CreateLoadBalancer",
           "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:ModifyLoadBalancerAttributes",
           "elasticloadbalancing:CreateListener", "elasticloadbalancing:ModifyListener",
           "elasticloadbalancing:AddTags"),  # tags given at creation
    _grant(ANY, [UP], "elasticloadbalancing:ModifyListenerAttributes", feature="edge"),  # HSTS on 443
    _grant(ANY, UP_DOWN, "elasticloadbalancing:ModifyTargetGroupAttributes"),
    _grant(ANY, [DOWN], "elasticloadbalancing:DeleteListener", "elasticloadbalancing:DeleteLoadBalancer"),
    _grant(ANY, UP_DOWN, "elasticloadbalancing:DeleteTargetGroup"),  # `up` too: the color a deploy replaced
    # AssociateWebACL and DisassociateWebACL ask for it on the ALB.
    _grant(ANY, UP_DOWN, "elasticloadbalancing:SetWebAcl", feature="waf"),

    # -- EC2 Auto Scaling: both tiers' groups and their scaling policies (Parts 5, 7) -------------------
    _grant(ANY, EVERY, "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribePolicies"),
    _grant(ANY, [UP], "autoscaling:CreateAutoScalingGroup", "autoscaling:AttachLoadBalancerTargetGroups",
           "autoscaling:EnableMetricsCollection", "autoscaling:PutScalingPolicy",
           "autoscaling:CreateOrUpdateTags"),  # the group's tags, given at creation
    _grant(ANY, [UP, PAUSE], "autoscaling:UpdateAutoScalingGroup"),
    _grant(ANY, UP_DOWN, "autoscaling:DeletePolicy"),
    _grant(ANY, UP_DOWN, "autoscaling:DeleteAutoScalingGroup"),  # `up` too: the color a deploy replaced

    # -- RDS: the Aurora cluster, its instances, subnet and parameter groups (Part 3) ---------------------
    _grant(ANY, EVERY, "rds:DescribeDBClusters", "rds:DescribeDBInstances", "rds:DescribeDBSubnetGroups"),
    _grant(ANY, CHECKS, "rds:DescribeDBClusterParameters"),
    _grant(ANY, [DOWN], "rds:DescribeDBClusterParameterGroups", "rds:DescribeDBClusterSnapshots"),
    _grant(ANY, [UP], "rds:CreateDBSubnetGroup", "rds:ModifyDBSubnetGroup", "rds:CreateDBClusterParameterGroup",
           "rds:ModifyDBClusterParameterGroup", "rds:CreateDBCluster", "rds:ModifyDBCluster", "rds:CreateDBInstance"),
    # Tags given at creation; the final snapshot takes the cluster's (CopyTagsToSnapshot).
    _grant(ANY, UP_DOWN, "rds:AddTagsToResource"),
    _grant(ANY, UP_DOWN, "rds:StartDBCluster"),  # a paused (stopped) cluster, before it is used or deleted
    _grant(ANY, [PAUSE], "rds:StopDBCluster"),
    # database.restore_from: the preflight and Part 3 find the snapshot, Part 3 restores it (then
    # ModifyDBCluster ManageMasterUserPassword, which makes the secret as CreateDBCluster does).
    _grant(ANY, [PLAN], "rds:DescribeDBClusterSnapshots", feature="restore"),  # up: with status's, below
    _grant(ANY, [UP], "rds:RestoreDBClusterFromSnapshot", feature="restore"),
    # `backup`: a tagged snapshot of the cluster, waited for; `status` lists the stack's snapshots.
    _grant(ANY, [BACKUP], "rds:DescribeDBClusters", "rds:CreateDBClusterSnapshot", "rds:AddTagsToResource"),
    _grant(ANY, [STATUS, UP, BACKUP], "rds:DescribeDBClusterSnapshots"),  # up: what status reads, and more
    _grant(ANY, [DOWN], "rds:DeleteDBInstance", "rds:DeleteDBCluster", "rds:DeleteDBClusterParameterGroup",
           "rds:DeleteDBSubnetGroup",
           "rds:CreateDBClusterSnapshot"),  # DeleteDBCluster's final snapshot (unless --skip-final-snapshot)
    _grant("StackSecrets", [UP], "secretsmanager:CreateSecret", "secretsmanager:TagResource"),
    _grant(ANY, [UP], "kms:DescribeKey"),  # the secret's key, aws/secretsmanager

    # -- S3: the code bucket (Parts 1, 6) ------------------------------------------------------------
    _grant("CodeBucket", EVERY, "s3:ListBucket"),  # HeadBucket, ListObjectsV2
    _grant("CodeBucket", CHECKS, "s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration",
           "s3:GetBucketVersioning", "s3:GetBucketPolicy", "s3:GetObject"),  # GetObject: HeadObject of nginx.conf
    _grant("CodeBucket", [UP], "s3:CreateBucket",
           "s3:PutBucketOwnershipControls", "s3:TagResource",  # CreateBucket's ObjectOwnership and tags
           "s3:PutBucketPublicAccessBlock", "s3:PutEncryptionConfiguration", "s3:PutBucketVersioning",
           "s3:PutBucketPolicy", "s3:PutObject"),
    _grant("CodeBucket", UP_DOWN, "s3:DeleteObject"),  # DeleteObjects: code the package no longer has; down
    _grant("CodeBucket", [DOWN], "s3:ListBucketVersions", "s3:DeleteObjectVersion", "s3:DeleteBucket"),

    # -- IAM: each tier's role and instance profile (Part 1), the flow logs' role (Part 2) --------------
    _grant("StackRoles", EVERY, "iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies",
           "iam:GetInstanceProfile"),
    _grant("StackRoles", [UP], "iam:CreateRole", "iam:TagRole", "iam:PutRolePolicy", "iam:CreateInstanceProfile",
           "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile"),
    _grant("StackRoles", [UP], "iam:UpdateAssumeRolePolicy", feature="flow_logs"),
    _grant("StackRoles", UP_DOWN, "iam:RemoveRoleFromInstanceProfile"),
    _grant("StackRoles", [DOWN], "iam:ListInstanceProfilesForRole", "iam:ListRolePolicies", "iam:DetachRolePolicy",
           "iam:DeleteRolePolicy", "iam:DeleteRole", "iam:DeleteInstanceProfile"),
    _grant("AttachSessionManagerPolicyOnly", [UP], "iam:AttachRolePolicy"),
    # The tiers' roles to EC2 (builders, launch templates, Auto Scaling groups), the flow logs' to VPC Flow Logs.
    _grant("StackRoles", [UP], "iam:PassRole"),
    # The first ALB, Auto Scaling group and Aurora cluster of an account make the service's role.
    _grant("ServiceLinkedRoles", [UP], "iam:CreateServiceLinkedRole"),

    # -- SSM: the stack's lock, the base image, the builders' health gate (Parts 4, 6) ----------------------
    _grant("StackLockAndBaseImage", EVERY, "ssm:GetParameter"),
    _grant("StackLockAndBaseImage", CHANGES, "ssm:PutParameter", "ssm:DeleteParameter",
           "ssm:AddTagsToResource"),  # the lock's tags, given at creation
    _grant("HealthGate", [UP], "ssm:SendCommand"),
    _grant(ANY, [UP], "ssm:GetCommandInvocation"),

    # -- CloudWatch Logs: the tiers' and the flow logs' groups (Parts 1, 2) ------------------------------
    _grant(ANY, EVERY, "logs:DescribeLogGroups"),
    _grant("StackLogGroups", [UP], "logs:CreateLogGroup", "logs:PutRetentionPolicy",
           "logs:TagResource", "logs:TagLogGroup"),  # tags given at creation (TagLogGroup: its older name)
    _grant("StackLogGroups", [DOWN], "logs:DeleteLogGroup"),

    # -- CloudWatch: the alarms (Parts 3, 5, 7), the dashboard (Part 7) ------------------------------------
    _grant(ANY, EVERY, "cloudwatch:DescribeAlarms", "cloudwatch:GetDashboard"),
    _grant(ANY, [DOWN], "cloudwatch:ListDashboards", "cloudwatch:ListTagsForResource"),  # the scan
    _grant(ANY, [UP, PAUSE], "cloudwatch:PutMetricAlarm", feature="alarms"),  # pause: actions off
    _grant(ANY, [UP], "cloudwatch:TagResource", feature="alarms"),  # tags given at creation
    _grant(ANY, [UP], "cloudwatch:PutDashboard", "cloudwatch:TagResource", feature="dashboard"),
    _grant(ANY, UP_DOWN, "cloudwatch:DeleteAlarms"),
    # The watch after a blue/green switch (threetier/blocks/watch.py): the new color's target group metrics.
    _grant(ANY, [UP], "cloudwatch:GetMetricData"),
    _grant(ANY, [DOWN], "cloudwatch:DeleteDashboards", feature="dashboard"),

    # -- SNS: the alarms' topic and its e-mail subscription (Part 1, monitoring.email) ---------------------
    _grant("AlarmTopic", EVERY, "sns:GetTopicAttributes"),
    _grant("AlarmTopic", EVERY, "sns:ListSubscriptionsByTopic", feature="email"),
    _grant("AlarmTopic", [UP], "sns:CreateTopic", "sns:TagResource", "sns:Subscribe", "sns:Unsubscribe",
           feature="email"),
    _grant("AlarmTopic", [DOWN], "sns:DeleteTopic", feature="email"),

    # -- ACM and Route 53: the certificate, its validation records, the alias record (Part 7, edge) --------
    # `down`'s scan lists every certificate of the region, and their tags, whatever the config says.
    _grant(ANY, CHECKS, "acm:ListCertificates", "acm:ListTagsForCertificate", feature="edge"),
    _grant(ANY, [DOWN], "acm:ListCertificates", "acm:ListTagsForCertificate"),
    _grant(ANY, EVERY, "acm:DescribeCertificate", feature="edge"),
    _grant(ANY, [UP], "acm:RequestCertificate", "acm:AddTagsToCertificate", feature="edge"),
    _grant(ANY, UP_DOWN, "acm:DeleteCertificate", feature="edge"),
    _grant(ANY, EVERY, "route53:ListHostedZonesByName", "route53:GetHostedZone", "route53:ListResourceRecordSets",
           feature="edge"),
    _grant(ANY, UP_DOWN, "route53:ChangeResourceRecordSets", feature="edge"),

    # -- WAFv2: the web ACL on the external ALB (Part 7, edge.waf) ------------------------------------------
    # `down`'s scan lists every regional web ACL, and their tags, whatever the config says.
    _grant(ANY, CHECKS, "wafv2:ListWebACLs", "wafv2:ListTagsForResource", feature="waf"),
    _grant(ANY, [DOWN], "wafv2:ListWebACLs", "wafv2:ListTagsForResource"),
    _grant(ANY, EVERY, "wafv2:GetWebACL", "wafv2:GetWebACLForResource", feature="waf"),
    _grant(ANY, [UP], "wafv2:CreateWebACL", "wafv2:TagResource", "wafv2:UpdateWebACL", "wafv2:AssociateWebACL",
           feature="waf"),
    _grant(ANY, [DOWN], "wafv2:DisassociateWebACL", "wafv2:DeleteWebACL", feature="waf"),

    # -- edge.cdn: only CloudFront reaches the external ALB (Parts 2 and 7) ------------------------------
    # cdn-origin-sg admits CloudFront's managed prefix list; 443's rule forwards on the origin header.
    # DescribeTags: 443's rules, the stack's known by its tags (balancing.stack_rules).
    _grant(ANY, CHECKS, "ec2:DescribeManagedPrefixLists", "elasticloadbalancing:DescribeRules",
           "elasticloadbalancing:DescribeTags", feature="cdn"),
    _grant(ANY, [UP], "elasticloadbalancing:CreateRule", "elasticloadbalancing:ModifyRule",
           "elasticloadbalancing:DeleteRule", feature="cdn"),  # DeleteRule: cdn turned off
    # The origin header's secret (threetier/blocks/origin.py; made with StackSecrets' CreateSecret). Looked
    # for and deleted whatever the config says: one left from when edge.cdn was on goes.
    _grant("CdnOriginSecret", EVERY, "secretsmanager:DescribeSecret"),
    _grant("CdnOriginSecret", UP_DOWN, "secretsmanager:DeleteSecret"),
    _grant("CdnOriginSecret", CHECKS, "secretsmanager:GetSecretValue", feature="cdn"),
    _grant("CdnOriginSecret", [UP], "secretsmanager:RestoreSecret", feature="cdn"),
    _grant(ANY, [DOWN], "secretsmanager:ListSecrets"),  # the scan lists the stack's secrets

    # -- CloudFront: the distribution in front of the external ALB (Part 7, edge.cdn) -------------------
    # `down`'s teardown and scan list every distribution, and their tags, whatever the config says.
    _grant(ANY, CHECKS, "cloudfront:ListDistributions", "cloudfront:ListTagsForResource",
           "cloudfront:GetDistribution", feature="cdn"),
    _grant(ANY, [DOWN], "cloudfront:ListDistributions", "cloudfront:ListTagsForResource"),
    _grant(ANY, UP_DOWN, "cloudfront:GetDistribution", "cloudfront:GetDistributionConfig",
           "cloudfront:UpdateDistribution", "cloudfront:DeleteDistribution", feature="cdn"),
    # CreateDistributionWithTags is authorized as CreateDistribution and TagResource (ACTION_OF).
    _grant(ANY, [UP], "cloudfront:CreateDistribution", "cloudfront:TagResource", feature="cdn"),
)

# Calls made only against an emulator (moto), never on AWS: not in the policy.
EMULATOR_ONLY = {
    # moto keeps a deleted cluster's automated snapshots; on AWS DeleteAutomatedBackups removes them
    # (steps/database.py, delete_emulator_backups).
    "rds:DeleteDBClusterSnapshot",
}
# Calls every identity may make, whatever its policies say.
NEEDS_NO_PERMISSION = frozenset({"sts:GetCallerIdentity"})


# -- from a recorded call to its IAM action -----------------------------------------------------
# botocore's service name -> the IAM service prefix (for every service threetier calls).
IAM_PREFIX = {
    "acm": "acm", "autoscaling": "autoscaling", "cloudfront": "cloudfront", "cloudtrail": "cloudtrail", "cloudwatch": "cloudwatch", "ec2": "ec2",
    "elbv2": "elasticloadbalancing", "guardduty": "guardduty", "iam": "iam", "kms": "kms", "logs": "logs", "rds": "rds",
    "route53": "route53", "s3": "s3", "secretsmanager": "secretsmanager", "service-quotas": "servicequotas",
    "sns": "sns", "ssm": "ssm",
    "sts": "sts", "wafv2": "wafv2",
}
# The operations whose action is not named after them (S3's, mostly).
ACTION_OF = {
    ("cloudfront", "CreateDistributionWithTags"): "cloudfront:CreateDistribution",  # and cloudfront:TagResource
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",  # and s3:DeleteObjectVersion for keys given with a version
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "UploadPart"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
    ("s3", "AbortMultipartUpload"): "s3:AbortMultipartUpload",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action a call needs: `iam_action("elbv2", "CreateListener")` is
    "elasticloadbalancing:CreateListener", `iam_action("s3", "HeadBucket")` "s3:ListBucket"."""
    if (service, operation) in ACTION_OF:
        return ACTION_OF[(service, operation)]
    if service not in IAM_PREFIX:
        raise ValueError(f"no IAM prefix known for AWS service {service!r}: add it to IAM_PREFIX")
    return f"{IAM_PREFIX[service]}:{operation}"


def actions_called(calls: Iterable[Any]) -> set[str]:
    """The actions a run's calls (threetier.aws.Call: service, operation) needed, less those no policy grants."""
    return {iam_action(call.service, call.operation) for call in calls} - NEEDS_NO_PERMISSION


# -- per command ---------------------------------------------------------------------------------
def actions_for(command: str, config: Config) -> list[str]:
    """The IAM actions `command` makes with this config, sorted: what a preflight simulates."""
    command = SAME_AS.get(command, command)
    if command in NO_AWS_CALL:
        return []
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r} (commands: {', '.join(COMMANDS)})")
    return sorted({action for grant in GRANTS if command in grant.commands
                   and (grant.feature is None or FEATURES[grant.feature](config))
                   for action in grant.actions})


# -- the policies ---------------------------------------------------------------------------------
def policy_of(grant: Grant) -> str:
    """The managed policy (a key of POLICIES) a grant's actions go in."""
    return "edge" if grant.feature in EDGE_FEATURES else "core"


def policy_document(policy: str) -> dict[str, Any]:
    """One managed policy of POLICIES: every command's actions with every feature on, of the grants
    that go in it, one statement per Sid (what they may act on). The edge's leaves out what the core
    grants on the same statement already (`down`'s scan lists web ACLs and certificates whatever the
    config says): each action is in one of the two."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r} (policies: {', '.join(POLICIES)})")
    granted: dict[str, dict[str, set[str]]] = {name: {} for name in POLICIES}
    for grant in GRANTS:
        granted[policy_of(grant)].setdefault(grant.statement, set()).update(
            _shortened(action) for action in grant.actions)
    statements = []
    for sid, found in granted[policy].items():
        if policy != "core":
            found = found - granted["core"].get(sid, set())
        if not found:
            continue
        resources, condition = STATEMENTS[sid]
        statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(found),
                                     "Resource": resources[0] if len(resources) == 1 else list(resources)}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def _shortened(action: str) -> str:
    return next((wildcard for wildcard in READ_WILDCARDS if fnmatch.fnmatchcase(action, wildcard)), action)


def allows(document: dict[str, Any], action: str) -> bool:
    """Whether one of the document's statements names the action (by name or by a wildcard)."""
    return any(fnmatch.fnmatchcase(action, named) for statement in document["Statement"]
               for named in statement["Action"])


def policy_files(actions: Iterable[str]) -> list[str]:
    """The published files (POLICIES' order) that grant these actions: what to attach for them."""
    actions = list(actions)
    return [path for name, path in POLICIES.items()
            if any(allows(policy_document(name), action) for action in actions)]


def render(policy: str) -> str:
    """One policy as its file (POLICIES) holds it."""
    return json.dumps(policy_document(policy), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """`python -m threetier.permissions [core|edge]` prints one policy (the core by default);
    `--write` writes both files of POLICIES, from the repository's root."""
    if argv == ["--write"]:
        for name, path in POLICIES.items():
            with open(path, "w") as file:
                file.write(render(name))
            print(path)
        return 0
    if len(argv) > 1 or (argv and argv[0] not in POLICIES):
        print(f"usage: python -m threetier.permissions [{'|'.join(POLICIES)}|--write]", file=sys.stderr)
        return 2
    print(render(argv[0] if argv else "core"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
