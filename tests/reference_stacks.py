"""Reference stacks: each built once per test session (per xdist worker), then restored for every
test that starts from a built stack.

A stack built by `up` in moto is moto's backends plus the files `up` left in its directory
(config.yaml and the state file). `take` deep-copies both; `restore` puts a fresh copy of the
backends into the running mock and the files into the test's directory (the state file twice: where
the CLI keeps it, .threetier/<stack>.json, and where helpers.make_engine does, state.json). A restore costs a few
tenths of a CPU-second against five for a build, and the stack is the one `up` made: not a
hand-made imitation. Tests *about* building still build from nothing -- unless what they check
is what the reference stack's own build said and did (`Build`: its plan, its `up`'s report and
calls), which they read instead of building the same stack again.

This reaches into moto's storage (`BackendDict`, the per-account and per-region backends): the
minor version of moto is pinned in setup.cfg for that reason, and tests/test_reference_stacks.py
proves a snapshot round-trips (status clean, a no-op `up`, the same resources).
"""
from __future__ import annotations

import contextlib
import copy
import copyreg
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.client
import yaml

from bench.moto_env import moto
from helpers import cli


def _parameters(parameters: Any) -> tuple:
    """copy.deepcopy of moto's SSM ParameterDict: a defaultdict whose __init__ wants the account and
    region, which the default reduction of a defaultdict does not pass."""
    return (_new_parameters, (type(parameters), parameters.account_id, parameters.region_name),
            dict(parameters.__dict__), None, iter(parameters.items()))


def _new_parameters(kind: type, account_id: str, region_name: str) -> Any:
    return kind(account_id, region_name)


def _register_copiers() -> None:
    from moto.ssm.models import ParameterDict
    copyreg.pickle(ParameterDict, _parameters)


@dataclass(frozen=True)
class Snapshot:
    # (the service's BackendDict, account, {region: backend}): the BackendDicts are moto's own,
    # module-level and kept by reference; the backends are this snapshot's private copies.
    backends: list[tuple[Any, str, dict[str, Any]]]
    # S3's one piece of state outside its backends: which account owns each bucket name (moto
    # refuses CreateBucket of a name it holds, as AWS refuses a name taken anywhere).
    bucket_accounts: dict[str, tuple[str, str]]
    files: dict[str, bytes]  # path relative to the stack's directory -> content


@dataclass(frozen=True)
class Build:
    """What the build of a reference stack said and did, for tests about building from nothing that
    would otherwise build the same stack again: `plan --json` of the empty account just before the
    `up`, that `up --yes --json`'s report, and every AWS call the `up` made (waiters' and
    paginators' too) as (service, operation), in order, with each call's parameters beside it."""
    plan: dict[str, Any]
    up: dict[str, Any]
    up_calls: tuple[tuple[str, str], ...]
    up_params: tuple[dict[str, Any], ...]  # up_calls[i]'s parameters


@contextlib.contextmanager
def recording_calls() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """Every AWS call made in this process meanwhile, whichever thread makes it, as (service,
    operation, parameters)."""
    seen: list[tuple[str, str, dict[str, Any]]] = []
    real = botocore.client.BaseClient._make_api_call

    def record(self: Any, operation: str, params: dict[str, Any]) -> Any:
        seen.append((self.meta.service_model.service_name, operation, copy.deepcopy(params)))
        return real(self, operation, params)
    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", record):
        yield seen


def _copy(backends: list[tuple[Any, str, dict[str, Any]]]) -> list[tuple[Any, str, dict[str, Any]]]:
    # One deepcopy for all services, so that references between backends (autoscaling's ec2_backend,
    # say) stay references to the copies; moto's BackendDicts are not copied.
    memo: dict[int, Any] = {id(service): service for service, _, _ in backends}
    return copy.deepcopy(backends, memo)


def _untracked_copies(backends: list[tuple[Any, str, dict[str, Any]]]) -> list[tuple[Any, str, dict[str, Any]]]:
    """`_copy`, for a snapshot: moto tracks every model instance made, copies too, and when a mock
    ends its S3 reset closes the buffer of every object it tracks -- the snapshot's included, whose
    objects would then come back empty. The snapshot's copies are no live instances: untracked."""
    from moto.core.model_instances import model_data
    models = [model for per_service in model_data.values() for model in per_service.values()]
    tracked = {model: len(model.instances_tracked) for model in models}  # type: ignore[attr-defined]
    copied = _copy(backends)
    for model in models:
        del model.instances_tracked[tracked[model]:]  # type: ignore[attr-defined]
    return copied


def take(directory: Path) -> Snapshot:
    """The running mock's backends and the stack's files, copied (call inside the mock)."""
    from moto.core.base_backend import BackendDict
    from moto.s3.models import s3_backends
    _register_copiers()
    live = [(service, account, dict(regions))
            for service in dict.fromkeys(BackendDict._instances)  # one entry per account: deduplicated
            for account, regions in service.items()]
    files = {str(path.relative_to(directory)): path.read_bytes()
             for path in sorted(directory.rglob("*")) if path.is_file() and not path.name.endswith(".lock")}
    return Snapshot(backends=_untracked_copies(live), bucket_accounts=dict(s3_backends.bucket_accounts), files=files)


def restore(snapshot: Snapshot, directory: Path) -> None:
    """Make the running mock (fresh: nothing created yet) hold a copy of the snapshot's backends,
    and `directory` its files."""
    from moto.s3.models import s3_backends
    _register_copiers()
    for service, account, regions in _copy(snapshot.backends):
        per_account = service[account]  # registers the service with moto, so the mock's end resets it
        for region, backend in regions.items():
            dict.__setitem__(per_account, region, backend)
    s3_backends.bucket_accounts.update(snapshot.bucket_accounts)
    for relative, content in snapshot.files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if path.parent.name == ".threetier" and path.suffix == ".json":
            (directory / "state.json").write_bytes(content)  # where helpers.make_engine keeps it


# The stacks tests start from, by name: config.yaml for each (an empty one is the shipped defaults).
# Built only when a test asks for it: an unused one costs nothing.
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "email": {"monitoring": {"email": "ops@example.com"}},
    "no_alarms": {"monitoring": {"alarms": False}},
    "edge": {"edge": {"domain": "shop.example.com", "hosted_zone": "example.com"}},
    "waf": {"edge": {"waf": True}},
    "edge_waf": {"edge": {"domain": "shop.example.com", "hosted_zone": "example.com", "waf": True}},
    "edge_cdn": {"edge": {"domain": "shop.example.com", "hosted_zone": "example.com", "cdn": True}},
}


def _before_edge(directory: Path) -> None:
    """The user's public zone, which threetier never creates."""
    import boto3
    boto3.client("route53").create_hosted_zone(Name="example.com", CallerReference="example.com")


BEFORE_UP = {"edge": _before_edge, "edge_waf": _before_edge, "edge_cdn": _before_edge}


@dataclass
class ReferenceStacks:
    """The session's reference stacks, each built the first time a test asks for it."""
    workdir: Path
    built: dict[str, Snapshot] = field(default_factory=dict)
    builds: dict[str, Build] = field(default_factory=dict)

    def snapshot(self, name: str) -> Snapshot:
        if name not in self.built:
            directory = self.workdir / name
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "config.yaml").write_text(yaml.safe_dump(CONFIGS[name]))
            with moto():
                if name in BEFORE_UP:
                    BEFORE_UP[name](directory)
                plan = cli("plan", "--json", cwd=directory)  # reads only: the build is the same without it
                assert plan.code == 0, f"reference stack {name!r}: plan failed\n{plan.stderr}"
                with recording_calls() as calls:
                    result = cli("up", "--yes", "--json", cwd=directory)
                assert result.code == 0, f"reference stack {name!r}: up failed\n{result.stderr}"
                self.builds[name] = Build(plan=json.loads(plan.stdout), up=json.loads(result.stdout),
                                          up_calls=tuple((service, operation) for service, operation, _ in calls),
                                          up_params=tuple(params for _, _, params in calls))
                self.built[name] = take(directory)
            shutil.rmtree(directory)
        return self.built[name]

    def build(self, name: str) -> Build:
        """What building the reference stack `name` from nothing said and did (built now if not yet)."""
        self.snapshot(name)
        return self.builds[name]

    def close(self) -> None:
        """Close the snapshots' S3 object buffers (moto's reset closes only the live ones): else
        each complains from its __del__ while the interpreter shuts down."""
        from moto.s3.models import FakeKey
        for snapshot in self.built.values():
            for _, _, regions in snapshot.backends:
                for backend in regions.values():
                    for bucket in getattr(backend, "buckets", {}).values():
                        for key in getattr(bucket, "keys", {}).values():
                            if isinstance(key, FakeKey):
                                key.dispose()
        self.built.clear()

    @contextlib.contextmanager
    def restored(self, name: str, directory: Path) -> Iterator[Path]:
        """Inside a fresh mock: the stack `name` as `up` left it, its files in `directory`."""
        snapshot = self.snapshot(name)  # outside the mock below: a build has a mock of its own
        with moto():
            restore(snapshot, directory)
            yield directory
