"""A model of real AWS in time, over moto, on a virtual clock.

moto answers "available" at once, deletes what real AWS would refuse and runs
no user data. `LatencyModel(aws, clock)` hooks the botocore clients of ONE
`threetier.aws.Aws` object (botocore events: before-parameter-build,
before-call, after-call) and makes moto behave as AWS does in time. Every
figure is the "model" column of docs/aws-latency.md, where the source of each
is cited (figures.py has them, the estimates with their source beside them).

Time: the model keeps its own reference to the base clock it was given and
charges every call's cost with `clock.sleep(cost)` on that clock, never
through `aws.clock` (an engine may wrap `aws.clock` with a scheduler), and
reads time with `clock.now()`. Calls may come from several threads: the
model's state is guarded by one lock. Every call costs 80 ms, ACM, Route 53
and WAFv2 ones too (their clients are hooked like the others); creates of VPC,
subnet, IGW, route table, route, security group, rule and association cost 2 s.

What it enforces (docs/aws-latency.md, "Rules the model enforces and moto does
not") is told by the module of each service, which registers its own handlers
(core.py: `before`, `after`):
- iam.py: an instance profile usable by RunInstances 8 s after it was made;
- ec2.py: NAT gateways, instances, AMIs; builders.py: a builder's bootstrap,
  action by action (userdata.py), and its way to the internet; ssm.py: Run
  Command, the builders' health gate; vpc.py: the deletes refused while ENIs
  hold a subnet, a security group or public addresses;
- rds.py: Aurora clusters and instances, made, deleted, stopped and started;
- elbv2.py: load balancers, listeners and their forward weights, target
  health; autoscaling.py: groups, their scale-out, scale-in and delete, and
  which of their instances a target group sends requests to; load.py: a
  steady request load served through a deploy (failed requests, the lowest
  healthy count);
- acm.py and route53.py: a certificate's DNS validation (in the stack's region and in us-east-1,
  CloudFront's); wafv2.py: the web ACL (regional, or CloudFront's);
- cloudfront.py: a distribution InProgress for 300 s after each create or update, then Deployed;
  DeleteDistribution refused while it is enabled or InProgress.

Two lists tell "waited correctly" from "did it in the wrong order":
`refusals` holds every error the model answered (including eventual
consistency that a correct caller retries: a NAT ID or a profile not yet
visible, an unknown new AMI ID, an SSM agent not registered yet, a certificate
or web ACL ELB or WAF does not know yet, one still in use a moment after its
listener or association went), and
`violations` those where the caller acted before the model said a resource
was ready or gone (one string each; a correct engine leaves it empty).
`relax={"rule", ...}` lets single rules pass (recorded in `relaxed`) while an
engine is being fixed; the default is strict. `spans` gives every modeled
operation (requested -> ready, delete requested -> gone) for a Gantt chart.
"""
from __future__ import annotations

import sys
import types
from typing import Any

from bench.model import figures
from bench.model.core import RULES, Refusal, Span, VirtualClock, answer, refusal
from bench.model.figures import (
    ALB_CREATE_SECONDS,
    ALB_ENI_RELEASE_SECONDS,
    ASG_DELETE_SECONDS,
    ASG_IN_SERVICE_SECONDS,
    BOOTSTRAP_FAIL_SECONDS,
    BUILD_SECONDS,
    CALL_SECONDS,
    CERT_PROPAGATION_SECONDS,
    CERT_RECORD_SHOWN_SECONDS,
    CERT_RELEASE_SECONDS,
    CERT_VALIDATION_SECONDS,
    CLOUDFRONT_DEPLOY_SECONDS,
    CLUSTER_CREATE_SECONDS,
    CLUSTER_DELETE_SECONDS,
    CLUSTER_FINAL_SNAPSHOT_SECONDS,
    CLUSTER_START_SECONDS,
    CLUSTER_STOP_SECONDS,
    DB_INSTANCE_CREATE_SECONDS,
    DB_INSTANCE_DELETE_SECONDS,
    DEREGISTRATION_DELAY_DEFAULT_SECONDS,
    DNF_SECONDS,
    EC2_PENDING_SECONDS,
    EC2_TERMINATE_SECONDS,
    HEALTH_WAIT_SECONDS,
    IMAGE_CREATE_SECONDS,
    IMAGE_ID_VISIBLE_SECONDS,
    INSTALL_SECONDS,
    LISTENER_CHANGE_SECONDS,
    NAT_CREATE_SECONDS,
    NAT_DELETE_SECONDS,
    NAT_ROUTE_VISIBLE_SECONDS,
    NETWORK_CREATE_SECONDS,
    NETWORK_CREATES,
    NETWORK_WAIT_SECONDS,
    NPM_CI_SECONDS,
    PROFILE_USABLE_SECONDS,
    S3_COPY_SECONDS,
    SSM_AGENT_SECONDS,
    SYSTEMD_ENABLE_SECONDS,
    TARGET_HEALTHY_SECONDS,
    USER_DATA_START_SECONDS,
    WAF_ACL_USABLE_SECONDS,
    WAF_DISASSOCIATE_SECONDS,
)
from bench.model.latency import HOOKED_SERVICES, LatencyModel
from bench.model.userdata import bootstrap_actions, decode_user_data, script_body

__all__ = [
    "ALB_CREATE_SECONDS", "ALB_ENI_RELEASE_SECONDS", "ASG_DELETE_SECONDS", "ASG_IN_SERVICE_SECONDS",
    "BOOTSTRAP_FAIL_SECONDS", "BUILD_SECONDS", "CALL_SECONDS", "CERT_PROPAGATION_SECONDS",
    "CERT_RECORD_SHOWN_SECONDS", "CERT_RELEASE_SECONDS", "CERT_VALIDATION_SECONDS", "CLOUDFRONT_DEPLOY_SECONDS",
    "CLUSTER_CREATE_SECONDS",
    "CLUSTER_DELETE_SECONDS", "CLUSTER_FINAL_SNAPSHOT_SECONDS", "CLUSTER_START_SECONDS", "CLUSTER_STOP_SECONDS",
    "DB_INSTANCE_CREATE_SECONDS", "DB_INSTANCE_DELETE_SECONDS", "DEREGISTRATION_DELAY_DEFAULT_SECONDS",
    "DNF_SECONDS", "EC2_PENDING_SECONDS", "EC2_TERMINATE_SECONDS", "HEALTH_WAIT_SECONDS", "HOOKED_SERVICES",
    "IMAGE_CREATE_SECONDS", "IMAGE_ID_VISIBLE_SECONDS", "INSTALL_SECONDS", "LISTENER_CHANGE_SECONDS",
    "NAT_CREATE_SECONDS", "NAT_DELETE_SECONDS",
    "NAT_ROUTE_VISIBLE_SECONDS", "NETWORK_CREATES", "NETWORK_CREATE_SECONDS", "NETWORK_WAIT_SECONDS",
    "NPM_CI_SECONDS", "PROFILE_USABLE_SECONDS", "RULES", "S3_COPY_SECONDS", "SSM_AGENT_SECONDS",
    "SYSTEMD_ENABLE_SECONDS", "TARGET_HEALTHY_SECONDS", "USER_DATA_START_SECONDS", "WAF_ACL_USABLE_SECONDS",
    "WAF_DISASSOCIATE_SECONDS", "LatencyModel", "Refusal", "Span", "VirtualClock", "answer", "bootstrap_actions",
    "decode_user_data", "refusal", "script_body",
]


class _Package(types.ModuleType):
    """`bench.model` itself. Setting one of its figures, as tests do
    (`monkeypatch.setattr(bench.model, "NETWORK_WAIT_SECONDS", 10.0)`), sets it in figures.py too, where the
    handlers read it: the copy here alone would change nothing."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name.isupper() and hasattr(figures, name):
            setattr(figures, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
