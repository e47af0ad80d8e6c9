"""How CloudFront proves to the external ALB that a request came through it (config.yaml `edge.cdn`).

The ALB's security group admits CloudFront's origin-facing addresses only, but those are every
CloudFront distribution's, anyone's: the stack's distribution also sends a header with a secret
value, and the ALB forwards only requests that carry it (the rest: 403). The value is made here,
kept in Secrets Manager as `<stack>-cdn-origin-header` (tagged with the stack), read from there
when needed and never written to the state file or the terminal. It goes with the stack, or when
`edge.cdn` is turned off: deleted at once, not after a recovery window, which would keep its name
taken from the next `up`.
"""
from __future__ import annotations

import secrets

from threetier.aws import STACK_TAG, Look, client_token, tag_value, tags
from threetier.engine import Check, Ctx
from threetier.errors import ThreetierError

ROLE = "cdn-origin-header"
HEADER = "X-Origin-Verify"  # the header CloudFront adds to every request it sends the ALB
GONE = ("ResourceNotFoundException",)
VALUE_BYTES = 32  # 256 bits: not guessable, and well inside an ALB condition value's 128 characters


def secret_name(ctx: Ctx) -> str:
    return ctx.name(ROLE)


def secret_look(ctx: Ctx) -> Look:
    return Look("secretsmanager", "describe_secret", {"SecretId": secret_name(ctx)}, missing_ok=GONE)


def value_look(ctx: Ctx) -> Look:
    return Look("secretsmanager", "get_secret_value", {"SecretId": secret_name(ctx)}, missing_ok=GONE)


def _described(ctx: Ctx, *, live: bool = False) -> dict | None:
    found = ctx.aws.look(secret_look(ctx), resource=f"secret {secret_name(ctx)}", live=live)
    if found is not None and tag_value(found, STACK_TAG) != ctx.stack:
        raise ThreetierError(f"{ctx.aws.part}: secret {secret_name(ctx)} exists and is not this stack's (no "
                             f"{STACK_TAG}={ctx.stack} tag); threetier keeps CloudFront's origin header there: "
                             f"delete or rename that secret, or choose another stack name")
    return found


def ensure_secret(ctx: Ctx) -> None:
    """Find the stack's secret or make it (a value of its own, random). One scheduled for deletion
    (by hand) is restored: its name cannot be used again until it is gone."""
    found = _described(ctx, live=True)
    name = secret_name(ctx)
    if found is not None:
        if found.get("DeletedDate"):
            ctx.aws.call("secretsmanager", "restore_secret", resource=f"secret {name}", SecretId=name)
            ctx.record("restored", "secret", name)
        return
    ctx.aws.call(
        "secretsmanager", "create_secret", resource=f"secret {name}", Name=name,
        Description="The header value CloudFront sends the external load balancer (threetier, edge.cdn)",
        SecretString=secrets.token_urlsafe(VALUE_BYTES),
        # The same value's version after a lost answer; a crash before the answer: found above next time.
        ClientRequestToken=client_token(ctx.stack, ctx.aws.region, ROLE),
        Tags=tags(ctx.stack, ctx.part_number, name))
    ctx.record("created", "secret", name)


def value(ctx: Ctx) -> str | None:
    """The header's value (None: there is no secret yet). Read from AWS once a run, kept in memory only."""
    found = ctx.aws.look(value_look(ctx), resource=f"secret {secret_name(ctx)}")
    return None if found is None else str(found["SecretString"])


def required_value(ctx: Ctx) -> str:
    """The header's value where it must exist (443's rule, the distribution's origin): Part 7's start made
    the secret; the inventory may hold a read from before that, so it is read again from AWS once."""
    found = value(ctx)
    if found is None:
        ctx.aws.look(value_look(ctx), resource=f"secret {secret_name(ctx)}", live=True)
        found = value(ctx)
    if found is None:  # deleted by hand since start made it
        raise ThreetierError(f"{ctx.aws.part}: secret {secret_name(ctx)} (CloudFront's origin header) is gone; "
                             f"run `threetier up` again")
    return found


def check(ctx: Ctx, result: Check) -> None:
    result.found(f"secret {secret_name(ctx)} (CloudFront's origin header)", _described(ctx) is not None)


def check_off(ctx: Ctx, result: Check) -> None:
    """edge.cdn off: a secret left from when it was on is what `up` deletes."""
    if _described(ctx) is not None:
        result.unwanted(f"secret {secret_name(ctx)}: present, and edge.cdn is off (`up` deletes it)")


def delete_secret(ctx: Ctx) -> None:
    """At once (no recovery window): the next `up` may need the name. Gone already: nothing to do."""
    name = secret_name(ctx)
    if _described(ctx, live=True) is None:
        return
    ctx.aws.call("secretsmanager", "delete_secret", resource=f"secret {name}", missing_ok=GONE, SecretId=name,
                 ForceDeleteWithoutRecovery=True)
    ctx.record("deleted", "secret", name)
