"""The model's figures: how long real AWS takes, in seconds.

Each is the "model" column of docs/aws-latency.md ("Figures", and "Builder bootstrap, action by
action"), where the source of each is cited; the estimates have their public source beside them here
too. The handlers read them as `figures.NAME` when they run, so setting `bench.model.NAME` (a test's
monkeypatch) changes the model: bench/model/__init__.py forwards it here.
"""
from __future__ import annotations

CALL_SECONDS = 0.08               # one API call, laptop -> region
NETWORK_CREATE_SECONDS = 2.0      # VPC, subnet, IGW, route table, route, SG, rule, association
PROFILE_USABLE_SECONDS = 8.0      # IAM instance profile usable by RunInstances
NAT_CREATE_SECONDS = 100.0
NAT_DELETE_SECONDS = 60.0
NAT_ROUTE_VISIBLE_SECONDS = 5.0   # CreateRoute to a NAT gateway created a moment ago
CLUSTER_CREATE_SECONDS = 60.0
DB_INSTANCE_CREATE_SECONDS = 480.0
DB_INSTANCE_DELETE_SECONDS = 480.0
CLUSTER_DELETE_SECONDS = 60.0
CLUSTER_FINAL_SNAPSHOT_SECONDS = 120.0
EC2_PENDING_SECONDS = 30.0
EC2_TERMINATE_SECONDS = 60.0
USER_DATA_START_SECONDS = 30.0    # after `running`
SSM_AGENT_SECONDS = 40.0          # after `running`
IMAGE_CREATE_SECONDS = 300.0
IMAGE_ID_VISIBLE_SECONDS = 1.0
ALB_CREATE_SECONDS = 150.0
ALB_ENI_RELEASE_SECONDS = 60.0
ASG_IN_SERVICE_SECONDS = 110.0
TARGET_HEALTHY_SECONDS = 30.0
ASG_DELETE_SECONDS = 150.0
# Builder bootstrap, action by action (Amazon Linux 2023, t3.micro).
DNF_SECONDS = 60.0                # one `dnf install` transaction (install_packages, install_node)
S3_COPY_SECONDS = 5.0             # fetch_tier, aws s3 cp/sync
NPM_CI_SECONDS = {"app": 30.0, "web": 90.0}
BUILD_SECONDS = 45.0              # npm run build / vite build
SYSTEMD_ENABLE_SECONDS = 5.0
HEALTH_WAIT_SECONDS = 240.0       # common.sh wait_healthy: 120 tries, 2 s apart
BOOTSTRAP_FAIL_SECONDS = 60.0     # a bootstrap without the internet gives up after its retries
NETWORK_WAIT_SECONDS = 900.0      # common.sh wait_for_network: NETWORK_WAIT_SECONDS, its limit
# Part 7's front door (ACM, Route 53, WAFv2). Each is an estimate (docs/aws-latency.md marks them est),
# from the public source named beside it.
# DescribeCertificate shows the validation CNAME a few seconds after RequestCertificate: the record
# is assigned asynchronously (terraform-provider-aws internal/service/acm/certificate.go waits for it,
# certificateDNSValidationAssignmentTimeout; the ACM user guide, dns-validation).
CERT_RECORD_SHOWN_SECONDS = 5.0
# The validation CNAME in a Route 53 zone -> ISSUED. AWS: DNS validation typically takes minutes and
# "might need to wait up to several hours" (AWS Knowledge Center, acm-certificate-pending-validation);
# aws-cdk waits up to 9.5 min (aws/aws-cdk 5b5ca48, #2914), terraform up to 45 min
# (hashicorp/terraform-provider-aws#9338). Estimate: 4 min.
CERT_VALIDATION_SECONDS = 240.0
# An ISSUED certificate is not known to ELB at once: CreateListener/ModifyListener answer
# CertificateNotFound (hashicorp/terraform#10180 retries it up to 5 min;
# hashicorp/terraform-provider-aws#17505). Estimate: 20 s.
CERT_PROPAGATION_SECONDS = 20.0
# DeleteCertificate answers ResourceInUseException for a while after the last listener using it went
# (terraform-provider-aws acm certificate.go retries it, certificateCrossServicePropagationTimeout).
# Estimate: 10 s.
CERT_RELEASE_SECONDS = 10.0
# AssociateWebACL right after CreateWebACL: WAFUnavailableEntityException
# (hashicorp/terraform-provider-aws#17527, #29080). Estimate: 30 s.
WAF_ACL_USABLE_SECONDS = 30.0
# DeleteWebACL right after DisassociateWebACL (or the ALB's deletion): WAFAssociatedItemException
# (terraform-provider-aws wafv2 web_acl.go retries DeleteWebACL on it, 5 min). Estimate: 20 s.
WAF_DISASSOCIATE_SECONDS = 20.0
# CloudFront (issue 26, edge.cdn): a distribution is InProgress after CreateDistribution and after each
# UpdateDistribution (a disable too) until its configuration is at every edge location, then Deployed
# (CloudFront Developer Guide, "Update a distribution": the status goes from InProgress to Deployed when
# propagation is complete; it said "can take 15 minutes" in 2013, AWS has since made it minutes);
# observed 3-10 min (the project's shared notes on AWS timings; terraform-provider-aws waits for Deployed,
# `wait_for_deployment`). Estimate: 5 min for each.
CLOUDFRONT_DEPLOY_SECONDS = 300.0
# `pause` and `resume` (issue 14): Aurora stop/start and an Auto Scaling group's scale-in to 0. The first two
# are estimates (docs/aws-latency.md marks them est). AWS: "You can stop a DB cluster only when it and its
# instances are available"; a stopped cluster takes no modification, no instance added or removed and no
# delete until started (Aurora User Guide, aurora-cluster-stop-start: limitations; StopDBCluster/StartDBCluster
# API reference: InvalidDBClusterStateFault, InvalidDBInstanceState). No duration is published: the guide says
# the instances are stopped and started with the cluster; public start/stop schedulers (aws-solutions/instance-
# scheduler-on-aws, sqlxpert/lights-off-aws) poll for minutes. Estimates: stopping 5 min (shutting the instances
# down, no storage work); starting 8 min, as long as one Aurora instance coming up (DB_INSTANCE_CREATE_SECONDS;
# the engine itself says ~10 min, steps/database.py START_MINUTES).
CLUSTER_STOP_SECONDS = 300.0
CLUSTER_START_SECONDS = 480.0
# A scale-in: the ASG deregisters the instance from its target groups and waits out their deregistration
# delay (docs/aws-latency.md: 300 s by default, "as configured": the target group's
# deregistration_delay.timeout_seconds, which threetier/blocks/balancing.py sets to 30 s), then terminates it
# (EC2_TERMINATE_SECONDS); only then is it gone from DescribeAutoScalingGroups (ASG user guide, "Amazon EC2
# Auto Scaling instance lifecycle", Terminating -> Terminated; ELB user guide, deregistration delay).
DEREGISTRATION_DELAY_DEFAULT_SECONDS = 300.0
# A deploy (issue 25). Estimates (docs/aws-latency.md marks them est):
# ModifyListener's new forward weights are followed by new requests "a few seconds" after the call (the ALB's
# nodes take the new configuration; open keep-alive connections stay on their target): 5 s. Until then the
# old weights hold (bench/model/load.py).
LISTENER_CHANGE_SECONDS = 5.0
# A custom app's install step on the builder (the bootstrap's `run_install`, config `app.install`), by what it
# runs: npm/yarn/pnpm as the demo's `npm ci` (NPM_CI_SECONDS["app"], a few packages); pip installing a short
# requirements file into the code's directory, 20 s; anything else, 30 s.
INSTALL_SECONDS = {"npm": 30.0, "pip": 20.0, "other": 30.0}

# The creates that cost NETWORK_CREATE_SECONDS instead of CALL_SECONDS (all of them EC2's).
NETWORK_CREATES = frozenset({
    "CreateVpc", "CreateSubnet", "CreateInternetGateway", "AttachInternetGateway", "CreateRouteTable",
    "CreateRoute", "ReplaceRoute", "AssociateRouteTable", "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
})
