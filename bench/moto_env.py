"""moto in-process with what this stack needs (as tests/helpers.py and tests/conftest.py set it up),
and call counting with an optional real delay per call."""
from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.resources
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

from threetier.aws import is_mutating

if TYPE_CHECKING:
    from moto.core.config import DefaultConfig

REGION = "us-east-1"
# AWS managed policies are loaded by `aws_managed_policies_we_attach` below, not by moto: all ~1,300
# of them cost about a second of CPU in every new IAM backend, and the stack attaches one.
MOTO_CONFIG: DefaultConfig = {"iam": {"load_aws_managed_policies": False}}


@contextlib.contextmanager
def fake_aws_environment() -> Iterator[None]:
    """Fake credentials and region, no credential files, no metadata lookups: never real AWS."""
    # Removed on the way out: every modeled run and every reference stack makes one.
    home_dir = tempfile.TemporaryDirectory(prefix="bench-no-aws-home-")
    home = home_dir.name
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("AWS_") or key == "NO_COLOR":
            del os.environ[key]
    os.environ.update({
        "HOME": home,
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials-that-do-not-exist"),
        "AWS_CONFIG_FILE": os.path.join(home, "config-that-does-not-exist"),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true", "MOTO_ACM_VALIDATION_WAIT": "0",
    })
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        home_dir.cleanup()


@functools.cache
def _managed_policy_data() -> dict[str, Any]:
    """moto's copy of the AWS managed policies the stack attaches (parsed once a process)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    from threetier.blocks.iam import SSM_MANAGED_POLICY
    return {name: data for name, data in json.loads(aws_managed_policies_data).items()
            if name in (SSM_MANAGED_POLICY,)}


def aws_managed_policies_we_attach(self: Any) -> list[Any]:
    """IAMBackend._init_aws_policies, for only the managed policies the stack attaches."""
    from moto.iam.models import AWSManagedPolicy
    return [AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data)
            for name, data in _managed_policy_data().items()]


AL2023_PARAMETER_PREFIX = "/aws/service/ami-amazon-linux-latest/al2023-"


@functools.cache
def _al2023_images(region: str) -> tuple[dict[str, Any], ...]:
    """The Amazon Linux 2023 AMIs that moto's SSM public parameters name in `region`, as moto's EC2
    describes them: the only public images the stack launches (threetier/blocks/baking.py)."""
    try:
        parameters = _moto_resource(f"ssm/resources/ami-amazon-linux-latest/{region}.json")
        images = _moto_resource(f"ec2/resources/latest_amis/{region}.json")
    except FileNotFoundError:
        return ()
    named = {p["Value"] for p in parameters if p["Name"].startswith(AL2023_PARAMETER_PREFIX)}
    return tuple(image for image in images if image["ami_id"] in named)


def _moto_resource(path: str) -> Any:
    """A JSON file moto ships (`path` under its package; gzipped or not), read here: moto's own
    loader changed its arguments within 5.2 (a module and a relative path, then a path alone)."""
    root = importlib.resources.files("moto")
    for name in (f"{path}.gz", path):
        found = root.joinpath(*name.split("/"))
        if found.is_file():
            data = found.read_bytes()
            return json.loads(gzip.decompress(data) if name.endswith(".gz") else data)
    raise FileNotFoundError(path)


def load_amis_we_launch(self: Any) -> None:
    """AmiBackend._load_amis for only the images `_al2023_images` names: moto's default set (several
    hundred AMIs) costs a third of a second in every new EC2 backend."""
    from moto.core.parse import default_timestamp_parser
    from moto.ec2.models.amis import Ami
    for found in _al2023_images(self.region_name):
        image = {**found, "owner_alias": "amazon"}
        if image.get("creation_date"):
            image["creation_date"] = default_timestamp_parser(image["creation_date"])
        self.amis[image["ami_id"]] = Ami(self, **image)


def _update_auto_scaling_group(original: Any) -> Any:
    """AutoScalingResponse.update_auto_scaling_group as AWS answers it: moto 5.2.1 drops a group's
    MixedInstancesPolicy on any update that does not repeat it (a pause's sizes, say), and ignores
    CapacityRebalance. AWS keeps the policy unless the update names a launch template (or another
    policy), and sets CapacityRebalance when given."""
    def update(self: Any) -> Any:
        group = self.autoscaling_backend.autoscaling_groups.get(self._get_param("AutoScalingGroupName"))
        replaced = any(self._get_param(key) for key in ("MixedInstancesPolicy", "LaunchTemplate",
                                                        "LaunchConfigurationName"))
        kept = None if group is None or replaced else group.mixed_instances_policy
        answer = original(self)
        if group is not None:
            if kept is not None:
                group.mixed_instances_policy = kept
            rebalance = self._get_bool_param("CapacityRebalance", None)
            if rebalance is not None:
                group.capacity_rebalance = rebalance
        return answer
    return update


@contextlib.contextmanager
def mocked_aws() -> Iterator[None]:
    """moto in-process, as the tests use it too: of AWS's managed policies and public images only
    those the stack uses (a new backend in a few milliseconds instead of a second and a half), and
    snapshot tags in CreateImage's TagSpecifications taken as real AWS takes them (moto raises
    NotImplementedError), and UpdateAutoScalingGroup's mixed instances policy and CapacityRebalance
    as AWS keeps them (`_update_auto_scaling_group`)."""
    from moto import mock_aws
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.ec2.models.amis import AmiBackend
    from moto.iam.models import IAMBackend

    original = AmiBackend.create_image

    def create_image(self: Any, instance_id: str, name: str, description: str, tag_specifications: list) -> Any:
        snapshot_tags = [t for spec in tag_specifications if spec["ResourceType"] == "snapshot" for t in spec["Tags"]]
        others = [spec for spec in tag_specifications if spec["ResourceType"] != "snapshot"]
        ami = original(self, instance_id, name, description, others)
        for tag in snapshot_tags:
            ami.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        return ami

    # The patches first, so they still hold when moto's mock ends: its reset re-creates each backend it
    # empties, and with all of moto's AMIs that costs a third to half a CPU-second every time.
    with mock.patch.object(AmiBackend, "create_image", create_image), \
            mock.patch.object(AmiBackend, "_load_amis", load_amis_we_launch), \
            mock.patch.object(IAMBackend, "_init_aws_policies", aws_managed_policies_we_attach), \
            mock.patch.object(AutoScalingResponse, "update_auto_scaling_group",
                              _update_auto_scaling_group(AutoScalingResponse.update_auto_scaling_group)), \
            mock_aws(config=MOTO_CONFIG):
        yield


@contextlib.contextmanager
def moto() -> Iterator[None]:
    """`mocked_aws` in a fake AWS environment (tests/conftest.py's), with the CLI run in-process told
    AWS is an emulator, so `up` tries no HTTP round trip through a load balancer nobody serves."""
    from threetier.cli.common import Runtime

    real_aws = Runtime.aws

    def emulated_aws(self: Runtime, **kwargs: Any) -> Any:
        made = real_aws(self, **kwargs)
        made.emulator = True
        return made

    with fake_aws_environment(), mocked_aws(), mock.patch.object(Runtime, "aws", emulated_aws):
        yield


LOCK_CALLS = ("ssm.PutParameter", "ssm.DeleteParameter")  # threetier.lock; the stack uses no other parameter


@dataclass
class CallCount:
    calls: list[str] = field(default_factory=list)  # "service.Operation", in the order made
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return len(self.calls)

    @property
    def mutating(self) -> list[str]:
        """Changes to the stack: taking and releasing the stack's lock (every `up`) are not."""
        return [c for c in self.calls if is_mutating(c.split(".", 1)[1]) and c not in LOCK_CALLS]

    @property
    def lock_calls(self) -> list[str]:
        return [c for c in self.calls if c in LOCK_CALLS]


@contextlib.contextmanager
def counting_calls(delay: float = 0.0) -> Iterator[CallCount]:
    """Count every AWS API call (botocore's BaseClient._make_api_call), and delay each by a real
    `delay` seconds (a round trip to a region; calls from several threads overlap, as they would).
    Calls a latency model makes for itself are neither counted nor delayed."""
    from botocore.client import BaseClient

    count = CallCount()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]  # private: botocore-stubs omit it

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if not getattr(self, "_threetier_bench_internal", False):
            with count.lock:
                count.calls.append(f"{self.meta.service_model.service_name}.{operation_name}")
            if delay:
                time.sleep(delay)
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", make_api_call):
        yield count
