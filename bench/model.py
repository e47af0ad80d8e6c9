"""A model of real AWS in time, over moto, on a virtual clock.

moto answers "available" at once, deletes what real AWS would refuse and runs
no user data. `LatencyModel(aws, clock)` hooks the botocore clients of ONE
`threetier.aws.Aws` object (botocore events: before-parameter-build,
before-call, after-call) and makes moto behave as AWS does in time. Every
figure is the "model" column of shared/aws-latency.md ("How long AWS takes:
the latency model for benchmarks"); the source of each is cited there. Part 7's
front door (ACM, Route 53, WAFv2) has no figure there: those are estimates,
each with its public source beside its constant (CERT_*, WAF_*).

Time: the model keeps its own reference to the base clock it was given and
charges every call's cost with `clock.sleep(cost)` on that clock, never
through `aws.clock` (an engine may wrap `aws.clock` with a scheduler), and
reads time with `clock.now()`. Calls may come from several threads: the
model's state is guarded by one lock.

What it enforces (aws-latency.md, "Real-AWS rules a faithful model enforces"):
- every call costs 80 ms ("One API call"), ACM, Route 53 and WAFv2 ones too
  (their clients are hooked like the others); creates of VPC, subnet, IGW, route
  table, route, security group, rule and association cost 2 s;
- an instance profile is usable by RunInstances 8 s after CreateInstanceProfile;
- NAT gateways: pending 100 s, deleting 60 s; CreateRoute to one created < 5 s
  ago: InvalidNatGatewayID.NotFound; its EIP cannot be released until deleted;
- Aurora: cluster creating 60 s; CreateDBInstance refused until the cluster is
  available; instances creating 480 s each (in parallel), deleting 480 s;
  the cluster cannot be deleted while it has instances; deleting 60 s (+120 s
  with a final snapshot);
- Aurora stop and start (`pause`, `resume`; estimates, see CLUSTER_STOP_SECONDS):
  StopDBCluster only of an available cluster whose instances are available
  (a violation otherwise), then cluster and instances `stopping` 300 s, then
  `stopped`; StartDBCluster of a stopped cluster, then `starting` 480 s, then
  `available` (a cluster still stopping: a violation; one starting or available:
  a plain refusal); while stopping, stopped or starting, ModifyDBCluster,
  ModifyDBInstance, CreateDBInstance, DeleteDBInstance and DeleteDBCluster are
  refused with InvalidDBClusterStateFault (a violation);
- EC2: pending 30 s; shutting-down 60 s after terminate;
- builders: user data starts 30 s after `running` and is charged action by
  action from the rendered script ("Builder bootstrap, action by action"); it
  needs the internet (IGW with a public IP, or an available NAT gateway) when
  it starts, unless the script calls `wait_for_network` (common.sh) before any
  other step that needs it: then it waits (up to 15 min) for a NAT gateway
  still pending, and only a subnet with no way out at all is a violation (and,
  with health_needs_database=True, its health wait the database writer named
  in its user data: off, as the app's /health is liveness); the SSM agent
  registers 40 s after `running`, not before the subnet's way out is there;
  Run Command answers InProgress until the bootstrap is over;
- CreateImage needs a running instance; images pending 300 s; a new AMI ID is
  unknown to DescribeImages for 1 s;
- ALBs provisioning 150 s; a deleted ALB's ENIs hold its subnets and security
  groups 60 s;
- Auto Scaling: instances InService 110 s after CreateAutoScalingGroup, and
  after an UpdateAutoScalingGroup/SetDesiredCapacity that adds instances;
  targets healthy 30 s after max(InService, their ALB active); instances a
  scale-in removes stay in the group (Terminating) for the target group's
  deregistration delay (its attribute; 300 s by default) + 60 s shutting-down;
  a deleted group stays visible ("Delete in progress") 150 s and holds its
  subnets and groups;
- ACM, DNS validation: DescribeCertificate shows no validation ResourceRecord
  for 5 s after RequestCertificate; a certificate is PENDING_VALIDATION until
  the exact CNAMEs it shows (name and value) are in a Route 53 zone (written by
  ChangeResourceRecordSets, or there before the request), ISSUED 240 s later
  (DescribeCertificate and ListCertificates answer the model's status, not
  moto's MOTO_ACM_VALIDATION_WAIT one); CreateListener / ModifyListener /
  AddListenerCertificates with a certificate not ISSUED: UnsupportedCertificate
  (a violation), and CertificateNotFound for 20 s after it is ISSUED;
  DeleteCertificate: ResourceInUseException while a listener uses it (a
  violation) and for 10 s after the last one went;
- WAFv2: AssociateWebACL: WAFNonexistentItemException while the ALB is
  provisioning (a violation), WAFUnavailableEntityException for 30 s after
  CreateWebACL; DeleteWebACL: WAFAssociatedItemException while associated (a
  violation) and for 20 s after DisassociateWebACL or the ALB's deletion;
- dependency refusals: DeleteSubnet / DeleteSecurityGroup while ENIs remain,
  DeleteSecurityGroup referenced by another group, DetachInternetGateway while
  public addresses are mapped, DeleteVpc with subnets, groups, route tables or
  an attached gateway, DeleteDBSubnetGroup while a cluster uses it.

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

import base64
import copy
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from threetier.aws import PART_TAG, Aws, Clock

# -- figures: the "model" column of shared/aws-latency.md ------------------------------
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
# Part 7's front door (ACM, Route 53, WAFv2). aws-latency.md has no figures for these: each is an
# estimate, from the public source named beside it.
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
# `pause` and `resume` (issue 14): Aurora stop/start and an Auto Scaling group's scale-in to 0. aws-latency.md
# has no figure for the first two: estimates. AWS: "You can stop a DB cluster only when it and its instances
# are available"; a stopped cluster takes no modification, no instance added or removed and no delete until
# started (Aurora User Guide, aurora-cluster-stop-start: limitations; StopDBCluster/StartDBCluster API
# reference: InvalidDBClusterStateFault, InvalidDBInstanceState). No duration is published: the guide says the
# instances are stopped and started with the cluster; public start/stop schedulers (aws-solutions/instance-
# scheduler-on-aws, sqlxpert/lights-off-aws) poll for minutes. Estimates: stopping 5 min (shutting the instances
# down, no storage work); starting 8 min, as long as one Aurora instance coming up (DB_INSTANCE_CREATE_SECONDS;
# the engine itself says ~10 min, steps/database.py START_MINUTES).
CLUSTER_STOP_SECONDS = 300.0
CLUSTER_START_SECONDS = 480.0
# A scale-in: the ASG deregisters the instance from its target groups and waits out their deregistration
# delay (aws-latency.md: 300 s by default, "as configured": the target group's
# deregistration_delay.timeout_seconds, which steps/balancing.py sets to 30 s), then terminates it
# (EC2_TERMINATE_SECONDS); only then is it gone from DescribeAutoScalingGroups (ASG user guide, "Amazon EC2
# Auto Scaling instance lifecycle", Terminating -> Terminated; ELB user guide, deregistration delay).
DEREGISTRATION_DELAY_DEFAULT_SECONDS = 300.0

NETWORK_CREATES = frozenset({
    "CreateVpc", "CreateSubnet", "CreateInternetGateway", "AttachInternetGateway", "CreateRouteTable",
    "CreateRoute", "ReplaceRoute", "AssociateRouteTable", "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
})
HOOKED_SERVICES = ("ec2", "rds", "elbv2", "autoscaling", "ssm", "iam", "s3", "sts", "acm", "route53", "wafv2")

# Rules whose breach is a violation; `relax` takes these names.
RULES = {
    "db-instance-before-cluster": "CreateDBInstance while its cluster is not available",
    "image-of-non-running": "CreateImage of an instance that is not running",
    "asg-image-not-available": "CreateAutoScalingGroup whose launch template's AMI is not available",
    "bootstrap-offline": "a builder's bootstrap started without a way to the internet",
    "bootstrap-no-database": "the app builder's health check found no available database writer",
    "release-eip-of-nat": "ReleaseAddress while its NAT gateway exists",
    "detach-igw-mapped": "DetachInternetGateway while public addresses are mapped",
    "delete-subnet-in-use": "DeleteSubnet while ENIs remain in it",
    "delete-sg-in-use": "DeleteSecurityGroup while ENIs use it",
    "delete-sg-referenced": "DeleteSecurityGroup referenced by another group's rule",
    "delete-vpc-dependencies": "DeleteVpc with subnets, groups, route tables or a gateway",
    "delete-cluster-with-instances": "DeleteDBCluster while it has instances",
    "delete-subnet-group-in-use": "DeleteDBSubnetGroup while a cluster uses it",
    "listener-on-pending-certificate": "CreateListener/ModifyListener with a certificate that is not ISSUED",
    "delete-certificate-in-use": "DeleteCertificate while a listener uses it",
    "waf-on-provisioning-alb": "AssociateWebACL with a load balancer still provisioning",
    "delete-web-acl-associated": "DeleteWebACL while it is associated with a resource",
    "stop-cluster-not-available": "StopDBCluster while the cluster or one of its instances is not available",
    "start-cluster-stopping": "StartDBCluster while the cluster is still stopping",
    "change-stopped-cluster": "ModifyDBCluster/ModifyDBInstance/CreateDBInstance/DeleteDBInstance/DeleteDBCluster "
                              "while the cluster is stopping, stopped or starting",
}


class VirtualClock(Clock):
    """Virtual seconds: `sleep` advances at once. Thread-safe."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = float(start)
        self._lock = threading.Lock()
        super().__init__(sleep=self.advance, now=self._now)

    def _now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += max(float(seconds), 0.0)


class _Response:
    """What a before-call handler returns as the HTTP response of an answer it made itself."""

    def __init__(self, status: int):
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""
        self.raw = None


def refusal(code: str, message: str, status: int = 400) -> tuple[_Response, dict[str, Any]]:
    return _Response(status), {"Error": {"Code": code, "Message": message},
                               "ResponseMetadata": {"HTTPStatusCode": status}}


def answer(parsed: dict[str, Any]) -> tuple[_Response, dict[str, Any]]:
    return _Response(200), {**parsed, "ResponseMetadata": {"HTTPStatusCode": 200}}


@dataclass(frozen=True)
class Refusal:
    time: float
    service: str
    operation: str
    code: str
    message: str
    rule: str | None          # a RULES key when the caller broke a rule, else None (to be retried)
    violation: bool

    def __str__(self) -> str:
        return f"{self.operation}: {self.code}: {self.message}"


@dataclass
class Span:
    """One modeled operation: requested -> ready (or delete requested -> gone)."""
    part: int | None
    kind: str                 # e.g. "NAT gateway", "Aurora writer", "builder", "AMI"
    name: str
    start: float
    end: float | None         # None: not over (yet)
    action: str = "create"    # create | delete | stop | start
    segments: list[tuple[str, float, float]] = field(default_factory=list)  # (label, start, end)
    failed: str | None = None


# -- user data --------------------------------------------------------------------------
_FUNCTION_START = re.compile(r"^\s*(?:function\s+)?[A-Za-z_][A-Za-z0-9_]*\s*\(\)\s*\{")
_HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?")
_ACTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("network", re.compile(r"\bwait_for_network\b")),  # waits for the way out: no time of its own
    ("dnf", re.compile(r"\b(?:install_packages|install_node)\b|\bdnf\b[^\n]*\binstall\b")),
    ("s3", re.compile(r"\bfetch_tier\b|\baws\s+s3\s+(?:cp|sync)\b")),
    ("npm ci", re.compile(r"npm\S*\"?\s+ci\b", re.IGNORECASE)),
    ("build", re.compile(r"npm\S*\"?\s+run\s+build\b|\bvite\s+build\b", re.IGNORECASE)),
    ("systemctl enable", re.compile(r"\bsystemctl\s+enable\b")),
    ("health", re.compile(r"\bwait_healthy\b")),
)


def script_body(user_data: str) -> list[str]:
    """The lines of a shell script that run, without function definitions (the spliced common.sh
    defines install_packages, fetch_tier ...: only their CALLS cost time), heredocs and comments."""
    lines, body = user_data.splitlines(), []
    depth, heredoc = 0, None
    for line in lines:
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        stripped = line.strip()
        if depth:
            depth += line.count("{") - line.count("}")
            depth = max(depth, 0)
            continue
        if _FUNCTION_START.match(line):
            depth = max(line.count("{") - line.count("}"), 0)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        match = _HEREDOC.search(line)
        if match:
            heredoc = match.group(1)
        body.append(line)
    return body


def bootstrap_actions(user_data: str, tier: str) -> list[tuple[str, float]]:
    """What the rendered user data does, in order, each action with its modeled seconds."""
    actions: list[tuple[str, float]] = []
    for line in script_body(user_data):
        for label, pattern in _ACTIONS:
            for _ in pattern.finditer(line):
                seconds = {"dnf": DNF_SECONDS, "s3": S3_COPY_SECONDS, "npm ci": NPM_CI_SECONDS.get(tier, 90.0),
                           "build": BUILD_SECONDS, "systemctl enable": SYSTEMD_ENABLE_SECONDS,
                           "health": 0.0, "network": 0.0}[label]
                actions.append((label, seconds))
    return actions


def decode_user_data(value: str | bytes | None) -> str:
    if not value:
        return ""
    text = value.decode() if isinstance(value, bytes) else value
    try:
        decoded = base64.b64decode(text, validate=True).decode()
        if decoded.lstrip().startswith(("#!", "#cloud", "Content-Type")):
            return decoded
    except (ValueError, UnicodeDecodeError):
        pass
    return text


def _tags_of(params: dict[str, Any]) -> list[dict[str, Any]]:
    tags = list(params.get("Tags") or [])
    for spec in params.get("TagSpecifications") or []:
        tags += spec.get("Tags") or []
    return tags


def _tag(tags: Iterable[dict[str, Any]], key: str) -> str | None:
    return next((t.get("Value") for t in tags if t.get("Key") == key), None)


def _override(items: Iterable[dict[str, Any]], id_key: str, field_name: str, state_of: Callable[[str], Any],
              wrap: Callable[[Any], Any] = lambda state: state) -> None:
    """Put the modeled state into each described item the model knows (unknown ones keep moto's)."""
    for item in items:
        state = state_of(item[id_key])
        if state is not None:
            item[field_name] = wrap(state)


# -- records ------------------------------------------------------------------------------
@dataclass
class _Nat:
    id: str
    name: str
    part: int | None
    subnet: str
    vpc: str
    allocation: str
    created: float
    deleted: float | None = None


@dataclass
class _Cluster:
    id: str
    part: int | None
    created: float
    endpoint: str = ""
    subnet_group: str = ""
    security_groups: tuple[str, ...] = ()
    deleted: float | None = None
    delete_seconds: float = CLUSTER_DELETE_SECONDS
    gone: bool = False
    stop_requested: float | None = None    # the last StopDBCluster
    start_requested: float | None = None   # the last StartDBCluster after it

    @property
    def available_at(self) -> float:
        return self.created + CLUSTER_CREATE_SECONDS

    def power(self, t: float) -> str | None:
        """stopping, stopped or starting at `t` (None: running, as far as stop and start go)."""
        if self.stop_requested is None:
            return None
        if self.start_requested is None:
            return "stopping" if t < self.stop_requested + CLUSTER_STOP_SECONDS else "stopped"
        return "starting" if t < self.start_requested + CLUSTER_START_SECONDS else None


@dataclass
class _DbInstance:
    id: str
    cluster: str
    part: int | None
    requested: float
    ready: float
    deleted: float | None = None
    gone: bool = False


@dataclass
class _Instance:
    id: str
    name: str
    part: int | None
    tier: str
    subnet: str
    vpc: str
    security_groups: tuple[str, ...]
    public: bool
    user_data: str
    launched: float
    terminated: float | None = None
    actions: list[tuple[str, float]] = field(default_factory=list)
    # the bootstrap, once judged: (segments, done_at, failed_at, reason)
    outcome: tuple[list[tuple[str, float, float]], float | None, float | None, str | None] | None = None

    @property
    def running_at(self) -> float:
        return self.launched + EC2_PENDING_SECONDS

    @property
    def bootstrap_start(self) -> float:
        return self.running_at + USER_DATA_START_SECONDS


@dataclass
class _Image:
    id: str
    name: str
    part: int | None
    instance: str
    created: float


@dataclass
class _LoadBalancer:
    arn: str
    name: str
    part: int | None
    vpc: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    internet_facing: bool
    created: float
    deleted: float | None = None


@dataclass
class _Group:
    name: str
    part: int | None
    vpc: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    public: bool
    target_groups: tuple[str, ...]
    created: float
    deleted: float | None = None
    gone: bool = False
    launched: float | None = None          # the last scale-out (None: its creation)
    draining: dict[str, tuple[dict[str, Any], float]] = field(default_factory=dict)  # id -> (as moto had it, gone at)
    drains: list[tuple[float, float]] = field(default_factory=list)  # every scale-in: (requested, last one gone)

    @property
    def in_service_at(self) -> float:
        return (self.created if self.launched is None else self.launched) + ASG_IN_SERVICE_SECONDS


@dataclass
class _Certificate:
    arn: str
    domain: str
    part: int | None
    requested: float
    records: frozenset[tuple[str, str]]  # its validation CNAMEs: (name., value.), lower case
    validated: float | None = None       # from when all its CNAMEs were in a zone (validation started)
    released: float | None = None        # when the last listener using it went
    in_use: bool = False
    deleted: float | None = None

    @property
    def issued(self) -> float | None:
        return None if self.validated is None else self.validated + CERT_VALIDATION_SECONDS


@dataclass
class _WebAcl:
    arn: str
    name: str
    part: int | None
    created: float
    released: float | None = None        # when its last association went
    deleted: float | None = None


def _fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


class LatencyModel:
    """Hooks the clients of one `Aws` object; see the module docstring.

    model = LatencyModel(aws, clock); ...; model.violations, model.refusals, model.spans
    """

    def __init__(self, aws: Aws, clock: Clock | None = None, *, relax: Iterable[str] = (),
                 health_needs_database: bool = False):
        unknown = set(relax) - set(RULES)
        if unknown:
            raise ValueError(f"unknown rules {sorted(unknown)}; rules: {', '.join(RULES)}")
        self.aws = aws
        self.clock = clock or aws.clock  # the base clock: never aws.clock later, an engine may wrap it
        self.relax = frozenset(relax)
        # The app's /health is liveness (no database) since the app answers /ready for that; set this
        # to model a tier whose bootstrap health wait needs the database writer named in its user data.
        self.health_needs_database = health_needs_database
        self.lock = threading.RLock()
        self.refusals: list[Refusal] = []
        self.relaxed: list[str] = []          # rule breaches let through because of `relax`
        self.calls = 0
        self.call_seconds = 0.0
        self.polls: dict[str, int] = {}        # NAT states seen by DescribeNatGateways (tests/awsmodel.py)
        self.profiles: dict[str, float] = {}   # instance profile name/arn -> created
        self.nats: dict[str, _Nat] = {}
        self.clusters: dict[str, _Cluster] = {}
        self.db_instances: dict[str, _DbInstance] = {}
        self.instances: dict[str, _Instance] = {}
        self.images: dict[str, _Image] = {}
        self.load_balancers: dict[str, _LoadBalancer] = {}
        self.listeners: dict[str, set[str]] = {}   # target group ARN -> load balancer ARNs
        self.groups: dict[str, _Group] = {}
        self.commands: dict[tuple[str, str], float] = {}  # (command, instance) -> sent
        self.certificates: dict[str, _Certificate] = {}
        self.cnames: dict[tuple[str, str], float] = {}     # CNAMEs written to Route 53: (name., value.) -> when
        self.web_acls: dict[str, _WebAcl] = {}
        self.associations: dict[str, str] = {}             # resource ARN -> web ACL ARN
        self._deferred: list[tuple[float, str, Callable[[], None]]] = []
        self._raw: dict[str, Any] = {}
        self._hooked: set[int] = set()
        self._before: dict[tuple[str, str], Callable[..., Any]] = {
            ("ec2", "RunInstances"): self._run_instances,
            ("ec2", "CreateRoute"): self._create_route,
            ("ec2", "ReplaceRoute"): self._create_route,
            ("ec2", "ReleaseAddress"): self._release_address,
            ("ec2", "DetachInternetGateway"): self._detach_igw,
            ("ec2", "DeleteSubnet"): self._delete_subnet,
            ("ec2", "DeleteSecurityGroup"): self._delete_security_group,
            ("ec2", "DeleteVpc"): self._delete_vpc,
            ("ec2", "CreateImage"): self._create_image,
            ("ec2", "DescribeImages"): self._describe_images_before,
            ("rds", "CreateDBInstance"): self._create_db_instance,
            ("rds", "DeleteDBInstance"): self._delete_db_instance,
            ("rds", "DeleteDBCluster"): self._delete_db_cluster,
            ("rds", "DeleteDBSubnetGroup"): self._delete_db_subnet_group,
            ("rds", "StopDBCluster"): self._stop_db_cluster,
            ("rds", "StartDBCluster"): self._start_db_cluster,
            ("rds", "ModifyDBCluster"): self._change_db_cluster,
            ("rds", "ModifyDBInstance"): self._change_db_instance,
            ("autoscaling", "UpdateAutoScalingGroup"): self._resize_asg_before,
            ("autoscaling", "SetDesiredCapacity"): self._resize_asg_before,
            ("autoscaling", "CreateAutoScalingGroup"): self._create_asg_before,
            ("autoscaling", "DeleteAutoScalingGroup"): self._delete_asg,
            ("ssm", "SendCommand"): self._send_command_before,
            ("ssm", "GetCommandInvocation"): self._get_command_invocation,
            ("elbv2", "DeleteLoadBalancer"): self._delete_load_balancer_before,
            ("elbv2", "CreateListener"): self._listener_certificates_before,
            ("elbv2", "ModifyListener"): self._listener_certificates_before,
            ("elbv2", "AddListenerCertificates"): self._listener_certificates_before,
            ("acm", "DeleteCertificate"): self._delete_certificate,
            ("wafv2", "AssociateWebACL"): self._associate_web_acl,
            ("wafv2", "DisassociateWebACL"): self._disassociate_web_acl_before,
            ("wafv2", "DeleteWebACL"): self._delete_web_acl,
        }
        self._after: dict[tuple[str, str], Callable[..., None]] = {
            ("iam", "CreateInstanceProfile"): self._profile_created,
            ("ec2", "CreateNatGateway"): self._nat_created,
            ("ec2", "DeleteNatGateway"): self._nat_deleted,
            ("ec2", "DescribeNatGateways"): self._describe_nats,
            ("ec2", "RunInstances"): self._instances_launched,
            ("ec2", "DescribeInstances"): self._describe_instances,
            ("ec2", "TerminateInstances"): self._instances_terminated,
            ("ec2", "CreateImage"): self._image_created,
            ("ec2", "DescribeImages"): self._describe_images,
            ("rds", "CreateDBCluster"): self._cluster_created,
            ("rds", "DescribeDBClusters"): self._describe_clusters,
            ("rds", "CreateDBInstance"): self._db_instance_created,
            ("rds", "DescribeDBInstances"): self._describe_db_instances,
            ("elbv2", "CreateLoadBalancer"): self._load_balancer_created,
            ("elbv2", "DescribeLoadBalancers"): self._describe_load_balancers,
            ("elbv2", "DeleteLoadBalancer"): self._load_balancer_deleted,
            ("elbv2", "CreateListener"): self._listener_created,
            ("elbv2", "DescribeTargetHealth"): self._describe_target_health,
            ("autoscaling", "CreateAutoScalingGroup"): self._asg_created,
            ("autoscaling", "DescribeAutoScalingGroups"): self._describe_asgs,
            ("autoscaling", "UpdateAutoScalingGroup"): self._asg_resized,
            ("autoscaling", "SetDesiredCapacity"): self._asg_resized,
            ("rds", "StopDBCluster"): self._cluster_stopped,
            ("rds", "StartDBCluster"): self._cluster_started,
            ("ssm", "SendCommand"): self._command_sent,
            ("elbv2", "ModifyListener"): self._certificate_users_changed,
            ("elbv2", "DeleteListener"): self._certificate_users_changed,
            ("elbv2", "AddListenerCertificates"): self._certificate_users_changed,
            ("elbv2", "RemoveListenerCertificates"): self._certificate_users_changed,
            ("acm", "RequestCertificate"): self._certificate_requested,
            ("acm", "DescribeCertificate"): self._describe_certificate,
            ("acm", "ListCertificates"): self._list_certificates,
            ("acm", "DeleteCertificate"): self._certificate_deleted,
            ("route53", "ChangeResourceRecordSets"): self._records_changed,
            ("wafv2", "CreateWebACL"): self._web_acl_created,
            ("wafv2", "AssociateWebACL"): self._web_acl_associated,
            ("wafv2", "DisassociateWebACL"): self._web_acl_disassociated,
            ("wafv2", "DeleteWebACL"): self._web_acl_deleted,
        }
        for service in HOOKED_SERVICES:
            self._hook(aws.client(service))
        # Clients the Aws object makes later (scan's services ...) are charged too.
        original_client = aws.client

        def client(service: str) -> Any:
            made = original_client(service)
            self._hook(made)
            return made
        aws.client = client  # type: ignore[method-assign]

    # -- installation -------------------------------------------------------------------
    def _hook(self, client: Any) -> None:
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))
        events = client.meta.events
        events.register_first("before-parameter-build", self._keep_params)
        events.register_first("before-call", self._before_call)
        events.register_first("after-call", self._after_call)
        # After _keep_params and the Aws object's own record of the parameters as the caller gave them
        # (botocore runs an operation's own handlers before the service-wide ones).
        events.register_last("before-parameter-build", self._rewrite_params)

    def raw(self, service: str) -> Any:
        """The model's own, unhooked view of moto (not counted as a call of the engine)."""
        if service not in self._raw:
            made = boto3.client(service, region_name=self.aws.region)  # type: ignore[call-overload]  # a run-time name
            made._threetier_bench_internal = True  # call counters skip these
            self._raw[service] = made
        return self._raw[service]

    @property
    def now(self) -> float:
        return self.clock.now()

    @property
    def violations(self) -> list[str]:
        return [str(r) for r in self.refusals if r.violation]

    def rule_hits(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.refusals:
            if r.rule:
                counts[r.rule] = counts.get(r.rule, 0) + 1
        return counts

    # -- dispatch -------------------------------------------------------------------------
    @staticmethod
    def _op(model: Any) -> tuple[str, str]:
        return model.service_model.service_name, model.name

    def _keep_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = copy.deepcopy(params)

    def _rewrite_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """What moto is sent, when its answer would be wrong: ListCertificates filters by moto's status,
        so moto is asked for all and the after-call filters by the model's."""
        if self._op(model) == ("acm", "ListCertificates"):
            params.pop("CertificateStatuses", None)

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        service, operation = self._op(model)
        cost = NETWORK_CREATE_SECONDS if service == "ec2" and operation in NETWORK_CREATES else CALL_SECONDS
        with self.lock:
            self.clock.sleep(cost)  # the base clock, on purpose (see the module docstring)
            self.calls += 1
            self.call_seconds += cost
            self._tick()
            handler = self._before.get((service, operation))
            if handler is None:
                return None
            params = context.get("bench_params", {})
            result = handler(params, context=context, service=service, operation=operation)
            if result is not None:
                context["bench_answered"] = True
            return result

    def _after_call(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], http_response: Any = None,
                    **_: Any) -> None:
        if context.get("bench_answered") or "Error" in parsed:
            return
        if http_response is not None and getattr(http_response, "status_code", 200) >= 300:
            return
        handler = self._after.get(self._op(model))
        if handler is None:
            return
        with self.lock:
            handler(parsed, params=context.get("bench_params", {}), context=context)

    def refuse(self, code: str, message: str, *, operation: str, service: str = "ec2",
               rule: str | None = None) -> Any:
        """Record and return a refusal; a `rule` makes it a violation (unless relaxed: then None, let through)."""
        if rule is not None and rule in self.relax:
            self.relaxed.append(f"{rule}: {operation}: {message}")
            return None
        self.refusals.append(Refusal(self.now, service, operation, code, message, rule, rule is not None))
        return refusal(code, message)

    def violation(self, rule: str, operation: str, message: str, service: str = "ec2") -> None:
        """A breach that real AWS would not refuse at the call (it fails later)."""
        if rule in self.relax:
            self.relaxed.append(f"{rule}: {operation}: {message}")
            return
        self.refusals.append(Refusal(self.now, service, operation, rule, message, rule, True))

    def defer(self, due: float, what: str, action: Callable[[], None]) -> None:
        self._deferred.append((due, what, action))
        self._deferred.sort(key=lambda d: d[0])

    def _tick(self) -> None:
        """Carry out what has come due: deferred deletes, bootstrap outcomes."""
        now = self.now
        while self._deferred and self._deferred[0][0] <= now:
            _, _, action = self._deferred.pop(0)
            action()
        for instance in self.instances.values():
            if instance.outcome is None and instance.user_data and now >= instance.bootstrap_start:
                self._judge_bootstrap(instance)

    def settle(self, until: float | None = None) -> None:
        """Carry out everything deferred (e.g. at the end of a run), without advancing the clock."""
        with self.lock:
            while self._deferred and (until is None or self._deferred[0][0] <= until):
                _, _, action = self._deferred.pop(0)
                action()

    def _part(self, params: dict[str, Any]) -> int | None:
        value = _tag(_tags_of(params), PART_TAG)
        if value and value.isdigit():
            return int(value)
        match = re.match(r"Part (\d+)", self.aws.part or "")
        return int(match.group(1)) if match else None

    # -- IAM ------------------------------------------------------------------------------
    def _profile_created(self, parsed: dict[str, Any], **_: Any) -> None:
        profile = parsed.get("InstanceProfile", {})
        for key in (profile.get("InstanceProfileName"), profile.get("Arn")):
            if key:
                self.profiles.setdefault(key, self.now)

    # -- NAT gateways ---------------------------------------------------------------------
    def nat_state(self, nat_id: str, at: float | None = None) -> str:
        t = self.now if at is None else at
        nat = self.nats.get(nat_id)
        if nat is None:
            return "available"
        if nat.deleted is not None and t >= nat.deleted:
            return "deleted" if t - nat.deleted >= NAT_DELETE_SECONDS else "deleting"
        return "pending" if t - nat.created < NAT_CREATE_SECONDS else "available"

    @property
    def created(self) -> dict[str, float]:  # tests/awsmodel.py's view
        return {n.id: n.created for n in self.nats.values()}

    @property
    def deleted(self) -> dict[str, float]:
        return {n.id: n.deleted for n in self.nats.values() if n.deleted is not None}

    def _nat_created(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        nat = parsed.get("NatGateway")
        if not nat:
            return
        if nat["NatGatewayId"] not in self.nats:
            self.nats[nat["NatGatewayId"]] = _Nat(
                nat["NatGatewayId"], _tag(_tags_of(params), "Name") or nat["NatGatewayId"], self._part(params),
                nat.get("SubnetId", params.get("SubnetId", "")), nat.get("VpcId", ""),
                params.get("AllocationId", ""), self.now)
        nat["State"] = "pending"

    def _nat_deleted(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        nat_id = parsed.get("NatGatewayId") or params.get("NatGatewayId")
        if not nat_id:
            return
        if nat_id not in self.nats:  # made before the model was installed
            found = self.raw("ec2").describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
            n = found[0] if found else {}
            self.nats[nat_id] = _Nat(nat_id, _tag(n.get("Tags", []), "Name") or nat_id,
                                     int(_tag(n.get("Tags", []), PART_TAG) or 0) or None, n.get("SubnetId", ""),
                                     n.get("VpcId", ""), next((a.get("AllocationId", "") for a in
                                                              n.get("NatGatewayAddresses", [])), ""),
                                     created=-1e9)
        if self.nats[nat_id].deleted is None:
            self.nats[nat_id].deleted = self.now

    def _describe_nats(self, parsed: dict[str, Any], **_: Any) -> None:
        for nat in parsed.get("NatGateways", []):
            if nat["NatGatewayId"] in self.nats:
                nat["State"] = self.nat_state(nat["NatGatewayId"])
                self.polls[nat["State"]] = self.polls.get(nat["State"], 0) + 1

    def _live_nats(self) -> list[dict[str, Any]]:
        """NAT gateways that still exist in the model's time (moto's own state for the ones it did not see)."""
        live = []
        for nat in self.raw("ec2").describe_nat_gateways()["NatGateways"]:
            state = self.nat_state(nat["NatGatewayId"]) if nat["NatGatewayId"] in self.nats else nat["State"]
            if state in ("pending", "available", "deleting"):
                live.append(nat)
        return live

    def _create_route(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        nat = self.nats.get(params.get("NatGatewayId") or "")
        if nat and self.now - nat.created < NAT_ROUTE_VISIBLE_SECONDS:
            # Not a mistake of the caller: eventual consistency, to be retried.
            return self.refuse("InvalidNatGatewayID.NotFound", f"The natGateway ID '{nat.id}' does not exist",
                               operation=operation)
        return None

    def _release_address(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        allocation = params.get("AllocationId")
        for nat in self._live_nats():
            if any(a.get("AllocationId") == allocation for a in nat.get("NatGatewayAddresses", [])):
                return self.refuse("InvalidIPAddress.InUse", f"{allocation} is in use by {nat['NatGatewayId']}",
                                   operation=operation, rule="release-eip-of-nat")
        return None

    # -- ENIs: who holds subnets, security groups and public addresses ---------------------------
    def holders(self) -> list[dict[str, Any]]:
        """Everything with ENIs now: {what, vpc, subnets, security_groups, public}."""
        now, held = self.now, []
        for nat in self._live_nats():
            held.append({"what": f"NAT gateway {nat['NatGatewayId']}", "vpc": nat.get("VpcId"),
                         "subnets": {nat.get("SubnetId")}, "security_groups": set(), "public": True})
        seen_lbs = set()
        for lb in self.load_balancers.values():
            seen_lbs.add(lb.arn)
            if lb.deleted is None or now - lb.deleted < ALB_ENI_RELEASE_SECONDS:
                held.append({"what": f"load balancer {lb.name}", "vpc": lb.vpc, "subnets": set(lb.subnets),
                             "security_groups": set(lb.security_groups), "public": lb.internet_facing})
        for lb in self.raw("elbv2").describe_load_balancers()["LoadBalancers"]:
            if lb["LoadBalancerArn"] not in seen_lbs:
                held.append({"what": f"load balancer {lb['LoadBalancerName']}", "vpc": lb.get("VpcId"),
                             "subnets": {z.get("SubnetId") for z in lb.get("AvailabilityZones", [])},
                             "security_groups": set(lb.get("SecurityGroups", [])),
                             "public": lb.get("Scheme") == "internet-facing"})
        for group in self.groups.values():
            if not group.gone:
                held.append({"what": f"instances of Auto Scaling group {group.name}", "vpc": group.vpc,
                             "subnets": set(group.subnets), "security_groups": set(group.security_groups),
                             "public": group.public})
        for instance in self.instances.values():
            if instance.terminated is None or now - instance.terminated < EC2_TERMINATE_SECONDS:
                held.append({"what": f"instance {instance.id}", "vpc": instance.vpc, "subnets": {instance.subnet},
                             "security_groups": set(instance.security_groups), "public": instance.public})
        for reservation in self.raw("ec2").describe_instances()["Reservations"]:
            for i in reservation["Instances"]:
                group_name = _tag(i.get("Tags", []), "aws:autoscaling:groupName")
                if i["InstanceId"] in self.instances or group_name in self.groups or \
                        i["State"]["Name"] in ("terminated", "shutting-down"):
                    continue
                held.append({"what": f"instance {i['InstanceId']}", "vpc": i.get("VpcId"),
                             "subnets": {i.get("SubnetId")},
                             "security_groups": {g["GroupId"] for g in i.get("SecurityGroups", [])},
                             "public": bool(i.get("PublicIpAddress"))})
        subnet_groups: dict[str, list[str]] = {}
        for db in self.raw("rds").describe_db_instances()["DBInstances"]:
            record = self.db_instances.get(db["DBInstanceIdentifier"])
            if record is not None and record.gone:
                continue
            name = (db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName", "")
            if name and name not in subnet_groups:
                subnet_groups[name] = [s["SubnetIdentifier"] for s in (db.get("DBSubnetGroup") or {}).get("Subnets", [])]
            held.append({"what": f"DB instance {db['DBInstanceIdentifier']}",
                         "vpc": (db.get("DBSubnetGroup") or {}).get("VpcId"),
                         "subnets": set(subnet_groups.get(name, [])),
                         "security_groups": {g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])},
                         "public": bool(db.get("PubliclyAccessible"))})
        return held

    def _detach_igw(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        vpc = params.get("VpcId")
        mapped = [h["what"] for h in self.holders() if h["public"] and h["vpc"] == vpc]
        if mapped:
            return self.refuse("DependencyViolation", f"Network {vpc} has some mapped public address(es) "
                               f"({', '.join(mapped)})", operation=operation, rule="detach-igw-mapped")
        return None

    def _delete_subnet(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        subnet = params.get("SubnetId")
        using = [h["what"] for h in self.holders() if subnet in h["subnets"]]
        if using:
            return self.refuse("DependencyViolation", f"The subnet '{subnet}' has dependencies and cannot be "
                               f"deleted ({', '.join(using)})", operation=operation, rule="delete-subnet-in-use")
        return None

    def _delete_security_group(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        group = params.get("GroupId")
        for other in self.raw("ec2").describe_security_groups()["SecurityGroups"]:
            for permission in other.get("IpPermissions", []):
                if other["GroupId"] != group and any(p.get("GroupId") == group
                                                     for p in permission.get("UserIdGroupPairs", [])):
                    return self.refuse("DependencyViolation", f"resource {group} has a dependent object "
                                       f"({other['GroupId']})", operation=operation, rule="delete-sg-referenced")
        using = [h["what"] for h in self.holders() if group in h["security_groups"]]
        if using:
            return self.refuse("DependencyViolation", f"resource {group} has a dependent object "
                               f"({', '.join(using)})", operation=operation, rule="delete-sg-in-use")
        return None

    def _delete_vpc(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        vpc = params.get("VpcId")
        ec2 = self.raw("ec2")
        vpc_filter = [{"Name": "vpc-id", "Values": [vpc]}]
        subnets = ec2.describe_subnets(Filters=vpc_filter)["Subnets"]
        groups = [g for g in ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"]
                  if g["GroupName"] != "default"]
        tables = [t for t in ec2.describe_route_tables(Filters=vpc_filter)["RouteTables"]
                  if not any(a.get("Main") for a in t.get("Associations", []))]
        igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])
        if subnets or groups or tables or igws["InternetGateways"]:
            return self.refuse("DependencyViolation", f"The vpc '{vpc}' has dependencies and cannot be deleted",
                               operation=operation, rule="delete-vpc-dependencies")
        return None

    # -- EC2 instances and builders ------------------------------------------------------------
    def instance_state(self, instance_id: str, at: float | None = None) -> str | None:
        t = self.now if at is None else at
        instance = self.instances.get(instance_id)
        if instance is None:
            return None
        if instance.terminated is not None and t >= instance.terminated:
            return "terminated" if t - instance.terminated >= EC2_TERMINATE_SECONDS else "shutting-down"
        return "pending" if t < instance.running_at else "running"

    def _run_instances(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        profile = params.get("IamInstanceProfile") or {}
        key = profile.get("Arn") or profile.get("Name")
        created = self.profiles.get(key) if key else None
        if created is not None and self.now - created < PROFILE_USABLE_SECONDS:
            # Not a mistake of the caller: IAM is eventually consistent; retried.
            return self.refuse("InvalidParameterValue", f"Value ({key}) for parameter iamInstanceProfile.arn is "
                               f"invalid. Invalid IAM Instance Profile ARN", operation=operation)
        return None

    def _instances_launched(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        user_data = decode_user_data(params.get("UserData"))
        name = _tag(_tags_of(params), "Name") or ""
        tier = "web" if "web" in name else "app" if "app" in name else ""
        for i in parsed.get("Instances", []):
            subnet = i.get("SubnetId") or params.get("SubnetId", "")
            public = bool(i.get("PublicIpAddress")) or self._maps_public_ip(subnet)
            instance = _Instance(i["InstanceId"], name or i["InstanceId"], self._part(params), tier, subnet,
                                 i.get("VpcId", ""), tuple(params.get("SecurityGroupIds") or
                                                           [g["GroupId"] for g in i.get("SecurityGroups", [])]),
                                 public, user_data, self.now)
            if user_data:
                instance.actions = bootstrap_actions(user_data, tier)
            self.instances[instance.id] = instance
            i["State"] = {"Code": 0, "Name": "pending"}

    def _maps_public_ip(self, subnet: str) -> bool:
        if not subnet:
            return False
        found = self.raw("ec2").describe_subnets(SubnetIds=[subnet])["Subnets"]
        return bool(found and found[0].get("MapPublicIpOnLaunch"))

    def _describe_instances(self, parsed: dict[str, Any], **_: Any) -> None:
        codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
        for reservation in parsed.get("Reservations", []):
            for i in reservation.get("Instances", []):
                state = self.instance_state(i["InstanceId"])
                if state is not None:
                    i["State"] = {"Code": codes[state], "Name": state}

    def _instances_terminated(self, parsed: dict[str, Any], **_: Any) -> None:
        for change in parsed.get("TerminatingInstances", []):
            instance = self.instances.get(change["InstanceId"])
            if instance is not None and instance.terminated is None:
                instance.terminated = self.now
                change["CurrentState"] = {"Code": 32, "Name": "shutting-down"}

    def _internet_from(self, instance: _Instance, at: float) -> tuple[float | None, str | None]:
        """From when, at `at` or later, the instance's subnet reaches the internet by its routes as they
        are now: `at` itself, the time its NAT gateway becomes available, or None (never); and, unless
        it is `at`, why not then."""
        ec2 = self.raw("ec2")
        tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id",
                                                     "Values": [instance.subnet]}])["RouteTables"]
        if not tables and instance.vpc:
            tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [instance.vpc]},
                                                        {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        routes = [r for t in tables[:1] for r in t.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        if not routes:
            return None, f"subnet {instance.subnet} has no route to the internet"
        route = routes[0]
        if route.get("NatGatewayId"):
            nat_id = route["NatGatewayId"]
            state = self.nat_state(nat_id, at=at)
            if state == "available":
                return at, None
            why = f"its route goes to NAT gateway {nat_id}, {state} when the bootstrap needed it"
            nat = self.nats.get(nat_id)
            if state == "pending" and nat is not None:
                ready = nat.created + NAT_CREATE_SECONDS
                return (ready, why) if nat.deleted is None or nat.deleted > ready else (None, why)
            return None, why
        if str(route.get("GatewayId", "")).startswith("igw-"):
            if instance.public:
                return at, None
            return None, f"subnet {instance.subnet} routes to the IGW but it has no public IP"
        return None, f"subnet {instance.subnet}'s default route goes nowhere usable"

    def _database_ready_at(self, user_data: str) -> tuple[bool, float | None]:
        """(whether the script names one of our clusters, when its writer is available)."""
        for cluster in self.clusters.values():
            if cluster.endpoint and cluster.endpoint in user_data:
                members = sorted((i for i in self.db_instances.values() if i.cluster == cluster.id),
                                 key=lambda i: i.requested)
                if not members:
                    return True, None
                return True, max(members[0].ready, cluster.available_at)
        return False, None

    def _judge_bootstrap(self, instance: _Instance) -> None:
        """Lay the bootstrap out action by action from its start; decide whether and when it fails."""
        t = instance.bootstrap_start
        segments: list[tuple[str, float, float]] = []
        online, offline = self._internet_from(instance, t)
        # Unless wait_for_network comes before its first step that goes out, the way out must be there now.
        going_out = [label for label, _ in instance.actions if label not in ("systemctl enable", "health")]
        if online != t and going_out[:1] != ["network"]:
            message = f"builder {instance.name} ({instance.id}): bootstrap without internet: {offline}"
            self.violation("bootstrap-offline", "RunInstances", message)
            instance.outcome = ([("bootstrap (no internet)", t, t + BOOTSTRAP_FAIL_SECONDS)], None,
                                t + BOOTSTRAP_FAIL_SECONDS, offline)
            return
        for label, seconds in instance.actions:
            if label == "network":
                online, offline = self._internet_from(instance, t)
                reason = f"bootstrap without internet: {offline}"
                if online is not None and online > t + NETWORK_WAIT_SECONDS:
                    reason += ", longer than the wait for the network"
                went_on = self._bootstrap_wait(instance, segments, t, online, NETWORK_WAIT_SECONDS, "network",
                                               "bootstrap-offline", reason)
            elif label == "health":
                if not self.health_needs_database:
                    continue
                names_db, ready = self._database_ready_at(instance.user_data)
                if not names_db:
                    continue
                went_on = self._bootstrap_wait(instance, segments, t, ready, HEALTH_WAIT_SECONDS, "database",
                                               "bootstrap-no-database",
                                               "the database writer was not available within the health wait")
            else:
                segments.append((label, t, t + seconds))
                t += seconds
                continue
            if went_on is None:
                return
            t = went_on
        instance.outcome = (segments, t, None, None)

    def _bootstrap_wait(self, instance: _Instance, segments: list[tuple[str, float, float]], t: float,
                        ready: float | None, limit: float, what: str, rule: str, reason: str) -> float | None:
        """The bootstrap waits from `t`, `limit` s at most, for what is ready at `ready` (None: never):
        when it goes on, or None when it gives up (a violation of `rule`; the outcome is set)."""
        if ready is None or ready > t + limit:
            self.violation(rule, "RunInstances", f"builder {instance.name} ({instance.id}): {reason}")
            segments.append((f"wait for the {what}", t, t + limit))
            instance.outcome = (segments, None, t + limit, reason)
            return None
        if ready > t:
            segments.append((f"wait for the {what}", t, ready))
        return max(t, ready)

    def bootstrap(self, instance_id: str) -> tuple[float | None, float | None, str | None]:
        """(done at, failed at, why) of a builder's bootstrap, judged once it has started."""
        instance = self.instances[instance_id]
        if instance.outcome is None:
            if self.now < instance.bootstrap_start:
                return None, None, None
            self._judge_bootstrap(instance)
        _, done, failed, reason = instance.outcome  # type: ignore[misc]
        return done, failed, reason

    # -- SSM Run Command: the builders' health gate ---------------------------------------------
    def _send_command_before(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        for instance_id in params.get("InstanceIds") or []:
            instance = self.instances.get(instance_id)
            if instance is not None and (self.instance_state(instance_id) != "running" or
                                         not self._ssm_registered(instance)):
                # The agent has not registered yet: Run Command does not know the instance.
                return self.refuse("InvalidInstanceId", "Instances not in a valid state for account",
                                   operation=operation, service="ssm")
        return None

    def _ssm_registered(self, instance: _Instance) -> bool:
        """The agent registers 40 s after `running`, and not before it has a way out (SSM's endpoints)."""
        online, _ = self._internet_from(instance, instance.running_at)
        return online is not None and self.now >= max(instance.running_at + SSM_AGENT_SECONDS, online)

    def _command_sent(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        command = parsed.get("Command", {}).get("CommandId")
        for instance_id in params.get("InstanceIds") or []:
            if command and instance_id in self.instances:
                self.commands[(command, instance_id)] = self.now

    def _get_command_invocation(self, params: dict[str, Any], **_: Any) -> Any:
        key = (params.get("CommandId", ""), params.get("InstanceId", ""))
        if key not in self.commands:
            return None
        done, failed, reason = self.bootstrap(key[1])
        base = {"CommandId": key[0], "InstanceId": key[1], "DocumentName": "AWS-RunShellScript",
                "PluginName": "aws:runShellScript", "StandardErrorContent": ""}
        if failed is not None and self.now >= failed:
            return answer({**base, "Status": "Failed", "StatusDetails": "Failed", "ResponseCode": 2,
                           "StandardOutputContent": f"bootstrap failed (exit 1)\n{reason}"})
        if done is not None and self.now >= done:
            return answer({**base, "Status": "Success", "StatusDetails": "Success", "ResponseCode": 0,
                           "StandardOutputContent": "healthy"})
        # The health script waits for cloud-init (the bootstrap) before it answers.
        return answer({**base, "Status": "InProgress", "StatusDetails": "InProgress", "ResponseCode": -1,
                       "StandardOutputContent": ""})

    # -- AMIs ----------------------------------------------------------------------------------
    def image_state(self, image_id: str) -> str | None:
        image = self.images.get(image_id)
        if image is None:
            return None
        return "pending" if self.now - image.created < IMAGE_CREATE_SECONDS else "available"

    def _create_image(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        instance_id = params.get("InstanceId", "")
        state = self.instance_state(instance_id)
        if state is not None and state != "running":
            return self.refuse("IncorrectInstanceState", f"The instance '{instance_id}' is not in the 'running' "
                               f"state (it is {state})", operation=operation, rule="image-of-non-running")
        return None

    def _image_created(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        image_id = parsed.get("ImageId")
        if image_id:
            self.images[image_id] = _Image(image_id, params.get("Name", image_id), self._part(params),
                                           params.get("InstanceId", ""), self.now)

    def _describe_images_before(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        for image_id in params.get("ImageIds") or []:
            image = self.images.get(image_id)
            if image is not None and self.now - image.created < IMAGE_ID_VISIBLE_SECONDS:
                return self.refuse("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist",
                                   operation=operation)
        return None

    def _describe_images(self, parsed: dict[str, Any], **_: Any) -> None:
        _override(parsed.get("Images", []), "ImageId", "State", self.image_state)

    # -- Aurora ------------------------------------------------------------------------------------
    def cluster_status(self, cluster_id: str) -> str | None:
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            return None
        if cluster.deleted is not None:
            return "deleting"
        if self.now < cluster.available_at:
            return "creating"
        return cluster.power(self.now) or "available"

    def db_instance_status(self, identifier: str) -> str | None:
        instance = self.db_instances.get(identifier)
        if instance is None:
            return None
        if instance.deleted is not None:
            return "deleting"
        cluster = self.clusters.get(instance.cluster)
        power = cluster.power(self.now) if cluster is not None else None
        if power is not None:  # stopped and started with its cluster
            return power
        return "creating" if self.now < instance.ready else "available"

    def _cluster_created(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        cluster = parsed.get("DBCluster")
        if not cluster:
            return
        self.clusters[cluster["DBClusterIdentifier"]] = _Cluster(
            cluster["DBClusterIdentifier"], self._part(params), self.now, cluster.get("Endpoint", ""),
            params.get("DBSubnetGroupName", ""), tuple(params.get("VpcSecurityGroupIds") or []))
        cluster["Status"] = "creating"

    def _describe_clusters(self, parsed: dict[str, Any], **_: Any) -> None:
        _override(parsed.get("DBClusters", []), "DBClusterIdentifier", "Status", self.cluster_status)

    def _create_db_instance(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        cluster_id = params.get("DBClusterIdentifier", "")
        asleep = self._refuse_asleep(cluster_id, operation)
        if asleep is not None:
            return asleep
        status = self.cluster_status(cluster_id)
        if status is not None and status not in ("available", "stopping", "stopped", "starting"):
            return self.refuse("InvalidDBClusterStateFault", f"DB cluster {cluster_id} is not in the available "
                               f"state (it is {status})", operation=operation, service="rds",
                               rule="db-instance-before-cluster")
        return None

    def _db_instance_created(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        db = parsed.get("DBInstance")
        if not db:
            return
        cluster = self.clusters.get(params.get("DBClusterIdentifier", ""))
        start = max(self.now, cluster.available_at) if cluster else self.now  # only later than now when relaxed
        self.db_instances[db["DBInstanceIdentifier"]] = _DbInstance(
            db["DBInstanceIdentifier"], params.get("DBClusterIdentifier", ""), self._part(params), self.now,
            start + DB_INSTANCE_CREATE_SECONDS)
        db["DBInstanceStatus"] = "creating"

    def _describe_db_instances(self, parsed: dict[str, Any], **_: Any) -> None:
        _override(parsed.get("DBInstances", []), "DBInstanceIdentifier", "DBInstanceStatus", self.db_instance_status)

    def _delete_db_instance(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        """Answered here: moto would delete at once; the real delete is deferred 480 s."""
        identifier = params.get("DBInstanceIdentifier", "")
        found = self.raw("rds").describe_db_instances()["DBInstances"]
        db = next((d for d in found if d["DBInstanceIdentifier"] == identifier), None)
        if db is None:
            return None  # moto answers DBInstanceNotFound
        asleep = self._refuse_asleep(db.get("DBClusterIdentifier", ""), operation)
        if asleep is not None:
            return asleep
        record = self.db_instances.get(identifier)
        if record is None:  # made before the model was installed
            record = self.db_instances[identifier] = _DbInstance(identifier, db.get("DBClusterIdentifier", ""),
                                                                 None, -1e9, -1e9)
        if record.deleted is not None:
            return self.refuse("InvalidDBInstanceState", f"Instance {identifier} is already being deleted.",
                               operation=operation, service="rds")
        record.deleted = self.now

        def delete() -> None:
            self.raw("rds").delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
            record.gone = True
        self.defer(self.now + DB_INSTANCE_DELETE_SECONDS, f"delete DB instance {identifier}", delete)
        return answer({"DBInstance": {**db, "DBInstanceStatus": "deleting"}})

    def _delete_db_cluster(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        """Refused while it has instances; otherwise answered here and carried out 60 s (+120 s) later."""
        cluster_id = params.get("DBClusterIdentifier", "")
        found = self.raw("rds").describe_db_clusters()["DBClusters"]
        cluster = next((c for c in found if c["DBClusterIdentifier"] == cluster_id), None)
        if cluster is None:
            return None
        asleep = self._refuse_asleep(cluster_id, operation)
        if asleep is not None:
            return asleep
        members = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])]
        if members:
            return self.refuse("InvalidDBClusterStateFault", f"Cluster {cluster_id} still has instances "
                               f"({', '.join(members)})", operation=operation, service="rds",
                               rule="delete-cluster-with-instances")
        record = self._cluster_record(cluster_id)
        assert record is not None
        if record.deleted is not None:
            return self.refuse("InvalidDBClusterStateFault", f"Cluster {cluster_id} is already being deleted",
                               operation=operation, service="rds")
        snapshot = not params.get("SkipFinalSnapshot") and params.get("FinalDBSnapshotIdentifier")
        record.deleted = self.now
        record.delete_seconds = CLUSTER_DELETE_SECONDS + (CLUSTER_FINAL_SNAPSHOT_SECONDS if snapshot else 0)
        real = {k: v for k, v in params.items()
                if k in ("DBClusterIdentifier", "SkipFinalSnapshot", "FinalDBSnapshotIdentifier")}

        def delete() -> None:
            self.raw("rds").delete_db_cluster(**real)
            record.gone = True
        self.defer(self.now + record.delete_seconds, f"delete DB cluster {cluster_id}", delete)
        return answer({"DBCluster": {**cluster, "Status": "deleting"}})

    def _cluster_record(self, cluster_id: str) -> _Cluster | None:
        """The model's record of a cluster, learnt from moto when it was made before the model was installed."""
        if cluster_id in self.clusters:
            return self.clusters[cluster_id]
        found = self.raw("rds").describe_db_clusters()["DBClusters"]
        cluster = next((c for c in found if c["DBClusterIdentifier"] == cluster_id), None)
        if cluster is None:
            return None
        record = self.clusters[cluster_id] = _Cluster(cluster_id, None, -1e9, cluster.get("Endpoint", ""),
                                                      cluster.get("DBSubnetGroup", ""))
        return record

    def _refuse_asleep(self, cluster_id: str, operation: str) -> Any:
        """AWS changes nothing of a cluster stopping, stopped or starting (InvalidDBClusterStateFault)."""
        status = self.cluster_status(cluster_id)
        if status in ("stopping", "stopped", "starting"):
            return self.refuse("InvalidDBClusterStateFault", f"DB cluster {cluster_id} is {status}: no {operation} "
                               f"until it is available", operation=operation, service="rds",
                               rule="change-stopped-cluster")
        return None

    def _change_db_cluster(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        return self._refuse_asleep(params.get("DBClusterIdentifier", ""), operation)

    def _change_db_instance(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        record = self.db_instances.get(params.get("DBInstanceIdentifier", ""))
        return self._refuse_asleep(record.cluster, operation) if record is not None else None

    def _stop_db_cluster(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        """Only an available cluster with every instance available stops."""
        cluster_id = params.get("DBClusterIdentifier", "")
        record = self._cluster_record(cluster_id)
        if record is None:
            return None  # moto answers DBClusterNotFoundFault
        status = self.cluster_status(cluster_id)
        busy = [f"{i.id} {self.db_instance_status(i.id)}" for i in self.db_instances.values()
                if i.cluster == cluster_id and not i.gone and self.db_instance_status(i.id) != "available"]
        if status != "available" or busy:
            why = f"it is {status}" if status != "available" else f"its instances are not available ({', '.join(busy)})"
            return self.refuse("InvalidDBClusterStateFault", f"DB cluster {cluster_id} cannot be stopped: {why}",
                               operation=operation, service="rds", rule="stop-cluster-not-available")
        return None

    def _cluster_stopped(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        record = self._cluster_record(params.get("DBClusterIdentifier", ""))
        if record is not None:
            record.stop_requested, record.start_requested = self.now, None
        if parsed.get("DBCluster"):
            parsed["DBCluster"]["Status"] = "stopping"

    def _start_db_cluster(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        """Only a stopped cluster starts: one still stopping is a caller that did not wait (a violation);
        one starting or available is refused as AWS does (the caller may take that as done)."""
        cluster_id = params.get("DBClusterIdentifier", "")
        record = self._cluster_record(cluster_id)
        if record is None:
            return None
        status = self.cluster_status(cluster_id)
        if status == "stopped":
            return None
        message = f"DbCluster {cluster_id} is in {status} state but expected it to be one of stopped"
        return self.refuse("InvalidDBClusterStateFault", message, operation=operation, service="rds",
                           rule="start-cluster-stopping" if status == "stopping" else None)

    def _cluster_started(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        record = self._cluster_record(params.get("DBClusterIdentifier", ""))
        if record is not None and record.stop_requested is not None:
            record.start_requested = self.now
        if parsed.get("DBCluster"):
            parsed["DBCluster"]["Status"] = "starting"

    def _delete_db_subnet_group(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        name = params.get("DBSubnetGroupName", "")
        using = [c["DBClusterIdentifier"] for c in self.raw("rds").describe_db_clusters()["DBClusters"]
                 if c.get("DBSubnetGroup") == name]
        if using:
            return self.refuse("InvalidDBSubnetGroupStateFault", f"DB subnet group {name} is in use by "
                               f"{', '.join(using)}", operation=operation, service="rds",
                               rule="delete-subnet-group-in-use")
        return None

    # -- load balancers ---------------------------------------------------------------------
    def load_balancer_state(self, arn: str) -> str | None:
        lb = self.load_balancers.get(arn)
        if lb is None:
            return None
        return "provisioning" if self.now - lb.created < ALB_CREATE_SECONDS else "active"

    def _load_balancer_created(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        for lb in parsed.get("LoadBalancers", []):
            if lb["LoadBalancerArn"] not in self.load_balancers:
                self.load_balancers[lb["LoadBalancerArn"]] = _LoadBalancer(
                    lb["LoadBalancerArn"], lb["LoadBalancerName"], self._part(params), lb.get("VpcId", ""),
                    tuple(params.get("Subnets") or [z.get("SubnetId") for z in lb.get("AvailabilityZones", [])]),
                    tuple(params.get("SecurityGroups") or lb.get("SecurityGroups", [])),
                    lb.get("Scheme", params.get("Scheme")) == "internet-facing", self.now)
            lb["State"] = {"Code": "provisioning"}

    def _describe_load_balancers(self, parsed: dict[str, Any], **_: Any) -> None:
        _override(parsed.get("LoadBalancers", []), "LoadBalancerArn", "State", self.load_balancer_state,
                  lambda state: {"Code": state})

    def _delete_load_balancer_before(self, params: dict[str, Any], **_: Any) -> Any:
        arn = params.get("LoadBalancerArn", "")
        if arn not in self.load_balancers:  # made before the model was installed: learn its ENIs now
            found = self.raw("elbv2").describe_load_balancers()["LoadBalancers"]
            lb = next((b for b in found if b["LoadBalancerArn"] == arn), None)
            if lb is not None:
                self.load_balancers[arn] = _LoadBalancer(
                    arn, lb["LoadBalancerName"], None, lb.get("VpcId", ""),
                    tuple(z.get("SubnetId") for z in lb.get("AvailabilityZones", [])),
                    tuple(lb.get("SecurityGroups", [])), lb.get("Scheme") == "internet-facing", -1e9)
        return None

    def _load_balancer_deleted(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        lb = self.load_balancers.get(params.get("LoadBalancerArn", ""))
        if lb is not None and lb.deleted is None:
            lb.deleted = self.now  # gone from describe at once (moto); its ENIs stay 60 s
        self._certificate_users_changed()
        self._association_gone(params.get("LoadBalancerArn", ""))  # AWS drops it with the ALB; moto keeps it

    def _listener_created(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        for action in params.get("DefaultActions") or []:
            if action.get("TargetGroupArn"):
                self.listeners.setdefault(action["TargetGroupArn"], set()).add(params.get("LoadBalancerArn", ""))
        self._certificate_users_changed()

    def _target_group_load_balancers(self, target_group: str) -> set[str]:
        arns = set(self.listeners.get(target_group, set()))
        if not arns:
            found = self.raw("elbv2").describe_target_groups(TargetGroupArns=[target_group])["TargetGroups"]
            arns = set(found[0].get("LoadBalancerArns", [])) if found else set()
        return arns

    def healthy_at(self, target_group: str) -> float | None:
        """When the targets the Auto Scaling groups put in `target_group` are healthy (None: never yet)."""
        groups = [g for g in self.groups.values() if target_group in g.target_groups and g.deleted is None]
        if not groups:
            return None
        arns = self._target_group_load_balancers(target_group)
        if not arns:
            return None
        active = max((self.load_balancers[a].created + ALB_CREATE_SECONDS if a in self.load_balancers else -1e9)
                     for a in arns)
        return max(max(g.in_service_at for g in groups), active) + TARGET_HEALTHY_SECONDS

    def _describe_target_health(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        target_group = params.get("TargetGroupArn", "")
        if not any(target_group in g.target_groups for g in self.groups.values()):
            return
        healthy = self.healthy_at(target_group)
        for target in parsed.get("TargetHealthDescriptions", []):
            if healthy is None:
                target["TargetHealth"] = {"State": "unused", "Reason": "Target.NotInUse",
                                          "Description": "Target group is not configured to receive traffic"}
            elif self.now < healthy:
                target["TargetHealth"] = {"State": "initial", "Reason": "Elb.InitialHealthChecking",
                                          "Description": "Initial health checks in progress"}

    # -- Auto Scaling ----------------------------------------------------------------------------
    def _launch_template(self, spec: dict[str, Any]) -> dict[str, Any]:
        kwargs = {"Versions": [str(spec.get("Version") or "$Default")]}
        if spec.get("LaunchTemplateId"):
            kwargs["LaunchTemplateId"] = spec["LaunchTemplateId"]
        else:
            kwargs["LaunchTemplateName"] = spec.get("LaunchTemplateName", "")
        versions = self.raw("ec2").describe_launch_template_versions(**kwargs)["LaunchTemplateVersions"]
        return versions[0]["LaunchTemplateData"] if versions else {}

    def _create_asg_before(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        data = self._launch_template(params.get("LaunchTemplate") or {})
        image = data.get("ImageId", "")
        state = self.image_state(image)
        if state is not None and state != "available":
            # Real AWS takes the call; every launch then fails. A violation all the same.
            self.violation("asg-image-not-available", operation,
                           f"Auto Scaling group {params.get('AutoScalingGroupName')}: AMI {image} is {state}",
                           service="autoscaling")
        return None

    def _asg_created(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        name = params.get("AutoScalingGroupName", "")
        subnets = tuple(s for s in (params.get("VPCZoneIdentifier") or "").split(",") if s)
        data = self._launch_template(params.get("LaunchTemplate") or {})
        vpc = ""
        if subnets:
            found = self.raw("ec2").describe_subnets(SubnetIds=list(subnets))["Subnets"]
            vpc = found[0]["VpcId"] if found else ""
            public = any(s.get("MapPublicIpOnLaunch") for s in found)
        else:
            public = False
        self.groups[name] = _Group(name, self._part(params), vpc, subnets, tuple(data.get("SecurityGroupIds") or []),
                                   public, tuple(params.get("TargetGroupARNs") or []), self.now)

    def _describe_asgs(self, parsed: dict[str, Any], **_: Any) -> None:
        for group in parsed.get("AutoScalingGroups", []):
            record = self.groups.get(group["AutoScalingGroupName"])
            if record is None:
                continue
            if record.deleted is not None:
                group["Status"] = "Delete in progress"
            if self.now < record.in_service_at:
                for instance in group.get("Instances", []):
                    instance["LifecycleState"] = "Pending"
            listed = {i["InstanceId"] for i in group.get("Instances", [])}
            for instance_id, (instance, gone_at) in list(record.draining.items()):
                if self.now >= gone_at:
                    del record.draining[instance_id]
                elif instance_id not in listed:  # moto removed it at once; AWS drains it first
                    group.setdefault("Instances", []).append({**instance, "LifecycleState": "Terminating",
                                                              "HealthStatus": "Healthy"})

    def _group_record(self, name: str) -> _Group | None:
        """The model's record of a group, learnt from moto when it was made before the model was installed."""
        if name in self.groups:
            return self.groups[name]
        found = self.raw("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not found:
            return None
        subnets = tuple(s for s in (found[0].get("VPCZoneIdentifier") or "").split(",") if s)
        spec = found[0].get("LaunchTemplate") or {}
        data = self._launch_template(spec) if spec else {}
        sub = self.raw("ec2").describe_subnets(SubnetIds=list(subnets))["Subnets"] if subnets else []
        record = self.groups[name] = _Group(
            name, int(_tag(found[0].get("Tags", []), PART_TAG) or 0) or None, sub[0]["VpcId"] if sub else "",
            subnets, tuple(data.get("SecurityGroupIds") or []), any(s.get("MapPublicIpOnLaunch") for s in sub),
            tuple(found[0].get("TargetGroupARNs", [])), -1e9)
        return record

    def _group_instances(self, name: str) -> dict[str, dict[str, Any]]:
        found = self.raw("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return {i["InstanceId"]: i for i in (found[0].get("Instances", []) if found else [])}

    def drain_seconds(self, group: _Group) -> float:
        """How long an instance a scale-in removes stays: the longest deregistration delay of the group's
        target groups (as their attribute says, 300 s by default), then shutting-down."""
        delays = [DEREGISTRATION_DELAY_DEFAULT_SECONDS if not group.target_groups else 0.0]
        for arn in group.target_groups:
            try:
                attributes = self.raw("elbv2").describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
            except ClientError:
                continue
            value = next((a["Value"] for a in attributes if a["Key"] == "deregistration_delay.timeout_seconds"), None)
            delays.append(DEREGISTRATION_DELAY_DEFAULT_SECONDS if value is None else float(value))
        return max(delays) + EC2_TERMINATE_SECONDS

    def _resize_asg_before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
        """The group's instances before moto resizes it (moto launches and removes at once)."""
        name = params.get("AutoScalingGroupName", "")
        if self._group_record(name) is not None:
            context["bench_asg_before"] = self._group_instances(name)
        return None

    def _asg_resized(self, parsed: dict[str, Any], params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        name = params.get("AutoScalingGroupName", "")
        record, before = self.groups.get(name), context.get("bench_asg_before")
        if record is None or before is None:
            return
        after = self._group_instances(name)
        removed = [i for i in before if i not in after]
        if removed:
            gone_at = self.now + self.drain_seconds(record)
            for instance_id in removed:
                record.draining.setdefault(instance_id, (before[instance_id], gone_at))
            record.drains.append((self.now, gone_at))
        if any(i not in before for i in after):
            record.launched = self.now

    def _delete_asg(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        """Answered here; the group stays (Delete in progress) 150 s, then moto deletes it."""
        name = params.get("AutoScalingGroupName", "")
        found = self.raw("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not found:
            return None  # moto answers
        record = self._group_record(name)  # learnt now when made before the model was installed
        assert record is not None
        if record.deleted is not None:
            return answer({})
        record.deleted = self.now
        real = dict(params)

        def delete() -> None:
            self.raw("autoscaling").delete_auto_scaling_group(**{**real, "ForceDelete": True})
            record.gone = True
        self.defer(self.now + ASG_DELETE_SECONDS, f"delete Auto Scaling group {name}", delete)
        return answer({})

    # -- ACM and Route 53: the certificate of Part 7's front door ----------------------------------
    def certificate_status(self, arn: str) -> str | None:
        """PENDING_VALIDATION until its validation CNAMEs have been in a zone 240 s, then ISSUED
        (None: a certificate the model did not see requested, or deleted: moto's answer stands)."""
        cert = self.certificates.get(arn)
        if cert is None or cert.deleted is not None:
            return None
        issued = cert.issued
        return "ISSUED" if issued is not None and self.now >= issued else "PENDING_VALIDATION"

    def _zone_cnames(self) -> set[tuple[str, str]]:
        """The CNAMEs in every hosted zone now (moto's), as (name., value.)."""
        route53, found = self.raw("route53"), set[tuple[str, str]]()
        for zone in route53.list_hosted_zones()["HostedZones"]:
            for record_set in route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]:
                if record_set["Type"] == "CNAME":
                    found |= {(_fqdn(record_set["Name"]), _fqdn(r["Value"]))
                              for r in record_set.get("ResourceRecords", [])}
        return found

    def _certificate_requested(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        arn = parsed.get("CertificateArn")
        if not arn or arn in self.certificates:  # the same IdempotencyToken: the same certificate
            return
        described = self.raw("acm").describe_certificate(CertificateArn=arn)["Certificate"]
        # DNS validation only: a certificate validated by email stays pending in the model.
        records = frozenset((_fqdn(o["ResourceRecord"]["Name"]), _fqdn(o["ResourceRecord"]["Value"]))
                            for o in described.get("DomainValidationOptions", [])
                            if o.get("ResourceRecord") and params.get("ValidationMethod") == "DNS")
        for key in records & self._zone_cnames():  # already in a zone (written before the request)
            self.cnames.setdefault(key, self.now)
        self.certificates[arn] = _Certificate(arn, params.get("DomainName") or described.get("DomainName", arn),
                                              self._part(params), self.now, records)
        self._validate_certificates()

    def _records_changed(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        for change in (params.get("ChangeBatch") or {}).get("Changes", []):
            record_set = change.get("ResourceRecordSet") or {}
            if record_set.get("Type") != "CNAME":
                continue
            name = _fqdn(record_set.get("Name", ""))
            values = {_fqdn(r.get("Value", "")) for r in record_set.get("ResourceRecords") or []}
            writes = change.get("Action") in ("CREATE", "UPSERT")
            for key in [k for k in self.cnames if k[0] == name and not (writes and k[1] in values)]:
                del self.cnames[key]
            if writes:
                for value in values:
                    self.cnames.setdefault((name, value), self.now)
        self._validate_certificates()

    def _validate_certificates(self) -> None:
        """Validation starts once all of a pending certificate's CNAMEs are in a zone (not before it
        was requested), and stops if one goes before it is issued."""
        for cert in self.certificates.values():
            issued = cert.issued
            if cert.deleted is not None or not cert.records or (issued is not None and self.now >= issued):
                continue
            seen = [self.cnames[r] for r in cert.records if r in self.cnames]
            if len(seen) < len(cert.records):
                cert.validated = None
            elif cert.validated is None:
                cert.validated = max(cert.requested, *seen)

    def _describe_certificate(self, parsed: dict[str, Any], **_: Any) -> None:
        certificate = parsed.get("Certificate") or {}
        record = self.certificates.get(certificate.get("CertificateArn", ""))
        status = self.certificate_status(certificate.get("CertificateArn", ""))
        if record is None or status is None:
            return
        certificate["Status"] = status
        if status != "ISSUED":
            certificate.pop("IssuedAt", None)
        shown = self.now - record.requested >= CERT_RECORD_SHOWN_SECONDS
        for option in certificate.get("DomainValidationOptions", []):
            option["ValidationStatus"] = "SUCCESS" if status == "ISSUED" else "PENDING_VALIDATION"
            if not shown:
                option.pop("ResourceRecord", None)


    def _list_certificates(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        summaries = parsed.get("CertificateSummaryList", [])
        _override(summaries, "CertificateArn", "Status", self.certificate_status)
        for summary in summaries:
            record = self.certificates.get(summary["CertificateArn"])
            if record is not None and "InUse" in summary:
                summary["InUse"] = record.in_use
        wanted = params.get("CertificateStatuses")
        if wanted:
            parsed["CertificateSummaryList"] = [s for s in summaries if s.get("Status") in wanted]

    def _certificate_users(self) -> dict[str, list[str]]:
        """Certificate ARN -> the listeners using it now (moto's; its ELBv2 does not tell ACM)."""
        elbv2, users = self.raw("elbv2"), dict[str, list[str]]()
        for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
            for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
                for cert in listener.get("Certificates") or []:
                    users.setdefault(cert["CertificateArn"], []).append(
                        f"listener {lb['LoadBalancerName']}:{listener['Port']}")
        return users

    def _certificate_users_changed(self, *_: Any, **__: Any) -> None:
        """After a listener or a load balancer changed: which certificates are in use, since when not."""
        if not self.certificates:
            return
        users = self._certificate_users()
        for cert in self.certificates.values():
            using = cert.arn in users
            if cert.in_use and not using:
                cert.released = self.now
            cert.in_use = using

    def _listener_certificates_before(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        for spec in params.get("Certificates") or []:
            arn = spec.get("CertificateArn", "")
            cert, status = self.certificates.get(arn), self.certificate_status(arn)
            if cert is None or status is None:
                continue
            issued = cert.issued
            if status != "ISSUED":
                refused = self.refuse("UnsupportedCertificate", f"The certificate '{arn}' is {status}: a listener "
                                      f"takes an issued certificate only", operation=operation, service="elbv2",
                                      rule="listener-on-pending-certificate")
                if refused is not None:
                    return refused
            elif issued is not None and self.now < issued + CERT_PROPAGATION_SECONDS:
                # Not a mistake of the caller: ELB does not know the new certificate yet; retried.
                return self.refuse("CertificateNotFound", f"Certificate '{arn}' not found", operation=operation,
                                   service="elbv2")
        return None

    def _refuse_in_use(self, code: str, message: str, using: list[str], released: float | None, window: float, *,
                       operation: str, service: str, rule: str) -> Any:
        """A delete refused while `using` names something (a violation of `rule`), and for `window` s after
        the last user went at `released` (not a mistake of the caller: not everywhere yet; retried)."""
        if using:
            refused = self.refuse(code, f"{message} ({', '.join(using)})", operation=operation, service=service,
                                  rule=rule)
            if refused is not None:
                return refused
        if released is not None and self.now - released < window:
            return self.refuse(code, message, operation=operation, service=service)
        return None

    def _delete_certificate(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        arn = params.get("CertificateArn", "")
        cert = self.certificates.get(arn)
        return self._refuse_in_use("ResourceInUseException", f"Certificate {arn} is in use",
                                   self._certificate_users().get(arn, []), cert.released if cert else None,
                                   CERT_RELEASE_SECONDS, operation=operation, service="acm",
                                   rule="delete-certificate-in-use")

    def _certificate_deleted(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        cert = self.certificates.get(params.get("CertificateArn", ""))
        if cert is not None and cert.deleted is None:
            cert.deleted = self.now

    # -- WAFv2: the web ACL on the external ALB -----------------------------------------------------
    def _web_acl_created(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        summary = parsed.get("Summary") or {}
        arn = summary.get("ARN")
        if arn and arn not in self.web_acls:
            self.web_acls[arn] = _WebAcl(arn, summary.get("Name") or params.get("Name", ""), self._part(params),
                                         self.now)

    def _web_acl_arn(self, params: dict[str, Any]) -> str | None:
        """The ARN of the web ACL that Name, Scope and Id name (None: moto knows none)."""
        name, acl_id = params.get("Name", ""), params.get("Id", "")
        known = next((a.arn for a in self.web_acls.values() if a.arn.endswith(f"/{name}/{acl_id}")), None)
        if known is not None:
            return known
        try:
            found = self.raw("wafv2").get_web_acl(Name=name, Scope=params.get("Scope", "REGIONAL"), Id=acl_id)
        except ClientError:
            return None
        return found["WebACL"]["ARN"]

    def _web_acl_of(self, resource: str) -> str | None:
        """The web ACL associated with a resource, by the model or (made before it) by moto."""
        if resource in self.associations:
            return self.associations[resource]
        try:
            found = self.raw("wafv2").get_web_acl_for_resource(ResourceArn=resource).get("WebACL") or {}
        except ClientError:
            return None
        return found.get("ARN")

    def _web_acl_resources(self, arn: str) -> list[str]:
        """What the web ACL is associated with now (an ALB's association goes with the ALB)."""
        found = [resource for resource, acl in self.associations.items() if acl == arn]
        for lb in self.raw("elbv2").describe_load_balancers()["LoadBalancers"]:
            resource = lb["LoadBalancerArn"]
            if resource not in self.associations and self._web_acl_of(resource) == arn:
                found.append(resource)
        return found

    def _associate_web_acl(self, params: dict[str, Any], operation: str, context: dict[str, Any], **_: Any) -> Any:
        resource, arn = params.get("ResourceArn", ""), params.get("WebACLArn", "")
        if self.load_balancer_state(resource) == "provisioning":
            # kubernetes-sigs/aws-load-balancer-controller#2022: WAF cannot find an ALB still provisioning.
            refused = self.refuse("WAFNonexistentItemException", f"AWS WAF couldn't perform the operation because "
                                  f"your resource doesn't exist ({resource} is provisioning)", operation=operation,
                                  service="wafv2", rule="waf-on-provisioning-alb")
            if refused is not None:
                return refused
        acl = self.web_acls.get(arn)
        if acl is not None and self.now - acl.created < WAF_ACL_USABLE_SECONDS:
            # Not a mistake of the caller: the new web ACL is not available everywhere yet; retried.
            return self.refuse("WAFUnavailableEntityException", "AWS WAF couldn't retrieve the resource that you "
                               "requested. Retry your request.", operation=operation, service="wafv2")
        context["bench_previous_web_acl"] = self._web_acl_of(resource)  # before moto adds this one
        return None

    def _web_acl_associated(self, parsed: dict[str, Any], params: dict[str, Any], context: dict[str, Any],
                            **_: Any) -> None:
        resource, arn = params.get("ResourceArn", ""), params.get("WebACLArn", "")
        previous = context.get("bench_previous_web_acl")
        if previous is not None and previous != arn:  # AWS replaces the resource's association
            self.associations[resource] = previous
            self._association_gone(resource)
        self.associations[resource] = arn

    def _disassociate_web_acl_before(self, params: dict[str, Any], **_: Any) -> Any:
        resource = params.get("ResourceArn", "")
        acl = self._web_acl_of(resource)  # learnt now: one made before the model was installed
        if acl is not None:
            self.associations[resource] = acl
        return None

    def _web_acl_disassociated(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        self._association_gone(params.get("ResourceArn", ""))

    def _association_gone(self, resource: str) -> None:
        arn = self.associations.pop(resource, None)
        if arn is not None:
            self.web_acls.setdefault(arn, _WebAcl(arn, arn.split("/")[-2], None, -1e9)).released = self.now

    def _delete_web_acl(self, params: dict[str, Any], operation: str, **_: Any) -> Any:
        arn = self._web_acl_arn(params)
        if arn is None:
            return None  # moto answers WAFNonexistentItemException
        acl = self.web_acls.get(arn)
        return self._refuse_in_use("WAFAssociatedItemException", "AWS WAF couldn't perform the operation because "
                                   "your resource is being used by another resource or it's associated with "
                                   "another resource", self._web_acl_resources(arn), acl.released if acl else None,
                                   WAF_DISASSOCIATE_SECONDS, operation=operation, service="wafv2",
                                   rule="delete-web-acl-associated")

    def _web_acl_deleted(self, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
        acl = next((a for a in self.web_acls.values()
                    if a.arn.endswith(f"/{params.get('Name', '')}/{params.get('Id', '')}")), None)
        if acl is not None and acl.deleted is None:
            acl.deleted = self.now

    # -- spans: the model's own record of every long operation ------------------------------------
    @property
    def spans(self) -> list[Span]:
        with self.lock:
            return self._spans()

    def _spans(self) -> list[Span]:
        spans: list[Span] = []
        for nat in self.nats.values():
            if nat.created > -1e8:
                spans.append(Span(nat.part, "NAT gateway", nat.name, nat.created, nat.created + NAT_CREATE_SECONDS))
            if nat.deleted is not None:
                spans.append(Span(nat.part, "NAT gateway", nat.name, nat.deleted, nat.deleted + NAT_DELETE_SECONDS,
                                  action="delete"))
        for cluster in self.clusters.values():
            if cluster.created > -1e8:
                spans.append(Span(cluster.part, "Aurora cluster", cluster.id, cluster.created, cluster.available_at))
            if cluster.stop_requested is not None:
                spans.append(Span(cluster.part, "Aurora cluster", cluster.id, cluster.stop_requested,
                                  cluster.stop_requested + CLUSTER_STOP_SECONDS, action="stop"))
            if cluster.start_requested is not None:
                spans.append(Span(cluster.part, "Aurora cluster", cluster.id, cluster.start_requested,
                                  cluster.start_requested + CLUSTER_START_SECONDS, action="start"))
            if cluster.deleted is not None:
                spans.append(Span(cluster.part, "Aurora cluster", cluster.id, cluster.deleted,
                                  cluster.deleted + cluster.delete_seconds, action="delete"))
        writers: set[str] = set()
        for cluster_id in self.clusters:
            members = sorted((i for i in self.db_instances.values() if i.cluster == cluster_id and i.requested > -1e8),
                             key=lambda i: i.requested)
            if members:
                writers.add(members[0].id)
        for db in self.db_instances.values():
            kind = "Aurora writer" if db.id in writers else "Aurora instance"
            if db.requested > -1e8:
                spans.append(Span(db.part, kind, db.id, db.requested, db.ready))
            if db.deleted is not None:
                spans.append(Span(db.part, "Aurora instance", db.id, db.deleted,
                                  db.deleted + DB_INSTANCE_DELETE_SECONDS, action="delete"))
        for instance in self.instances.values():
            segments = [("pending", instance.launched, instance.running_at)]
            end: float | None = instance.running_at
            failed = None
            if instance.user_data:
                segments.append(("boot", instance.running_at, instance.bootstrap_start))
                if instance.outcome is not None:
                    parts, done, failed_at, failed = instance.outcome
                    segments += parts
                    end = done if done is not None else failed_at
                else:
                    end = None
            spans.append(Span(instance.part, "builder" if instance.user_data else "instance", instance.name,
                              instance.launched, end, segments=segments, failed=failed))
            if instance.terminated is not None:
                spans.append(Span(instance.part, "builder" if instance.user_data else "instance", instance.name,
                                  instance.terminated, instance.terminated + EC2_TERMINATE_SECONDS, action="delete"))
        for image in self.images.values():
            spans.append(Span(image.part, "AMI", image.name, image.created, image.created + IMAGE_CREATE_SECONDS))
        for lb in self.load_balancers.values():
            if lb.created > -1e8:
                spans.append(Span(lb.part, "load balancer", lb.name, lb.created, lb.created + ALB_CREATE_SECONDS))
            if lb.deleted is not None:
                spans.append(Span(lb.part, "load balancer", lb.name, lb.deleted,
                                  lb.deleted + ALB_ENI_RELEASE_SECONDS, action="delete"))
        for group in self.groups.values():
            if group.created > -1e8:
                spans.append(Span(group.part, "Auto Scaling group", group.name, group.created,
                                  group.created + ASG_IN_SERVICE_SECONDS))
                for target_group in group.target_groups:
                    healthy = self.healthy_at(target_group) if group.deleted is None else None
                    start = group.created + ASG_IN_SERVICE_SECONDS
                    spans.append(Span(group.part, "target health", f"{group.name} targets", start,
                                      healthy if healthy is not None else None))
            if group.launched is not None:
                spans.append(Span(group.part, "Auto Scaling group", group.name, group.launched, group.in_service_at))
            for start, end in group.drains:
                spans.append(Span(group.part, "Auto Scaling instances", f"{group.name} scale-in", start, end,
                                  action="delete"))
            if group.deleted is not None:
                spans.append(Span(group.part, "Auto Scaling group", group.name, group.deleted,
                                  group.deleted + ASG_DELETE_SECONDS, action="delete"))
        for cert in self.certificates.values():
            issued, segments = cert.issued, []
            if cert.validated is not None and issued is not None:
                if cert.validated > cert.requested:
                    segments.append(("validation record", cert.requested, cert.validated))
                segments.append(("DNS validation", cert.validated, issued))
            spans.append(Span(cert.part, "certificate", cert.domain, cert.requested, issued, segments=segments))
        for acl in self.web_acls.values():
            if acl.created > -1e8:
                spans.append(Span(acl.part, "web ACL", acl.name, acl.created, acl.created + WAF_ACL_USABLE_SECONDS))
        for name, created in self.profiles.items():
            if name.startswith("arn:"):
                continue
            spans.append(Span(1, "instance profile", name, created, created + PROFILE_USABLE_SECONDS))
        return sorted(spans, key=lambda s: (s.part or 0, s.start))


# tests/awsmodel.py's name for the same thing
AwsModel = LatencyModel
