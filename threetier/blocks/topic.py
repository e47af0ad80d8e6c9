"""The SNS topic the stack's alarms notify, and its e-mail subscription (Part 1, config.yaml
`monitoring.email`).

Part 1 owns the topic; the alarms of Parts 3, 5 and 7 name it in their actions. It exists only with
`monitoring.email`: an alarm with no one to tell is still shown by `status`, which exits 3 while one
is in ALARM. Its ARN is deterministic (threetier.names), so an alarm can name it before it exists.
"""
from __future__ import annotations

from typing import Any

from threetier.aws import Look, tags
from threetier.engine import Check, Ctx
from threetier.names import topic_arn_for, topic_name_for

# An e-mail subscription stays "PendingConfirmation" until its owner clicks the link AWS sends.
PENDING = "PendingConfirmation"


def topic_arn(ctx: Ctx) -> str:
    return topic_arn_for(ctx.stack, ctx.aws.partition, ctx.aws.region, ctx.aws.account)


def topic_look(ctx: Ctx) -> Look:
    return Look("sns", "get_topic_attributes", {"TopicArn": topic_arn(ctx)}, missing_ok=("NotFound",))


def subscriptions_look(ctx: Ctx) -> Look:
    return Look("sns", "list_subscriptions_by_topic", {"TopicArn": topic_arn(ctx)}, missing_ok=("NotFound",),
                key="Subscriptions")


def topic_looks(ctx: Ctx) -> list[Look]:
    looks = [topic_look(ctx)]
    if ctx.aws.peek(topic_look(ctx)) is not None:
        looks.append(subscriptions_look(ctx))
    return looks


def ensure_topic(ctx: Ctx) -> None:
    """With `monitoring.email`: the topic and that address's subscription (AWS e-mails it a link to
    confirm); a subscription of an address config.yaml no longer names is removed. Without: the
    topic, if one was made before, is deleted with its subscriptions."""
    email, arn = ctx.config.monitoring.email, topic_arn(ctx)
    found = ctx.aws.look(topic_look(ctx), resource=f"SNS topic {topic_name_for(ctx.stack)}")
    if email is None:
        if found is not None:
            delete_topic(ctx)
        return
    if found is None:
        # CreateTopic is idempotent by name: a crash after it and a second `up` find the same topic.
        ctx.aws.call("sns", "create_topic", resource=f"SNS topic {topic_name_for(ctx.stack)}",
                     Name=topic_name_for(ctx.stack), Tags=tags(ctx.stack, ctx.part_number, topic_name_for(ctx.stack)))
        ctx.record("created", "SNS topic", topic_name_for(ctx.stack), arn)
        subscriptions: list[dict[str, Any]] = []
    else:
        subscriptions = ctx.aws.look(subscriptions_look(ctx), resource=f"SNS topic {topic_name_for(ctx.stack)}") or []
    emails = [s for s in subscriptions if s.get("Protocol") == "email"]
    if not any(s.get("Endpoint") == email for s in emails):
        ctx.aws.call("sns", "subscribe", resource=f"SNS topic {topic_name_for(ctx.stack)}", TopicArn=arn,
                     Protocol="email", Endpoint=email)
        ctx.record("created", "SNS e-mail subscription", email)
        ctx.out.info(f"  AWS sends {email} a link to confirm: alarms reach it only after that")
    for stale in emails:
        # A pending subscription has no ARN yet and cannot be removed; AWS drops it unconfirmed after 3 days.
        if stale.get("Endpoint") != email and stale.get("SubscriptionArn", PENDING) != PENDING:
            ctx.aws.call("sns", "unsubscribe", resource=f"SNS subscription {stale.get('Endpoint')}",
                         SubscriptionArn=stale["SubscriptionArn"], missing_ok=("NotFound",))
            ctx.record("deleted", "SNS e-mail subscription", str(stale.get("Endpoint")))
    ctx.resources["alarm_topic"] = arn


def check_topic(ctx: Ctx, result: Check) -> None:
    email = ctx.config.monitoring.email
    found = ctx.aws.look(topic_look(ctx), resource=f"SNS topic {topic_name_for(ctx.stack)}")
    if email is None:
        if found is not None:
            result.unwanted(f"SNS topic {topic_name_for(ctx.stack)}: monitoring.email is null (`up` deletes it)")
        return
    if not result.found(f"SNS topic {topic_name_for(ctx.stack)}", found is not None):
        result.missing.append(f"SNS e-mail subscription {email}")
        return
    ctx.resources["alarm_topic"] = topic_arn(ctx)
    subscriptions = ctx.aws.look(subscriptions_look(ctx), resource=f"SNS topic {topic_name_for(ctx.stack)}") or []
    mine = [s for s in subscriptions if s.get("Protocol") == "email" and s.get("Endpoint") == email]
    if result.found(f"SNS e-mail subscription {email}", bool(mine)) and all(
            s.get("SubscriptionArn") == PENDING for s in mine):
        result.notes.append(f"{email} has not confirmed the subscription yet: alarms reach it only after the "
                            f"link in AWS's e-mail is followed")
    others = sorted(str(s.get("Endpoint")) for s in subscriptions
                    if s.get("Protocol") == "email" and s.get("Endpoint") != email)
    if others:
        result.drift.append(f"SNS topic {topic_name_for(ctx.stack)}: also e-mails {', '.join(others)}, "
                            f"which config.yaml does not name")


def delete_topic(ctx: Ctx) -> None:
    """Deleting a topic deletes its subscriptions; gone already counts as deleted."""
    if ctx.aws.call("sns", "get_topic_attributes", resource=f"SNS topic {topic_name_for(ctx.stack)}",
                    TopicArn=topic_arn(ctx), missing_ok=("NotFound",)) is None:
        return
    ctx.aws.call("sns", "delete_topic", resource=f"SNS topic {topic_name_for(ctx.stack)}", TopicArn=topic_arn(ctx),
                 missing_ok=("NotFound",))
    ctx.record("deleted", "SNS topic", topic_name_for(ctx.stack))
