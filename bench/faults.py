"""`python -m bench.faults`: lost answers. AWS performs a mutating call and its answer never arrives
(an HTTP 500, or the connection closed), as in issue 23: how many reruns do `up` and `down` need?

The fault sits where the network does, in moto's `before-send` handler, inside botocore's retry
loop: the request is performed, then the caller gets a 500 (or a ConnectionClosedError) instead of
the answer, and whatever retries it (botocore, or threetier's AWS layer) meets what the first
request did. AWS's idempotency tokens are honoured as AWS documents them, which moto does not: a
request carrying a ClientToken (or ACM's IdempotencyToken) seen before gets the first answer again,
or IdempotentParameterMismatch when its parameters differ.

Per seed, in a fresh moto: `up`, rerun while it fails or does not end with exactly one of
everything; then `down --skip-final-snapshot`, rerun while it fails or anything is left. Faults stay
on during reruns. Reruns needed: the goal is 0.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from bench.moto_env import moto
from threetier.aws import is_mutating

TOKEN_KEYS = ("ClientToken", "IdempotencyToken", "ClientRequestToken")
MAX_RERUNS = 5  # more than this: "never converged"


def _token(body: bytes | str | None) -> str | None:
    """The idempotency token a request carries (query or JSON protocol), if any."""
    if not body:
        return None
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return next((str(data[k]) for k in TOKEN_KEYS if isinstance(data, dict) and data.get(k)), None)
    fields = urllib.parse.parse_qs(text)
    return next((fields[k][0] for k in TOKEN_KEYS if fields.get(k)), None)


def _headers(headers: dict[str, str]) -> Any:
    """Headers as moto's stubber hands them to botocore (a plain dict; botocore's type says HTTPHeaders)."""
    return headers


@dataclass
class LostAnswers:
    """Loses the answer of each mutating call `lose(operation)` picks, after AWS performed it."""
    lose: Callable[[str], bool]
    lost: list[str] = field(default_factory=list)
    closed: bool = False  # lose answers as a closed connection rather than a 500
    _answers: dict[tuple[str, str], tuple[bytes, int, dict[str, str], bytes]] = field(default_factory=dict)

    def around(self, real: Callable[..., Any], stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        import botocore.exceptions
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        operation = event_name.rsplit(".", 1)[-1]
        if not is_mutating(operation):
            return real(stubber, event_name, request, **kwargs)
        body = request.body.encode() if isinstance(request.body, str) else request.body
        token = _token(body) if isinstance(body, bytes) else None  # streamed bodies (S3 objects) carry none
        if token and (operation, token) in self._answers:  # AWS's idempotency, as documented
            sent, status, headers, content = self._answers[(operation, token)]
            if sent != body:
                status, headers = 400, {}
                content = (b"<Response><Errors><Error><Code>IdempotentParameterMismatch</Code><Message>same token, "
                           b"other parameters</Message></Error></Errors></Response>")
            answer = AWSResponse(request.url, status, _headers(headers), MockRawResponse(content))
        else:
            answer = real(stubber, event_name, request, **kwargs)
            if answer is None or answer.status_code >= 300:
                return answer
            if token:
                self._answers[(operation, token)] = (body, answer.status_code, dict(answer.headers), answer.content)
                answer = AWSResponse(request.url, answer.status_code, _headers(dict(answer.headers)),
                                     MockRawResponse(answer.content))
        if answer.status_code >= 300 or not self.lose(operation):
            return answer
        self.lost.append(operation)
        if self.closed:
            raise botocore.exceptions.ConnectionClosedError(endpoint_url=request.url)
        return AWSResponse(request.url, 500, _headers({}), MockRawResponse(b""))


@contextlib.contextmanager
def losing(lost: LostAnswers) -> Iterator[LostAnswers]:
    """Inside a moto context: every request goes through `lost`."""
    from moto.core.botocore_stubber import BotocoreStubber
    real = BotocoreStubber.__call__

    def call(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        return lost.around(real, stubber, event_name, request, **kwargs)
    with mock.patch.object(BotocoreStubber, "__call__", call):
        yield lost


def first_of(operation: str) -> Callable[[str], bool]:
    """Lose the answer of the first `operation` only."""
    seen = [False]

    def lose(name: str) -> bool:
        if name != operation or seen[0]:
            return False
        seen[0] = True
        return True
    return lose


def at_rate(seed: int, rate: float) -> Callable[[str], bool]:
    chance = random.Random(seed)
    return lambda _operation: chance.random() < rate


# -- what is there -----------------------------------------------------------
def census(stack: str = "threetier") -> dict[str, int]:
    """How many of each kind of thing the stack is made of exists (what "exactly one of everything" counts)."""
    import boto3
    tagged: list[Any] = [{"Name": "tag:threetier:stack", "Values": [stack]}]
    ec2, elbv2, rds = boto3.client("ec2"), boto3.client("elbv2"), boto3.client("rds")
    groups = ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]
    balancers = elbv2.describe_load_balancers()["LoadBalancers"]
    iam = boto3.client("iam")
    return {
        "vpcs": len(ec2.describe_vpcs(Filters=tagged)["Vpcs"]),
        "subnets": len(ec2.describe_subnets(Filters=tagged)["Subnets"]),
        "igws": len(ec2.describe_internet_gateways(Filters=tagged)["InternetGateways"]),
        "eips": len(ec2.describe_addresses()["Addresses"]),
        "nats": len([n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] in ("pending", "available")]),
        "route_tables": len(ec2.describe_route_tables(Filters=tagged)["RouteTables"]),
        "security_groups": len(groups),
        "rules": len([r for r in ec2.describe_security_group_rules()["SecurityGroupRules"] if not r["IsEgress"]
                      and r["GroupId"] in {g["GroupId"] for g in groups}]),
        "buckets": len(boto3.client("s3").list_buckets()["Buckets"]),
        "roles": len([r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(stack)]),
        "profiles": len(iam.list_instance_profiles()["InstanceProfiles"]),
        "db_clusters": len(rds.describe_db_clusters()["DBClusters"]),
        "db_instances": len(rds.describe_db_instances()["DBInstances"]),
        "amis": len(ec2.describe_images(Owners=["self"])["Images"]),
        "builders": len(live_instances(f"{stack}-app-builder", f"{stack}-web-builder")),
        "load_balancers": len(balancers),
        "target_groups": len(elbv2.describe_target_groups()["TargetGroups"]),
        "listeners": sum(len(elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"])
                         for lb in balancers),
        "launch_templates": len(ec2.describe_launch_templates()["LaunchTemplates"]),
        "asgs": len(boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]),
        "scaling_policies": len(boto3.client("autoscaling").describe_policies()["ScalingPolicies"]),
        "log_groups": len(boto3.client("logs").describe_log_groups()["logGroups"]),
        "flow_logs": len(ec2.describe_flow_logs()["FlowLogs"]),
        "alarms": len(boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]),
        "dashboards": len(boto3.client("cloudwatch").list_dashboards()["DashboardEntries"]),
    }


def live_instances(*names: str) -> list[str]:
    """The IDs of the instances with these Name tags that are not terminated (or going)."""
    import boto3
    reservations = boto3.client("ec2").describe_instances(Filters=[
        {"Name": "tag:Name", "Values": list(names)},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"]]


# The default stack, built: exactly one of everything (no builder left).
EXPECTED = {"vpcs": 1, "subnets": 6, "igws": 1, "eips": 2, "nats": 2, "route_tables": 3, "security_groups": 5,
            "rules": 5, "buckets": 1, "roles": 3, "profiles": 2, "db_clusters": 1, "db_instances": 2, "amis": 2,
            "builders": 0, "load_balancers": 2, "target_groups": 2, "listeners": 2, "launch_templates": 2, "asgs": 2,
            # Issue 12: cpu per tier and the web tier's requests; app, nginx-access, nginx-error, flow logs.
            "scaling_policies": 3, "log_groups": 4, "flow_logs": 1, "alarms": 7, "dashboards": 1}
# The Auto Scaling groups' instances of the default stack: 2 a tier (no second group's left behind).
TIER_INSTANCES = 4


def exactly_one_of_everything(counts: dict[str, int]) -> bool:
    return counts == EXPECTED and len(live_instances("threetier-app", "threetier-web")) == TIER_INSTANCES


def engine_in(directory: Path) -> Any:
    """The real engine on a fresh Aws object with a virtual clock (each run is a new process)."""
    from bench.model import VirtualClock
    from steps import PARTS
    from threetier import config as configlib
    from threetier import state as statelib
    from threetier.aws import Aws
    from threetier.engine import Ctx, Engine
    from threetier.output import Output

    config = configlib.parse({})
    aws = Aws(config.region, clock=VirtualClock(), emulator=True, read_threads=1)
    state_file = statelib.StateFile(directory / "state.json")
    state = state_file.load() or statelib.State(stack=config.stack, region=config.region)
    ctx = Ctx(config=config, aws=aws, out=Output(stdout=io.StringIO(), stderr=io.StringIO()), state=state)
    return Engine(ctx, state_file, PARTS)


@dataclass
class Converged:
    seed: int
    up_reruns: int | None = None  # None: not within MAX_RERUNS
    down_reruns: int | None = None
    lost: int = 0
    errors: list[str] = field(default_factory=list)


def rerun_until(run: Callable[[], None], done: Callable[[], bool], errors: list[str]) -> int | None:
    for attempt in range(MAX_RERUNS + 1):
        try:
            run()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if done():
            return attempt
        errors.append("ran without error, but not converged")
    return None


def measure(seed: int, rate: float, *, closed: bool = False) -> Converged:
    from threetier import scan
    result = Converged(seed)
    with moto(), tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp, \
            losing(LostAnswers(at_rate(seed, rate), closed=closed)) as lost:
        directory = Path(tmp)

        def up() -> None:
            engine_in(directory).up()

        def down() -> None:
            engine = engine_in(directory)
            engine.ctx.skip_final_snapshot = True
            engine.down()

        def nothing_left() -> bool:
            left = scan.tagged(looker, "threetier")
            result.errors.extend(f"left after down: {found.describe()}" for found in left)
            return not left

        def exactly_one() -> bool:
            counts = census()
            result.errors.extend(f"{kind}: {n} (not {EXPECTED[kind]})" for kind, n in counts.items()
                                 if n != EXPECTED[kind])
            return exactly_one_of_everything(counts)

        result.up_reruns = rerun_until(up, exactly_one, result.errors)
        looker = engine_in(directory).ctx.aws
        result.down_reruns = rerun_until(down, nothing_left, result.errors)
        result.lost = len(lost.lost)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N (default 3)")
    parser.add_argument("--rate", type=float, default=0.05, help="share of mutating calls whose answer is lost")
    parser.add_argument("--closed", action="store_true", help="lose answers as a closed connection, not a 500")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = [measure(seed, args.rate, closed=args.closed) for seed in range(1, args.seeds + 1)]
    if args.json:
        print(json.dumps([r.__dict__ for r in results]))
    else:
        for r in results:
            def said(n: int | None) -> str:
                return "never (within 5)" if n is None else str(n)
            print(f"seed {r.seed}: {r.lost} answers lost; up reruns {said(r.up_reruns)}, "
                  f"down reruns {said(r.down_reruns)}")
            for error in dict.fromkeys(r.errors):
                print(f"  {error}")
    return 0 if all(r.up_reruns == 0 and r.down_reruns == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
