"""The one AWS layer: clients, every call, every retry and every wait.

Every AWS call of threetier goes through `Aws.call` (or `Aws.pages`), which
- uses clients built with botocore's `standard` retry mode (throttling, 5xx),
- retries the eventual-consistency errors a caller names (a NAT gateway or an
  instance profile that AWS has created but not yet propagated),
- treats "not found" as success where the caller says so (deletes),
- never resends blindly a create AWS cannot make idempotent (no ClientToken): given `found`, after
  an answer that may hide a performed request (a 5xx, a timeout, a closed connection), it looks for
  the resource before botocore sends the request again, and adopts what it finds; an "already
  exists" (`exists`) is adopted the same way,
- and turns any other ClientError into an `AwsError` naming the part, the
  resource and AWS's error code.
All waiting goes through `Aws.wait`, with explicit delays and timeouts and an
injectable clock, so tests and benchmarks can run pending states without sleeping.

Looking is cheap: `Aws.look` is a read that may be answered from the run's
inventory, which `Aws.prefetch` fills with many reads at once (a few threads,
within AWS's throttling limits). Any mutating call empties it, so only a run
that changes nothing (a no-op `up`, `status`, `plan`) is served from it, and a
wait reads again, live, after every poll that found the resource not ready.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

from threetier import __version__
from threetier.errors import ThreetierError, UsageError
from threetier.sandbox import CREDENTIALS as SANDBOX_CREDENTIALS

READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search")
# Eventual consistency right after a create: the new ID is not known everywhere yet.
NOT_YET_VISIBLE = (
    "InvalidNatGatewayID.NotFound",
    "InvalidGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidVpcID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidAllocationID.NotFound",
    "InvalidInternetGatewayID.NotFound",
)


# Errors that may hide a performed request: AWS may have done it, its answer was lost.
AMBIGUOUS_EXCEPTIONS = (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError)


class Adopted(Exception):
    """Raised inside botocore's retry loop when what a create whose answer was lost made is found."""

    def __init__(self, value: Any):
        super().__init__("adopted")
        self.value = value


class AwsError(ThreetierError):
    """An AWS call failed: which part, which resource, AWS's error code."""

    def __init__(self, part: str, action: str, resource: str, code: str, message: str):
        self.part, self.action, self.resource, self.code, self.aws_message = part, action, resource, code, message
        where = f"{part}: " if part else ""
        what = f"{action} {resource}" if resource else action
        super().__init__(f"{where}{what} failed: {code}: {message}")


class WaitTimeout(ThreetierError):
    def __init__(self, part: str, resource: str, waited: float, last_status: str):
        self.part, self.resource, self.last_status = part, resource, last_status
        where = f"{part}: " if part else ""
        super().__init__(f"{where}gave up waiting for {resource} after {waited:.0f}s (last status: {last_status})")


@dataclass(frozen=True)
class Poll:
    """One look at a resource being waited for."""
    done: bool
    status: str
    failed: str | None = None  # set when the resource reached a state it will not leave


@dataclass
class Clock:
    """Real time; tests and benchmarks pass a virtual one."""
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


class ClockLike(Protocol):
    """What the AWS layer needs of a clock: a Clock, or the scheduler's TaskClock while parts run."""
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Call:
    service: str
    operation: str  # AWS's name, e.g. CreateVpc
    params: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def mutating(self) -> bool:
        return is_mutating(self.operation)


@dataclass(frozen=True)
class Look:
    """One read for the inventory: `service.operation(**params)`, all pages when `key` is set."""
    service: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict, compare=False)
    missing_ok: tuple[str, ...] = ()
    key: str | None = None  # paginate, collecting the items under this key
    retry_codes: tuple[str, ...] = ()  # eventual consistency right after a create (see Aws.call)
    region: str | None = None  # another region than the stack's (CloudFront's certificate: us-east-1)

    @property
    def id(self) -> str:
        where = [self.region] if self.region else []  # the stack's region: ids as they always were
        return json.dumps([self.service, self.operation, self.params, self.key, *where], sort_keys=True, default=str)




def is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES) and operation != "AssumeRole"


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "Unknown")


TRY_WITHOUT_AN_ACCOUNT = "to try threetier without an AWS account: threetier up --sandbox"


class NoCredentials(UsageError):
    """No credentials to sign with, or a profile that does not exist: nothing was attempted (exit 2)."""


# Credentials that are there but cannot be used: met at the first call, before anything is done.
CREDENTIAL_ERRORS = (botocore.exceptions.PartialCredentialsError, botocore.exceptions.CredentialRetrievalError,
                     botocore.exceptions.ProfileNotFound)


def session(region: str | None = None, profile: str | None = None) -> boto3.Session:
    """A boto3 session from the usual places (AWS_PROFILE, the shared files, the environment)."""
    try:
        return boto3.Session(region_name=region, profile_name=profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise NoCredentials(f"{exc} (AWS_PROFILE names it; `aws configure list-profiles` lists those there "
                            f"are); nothing was done; {TRY_WITHOUT_AN_ACCOUNT}") from None


class Aws:
    def __init__(
        self,
        region: str,
        *,
        profile: str | None = None,
        endpoint_url: str | None = None,
        credentials: dict[str, str] | None = None,
        clock: Clock | None = None,
        on_call: Callable[[Call], None] | None = None,
        max_attempts: int = 10,
        emulator: bool | None = None,
        read_threads: int = 8,
    ):
        self.region = region
        self.endpoint_url = endpoint_url
        # An emulator (moto, LocalStack) answers the API but serves no load balancer.
        self.emulator = bool(endpoint_url) if emulator is None else emulator
        # A load balancer applies a listener change within seconds; an emulator's at once (the
        # benchmark, an emulator that models AWS's times, says otherwise).
        self.listener_changes_at_once = self.emulator
        if credentials:  # given outright (the sandbox): no AWS_PROFILE or shared file may interfere
            isolated = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
            self.session = boto3.Session(botocore_session=isolated, region_name=region, **credentials)
        else:
            self.session = session(region, profile)
        self.client_config = botocore.config.Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            user_agent_extra=f"threetier/{__version__}",
            connect_timeout=10,
            read_timeout=60,
        )
        self.clock: ClockLike = clock or Clock()
        # Reads at once when taking the inventory: well inside every service's describe throttling
        # (EC2: 100 burst, 20/s). 1 for in-process emulators, where calls are CPU, not network, bound.
        self.read_threads = read_threads
        self.on_call = on_call
        self.on_poll: Callable[[str, Poll], None] | None = None  # progress displays hook in here
        self.calls: list[Call] = []
        self._local = threading.local()  # per task: the part running, the reads of a probe
        self._lock = threading.Lock()
        self._inventory: dict[str, Any] = {}
        self._clients: dict[str, Any] = {}
        self._identity: dict[str, str] | None = None

    @property
    def part(self) -> str:
        """The part running in this thread (each part runs in its own), for error messages."""
        return getattr(self._local, "part", "")

    @part.setter
    def part(self, label: str) -> None:
        self._local.part = label

    # -- clients -------------------------------------------------------------
    def client(self, service: str, region: str | None = None) -> Any:
        """The client of `service` in the stack's region, or in `region` (CloudFront's certificates
        and web ACLs live in us-east-1 whatever the stack's region)."""
        with self._lock:
            return self._client(service, region if region != self.region else None)

    def _client(self, service: str, region: str | None) -> Any:
        key = service if region is None else f"{service}@{region}"
        if key not in self._clients:
            kwargs: dict[str, Any] = {"config": self.client_config}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            if region is not None:
                kwargs["region_name"] = region
            # The service is a run-time name (Aws.call's dynamic dispatch); boto3-stubs overload literal names only.
            client = self.session.client(service, **kwargs)  # type: ignore[call-overload]
            client.meta.events.register("before-parameter-build", self._record)
            client.meta.events.register_first("needs-retry", self._before_resend)
            self._clients[key] = client
        return self._clients[key]

    def _before_resend(self, response: Any = None, caught_exception: Exception | None = None, attempts: int = 1,
                       **_: Any) -> None:
        """Before botocore resends a create that has no idempotency token (Aws.call's `found`) after an
        answer that may hide a performed request: look for what it made, and adopt that instead."""
        found = getattr(self._local, "found", None)
        status = response[0].status_code if response and response[0] is not None else 0
        if found is None or not (status >= 500 or isinstance(caught_exception, AMBIGUOUS_EXCEPTIONS)):
            return  # botocore decides (throttling, other transient errors, success)
        self._local.found = None  # its own reads are plain reads
        try:
            self.clock.sleep(min(2.0 ** attempts, 20.0))  # what was made may take a moment to be listed
            adopted = found()
        finally:
            self._local.found = found
        if adopted is not None:
            raise Adopted(adopted)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        call = Call(model.service_model.service_name, model.name, params)
        with self._lock:
            self.calls.append(call)
            if call.mutating:  # what the inventory says may no longer be true
                self._inventory.clear()
        if self.on_call:
            self.on_call(call)

    @property
    def account(self) -> str:
        return self._caller()["Account"]

    @property
    def caller_arn(self) -> str:
        return self._caller().get("Arn", "")

    def _caller(self) -> dict[str, str]:
        if self._identity is None:
            self._identity = self.call("sts", "get_caller_identity", resource="")
        return self._identity

    @property
    def partition(self) -> str:
        return self.session.get_partition_for_region(self.region) if self.region else "aws"

    def mutating_calls(self) -> list[Call]:
        return [c for c in self.calls if c.mutating]

    # -- calls ---------------------------------------------------------------
    def call(
        self,
        service: str,
        operation: str,
        *,
        resource: str,
        missing_ok: tuple[str, ...] = (),
        retry_codes: tuple[str, ...] = (),
        retry_timeout: float = 120,
        retry_delay: float = 5,
        retry_message: str | None = None,
        retry_done: Callable[[], bool] | None = None,
        found: Callable[[], Any] | None = None,
        exists: tuple[str, ...] = (),
        region: str | None = None,
        **params: Any,
    ) -> Any:
        """Call `service.operation(**params)` (in `region` when given, else the stack's).

        missing_ok: error codes meaning "it is already gone": return None.
        retry_codes: error codes that mean "not yet": retry every retry_delay
        seconds for up to retry_timeout seconds (eventual consistency);
        with retry_message, only errors whose message contains it.
        retry_done: asked after each of those errors, before waiting: whether what the call asks
        for has come about all the same (botocore resent a request whose answer was lost, and AWS
        refuses the copy because of what the first one did): then the call returns None.
        found: for a create AWS cannot make idempotent (no ClientToken): what the call made, looked up
        by its tags or name, in the shape of the call's answer (None: not there). After an answer that
        may hide a performed request (a 5xx, a closed connection, a timeout) botocore sends it again
        only when `found` finds nothing; what it finds is returned instead.
        exists: error codes meaning "there is one already" (the run's own lost first request, or its
        copy): what `found` finds is returned (nothing found: the error is raised).
        """
        started = self.clock.now()
        while True:
            try:
                # Inside: botocore resolves credentials when it makes the client (a partial key pair,
                # a failing credential_process, a source_profile that does not exist).
                self._local.found = found
                try:
                    return getattr(self.client(service, region), operation)(**params)
                finally:
                    self._local.found = None
            except Adopted as adopted:
                return adopted.value
            except botocore.exceptions.ClientError as exc:
                code = error_code(exc)
                if found is not None and code in exists and (made := found()) is not None:
                    return made
                if code in missing_ok:
                    return None
                message = exc.response.get("Error", {}).get("Message", "") or ""
                if code in retry_codes and (retry_message is None or retry_message.lower() in message.lower()):
                    if retry_done is not None and retry_done():
                        return None
                    if self.clock.now() - started < retry_timeout:
                        self.clock.sleep(retry_delay)
                        continue
                raise self.error(operation, resource, exc) from None
            except botocore.exceptions.NoCredentialsError as exc:
                raise self._credentials_failed(operation, resource, exc, "no AWS credentials found (set AWS_PROFILE, "
                                               "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; `aws sso login` for "
                                               "SSO)") from None
            except CREDENTIAL_ERRORS as exc:
                raise self._credentials_failed(operation, resource, exc,
                                               f"the AWS credentials cannot be used: {exc}") from None
            except botocore.exceptions.BotoCoreError as exc:
                raise AwsError(self.part, _verb(operation), resource, type(exc).__name__, str(exc)) from None

    def _credentials_failed(self, operation: str, resource: str, exc: Exception, what: str) -> ThreetierError:
        """Before any change (the account check is every command's first call): a usage error, exit 2,
        with how to try it without an account. Later (credentials that expired mid-run): an AWS error."""
        if not self.mutating_calls():
            return NoCredentials(f"{what}; nothing was done; {TRY_WITHOUT_AN_ACCOUNT}")
        return AwsError(self.part, _verb(operation), resource, type(exc).__name__, what)

    def items(self, service: str, operation: str, key: str, *, resource: str, region: str | None = None,
              **params: Any) -> Iterator[Any]:
        """Every item under `key` across all pages of a list/describe call."""
        for page in self.pages(service, operation, resource=resource, region=region, **params):
            yield from page.get(key, [])

    def pages(self, service: str, operation: str, *, resource: str, region: str | None = None,
              **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a list/describe call."""
        paginator = self.client(service, region).get_paginator(operation)
        try:
            yield from paginator.paginate(**params)
        except botocore.exceptions.ClientError as exc:
            raise self.error(operation, resource, exc) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsError(self.part, _verb(operation), resource, type(exc).__name__, str(exc)) from None

    # -- the inventory -------------------------------------------------------
    def look(self, look: Look, *, resource: str, live: bool = False) -> Any:
        """A read, answered from the inventory when it holds it (None: missing_ok said gone);
        `live`: from AWS (and kept for the next look)."""
        with self._lock:
            hit = look.id in self._inventory and not live
            value = self._inventory.get(look.id)
        if not hit:
            value = self._read(look, resource)
            with self._lock:
                self._inventory[look.id] = value
        reads = getattr(self._local, "reads", None)
        if reads is not None:
            reads.append(look.id)
        return value

    def peek(self, look: Look) -> Any:
        """What the inventory holds for `look`, without asking AWS (None when it holds nothing)."""
        with self._lock:
            return self._inventory.get(look.id)

    def has(self, look: Look) -> bool:
        with self._lock:
            return look.id in self._inventory

    def prefetch(self, looks: list[Look]) -> None:
        """Fill the inventory with these reads, several at once. A read that fails is left
        out: the caller meets the same error, with its part and resource, when it looks."""
        wanted = list({look.id: look for look in looks if not self.has(look)}.values())
        for service, region in {(look.service, look.region) for look in wanted}:
            self.client(service, region)  # clients are made once, here, not by several threads at once
        part = self.part

        def read(look: Look) -> None:
            self.part = part
            try:
                value = self._read(look, resource=look.operation)
            except ThreetierError:
                return
            with self._lock:
                self._inventory[look.id] = value

        if len(wanted) <= 1 or self.read_threads <= 1:
            for look in wanted:
                read(look)
            return
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.read_threads, thread_name_prefix="threetier-look")
        try:
            for future in [pool.submit(read, look) for look in wanted]:
                future.result()
        except BaseException:  # Ctrl-C: do not wait for the reads not yet started
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()

    def _read(self, look: Look, resource: str) -> Any:
        if look.key is None:
            return self.call(look.service, look.operation, resource=resource, missing_ok=look.missing_ok,
                             retry_codes=look.retry_codes, region=look.region, **look.params)
        try:
            return list(self.items(look.service, look.operation, look.key, resource=resource, region=look.region,
                                   **look.params))
        except AwsError as exc:
            if exc.code in look.missing_ok:
                return None
            raise

    def error(self, operation: str, resource: str, exc: botocore.exceptions.ClientError) -> AwsError:
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        return AwsError(self.part, _verb(operation), resource, error_code(exc), message)

    # -- waiting -------------------------------------------------------------
    def wait(
        self,
        resource: str,
        probe: Callable[[], Poll],
        *,
        delay: float,
        timeout: float,
        on_poll: Callable[[Poll], None] | None = None,
    ) -> Poll:
        """Poll `probe` every `delay` seconds until done, failed, or `timeout`."""
        started = self.clock.now()
        while True:
            self._local.reads = []
            try:
                poll = probe()
            finally:
                reads, self._local.reads = self._local.reads, None
            if not poll.done:  # the next poll must see AWS as it is then, not the inventory
                with self._lock:
                    for read in reads:
                        self._inventory.pop(read, None)
            if on_poll:
                on_poll(poll)
            if self.on_poll:
                self.on_poll(resource, poll)
            if poll.failed:
                raise AwsError(self.part, "waiting for", resource, poll.status, poll.failed)
            if poll.done:
                return poll
            waited = self.clock.now() - started
            if waited >= timeout:
                raise WaitTimeout(self.part, resource, waited, poll.status)
            self.clock.sleep(min(delay, max(timeout - waited, 0.01)))


def aws_cli(aws: Aws, command: str) -> str:
    """`command` ("rds reboot-db-instance --db-instance-identifier x") as an AWS CLI command line that
    reaches what `aws` reaches: in its region (threetier's may not be the CLI's default) and, on an
    emulator's endpoint (the sandbox, AWS_ENDPOINT_URL), there rather than in AWS. The sandbox's dummy
    credentials go in front, so a user with no AWS account at all can run it as it is."""
    words = ["aws", command, "--region", shlex.quote(aws.region)]
    if aws.endpoint_url:
        words += ["--endpoint-url", shlex.quote(aws.endpoint_url)]
        if has_sandbox_credentials(aws):
            words[:0] = [f"AWS_ACCESS_KEY_ID={SANDBOX_CREDENTIALS['aws_access_key_id']}",
                         f"AWS_SECRET_ACCESS_KEY={SANDBOX_CREDENTIALS['aws_secret_access_key']}"]
    return " ".join(words)


def has_sandbox_credentials(aws: Aws) -> bool:
    """Whether `aws` signs with the sandbox's dummy keys: only those are ever said in a command."""
    given = aws.session.get_credentials()
    return given is not None and (given.access_key, given.secret_key) == (
        SANDBOX_CREDENTIALS["aws_access_key_id"], SANDBOX_CREDENTIALS["aws_secret_access_key"])


def _verb(operation: str) -> str:
    """CreateNatGateway / create_nat_gateway -> 'create nat gateway'."""
    words = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower().split("_")
    return " ".join(w for w in words if w)


def client_token(*parts: str) -> str:
    """An idempotency token: the same within the hour for the same inputs, so a create retried
    after a crash returns the same resource; then it changes, because AWS remembers tokens for a
    day and would otherwise answer a new create with an old, deleted resource."""
    hour = time.strftime("%Y%m%d%H", time.gmtime())
    return hashlib.sha256("/".join((*parts, hour)).encode()).hexdigest()[:64]


# -- tags and names ----------------------------------------------------------
STACK_TAG = "threetier:stack"
PART_TAG = "threetier:part"


def tags(stack: str, part: int, name: str) -> list[dict[str, str]]:
    return [
        {"Key": STACK_TAG, "Value": stack},
        {"Key": PART_TAG, "Value": str(part)},
        {"Key": "Name", "Value": name},
    ]


def tag_spec(resource_type: str, stack: str, part: int, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": tags(stack, part, name)}]


def tag_filters(stack: str, name: str | None = None) -> list[dict[str, Any]]:
    filters = [{"Name": f"tag:{STACK_TAG}", "Values": [stack]}]
    if name is not None:
        filters.append({"Name": "tag:Name", "Values": [name]})
    return filters


def tag_value(resource: dict[str, Any], key: str) -> str | None:
    for tag in resource.get("Tags", []) or []:
        if tag.get("Key") == key:
            return tag.get("Value")
    return None
