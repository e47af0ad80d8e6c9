"""Part 6 — web tier instance, then its AMI.

The guide: edit nginx.conf so /api/ goes to the internal load balancer's DNS
name (here it is rendered from a template) and upload it; launch an instance
in a public web subnet with the web security group and the instance profile;
install Node.js, fetch web-tier/, build the React app, install nginx with that
config and enable it at boot; when /health answers, create the web AMI.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator

from steps import app_tier, network, storage
from threetier import artifacts
from threetier.aws import Look
from threetier.blocks import baking, log_groups, strays
from threetier.config import ConfigError
from threetier.engine import DONE, EXISTS, Check, Ctx

NUMBER = 6
NAME = "web-image"
TITLE = "web tier instance and AMI"
NGINX_KEY = "nginx.conf"  # at the bucket root, as in the guide


def nginx_conf(ctx: Ctx) -> bytes:
    return artifacts.render_nginx_conf(ctx.resources_of(app_tier.NUMBER)["internal_alb_dns"])


def bake(ctx: Ctx) -> baking.Bake:
    web = ctx.config.web
    user_data = artifacts.render_web_user_data(
        bucket=ctx.resources_of(storage.NUMBER)["bucket"], region=ctx.aws.region,
        # Part 1's, like the role that writes them
        access_log_group=log_groups.name(ctx, log_groups.NGINX_ACCESS),
        error_log_group=log_groups.name(ctx, log_groups.NGINX_ERROR))
    baked = storage.code_files(ctx, "web-tier")
    baked[NGINX_KEY] = nginx_conf(ctx)
    return baking.Bake(tier="web", subnet=network.subnet_ids(ctx, "web")[0],
                       security_group=network.security_group_id(ctx, "web-sg"),
                       instance_profile_arn=storage.profile_arn(ctx, "web"),
                       instance_type=web.instance_type, architecture=baking.architecture(ctx, web.instance_type),
                       user_data=user_data, health_url="http://localhost/health",
                       keep_builder=web.keep_builder, baked_files=baked)


def nginx_conf_look(ctx: Ctx) -> Look:
    return Look("s3", "head_object", {"Bucket": storage.bucket_name(ctx), "Key": NGINX_KEY},
                missing_ok=("404", "NoSuchKey", "NotFound", "NoSuchBucket"))


def looks(ctx: Ctx) -> Iterator[Look]:
    yield nginx_conf_look(ctx)
    yield from baking.looks(ctx, ctx.config.web.instance_type)
    yield strays.groups_look(ctx)


def _strays(ctx: Ctx) -> list[strays.Stray]:
    return strays.of_bake(ctx, NUMBER, ctx.name(baking.builder_role("web")))


def start(ctx: Ctx) -> None:
    """The web image needs only the internal ALB's DNS name (known the moment the ALB is
    created) and the public subnet's way to the internet gateway: it bakes alongside the app
    image, not after the app tier is healthy."""
    strays.terminate(ctx, _strays(ctx))  # instances of this Part that are not its builder
    ctx.need(storage.NUMBER, DONE)
    ctx.need(network.NUMBER, network.ROUTES)  # the public subnet's way out, through the IGW
    ctx.need(app_tier.NUMBER, EXISTS)
    ensure_nginx_conf(ctx)
    baking.start(ctx, bake(ctx))


def ensure_nginx_conf(ctx: Ctx) -> None:
    """Upload the rendered nginx.conf unless the bucket already holds exactly it."""
    aws, bucket, body = ctx.aws, ctx.resources_of(storage.NUMBER)["bucket"], nginx_conf(ctx)
    head = aws.look(nginx_conf_look(ctx), resource=f"object s3://{bucket}/{NGINX_KEY}")
    if head is None or head["ETag"].strip('"') != hashlib.md5(body).hexdigest():
        aws.call("s3", "put_object", resource=f"object s3://{bucket}/{NGINX_KEY}", Bucket=bucket, Key=NGINX_KEY,
                 Body=body, ContentType="text/plain", ExpectedBucketOwner=aws.account)
        ctx.record("changed", "nginx.conf", f"s3://{bucket}/{NGINX_KEY}")
    ctx.resources["nginx_conf"] = f"s3://{bucket}/{NGINX_KEY}"


def finish(ctx: Ctx) -> None:
    baking.finish(ctx, bake(ctx))


def check(ctx: Ctx) -> Check:
    result = Check()
    strays.check(ctx, _strays(ctx), result)
    lacking = []  # what Part 6 is made from, not there: its image name cannot be known without it
    if not ctx.has(storage.NUMBER, "bucket"):
        lacking.append(f"the code bucket (Part 1) is missing: {NGINX_KEY} is kept in it and the web builder "
                       f"bootstraps from it (`up` recreates it, then uploads {NGINX_KEY} again)")
    if not ctx.has(app_tier.NUMBER, "internal_alb_dns"):
        lacking.append(f"internal load balancer {ctx.name(app_tier.ALB_ROLE)} (Part 5) is missing: {NGINX_KEY} and "
                       f"the web AMI carry its DNS name (`up` recreates it, then renders {NGINX_KEY} again and "
                       f"bakes a new web AMI)")
    if lacking:
        check_without_inputs(ctx, result)
        if result.present:  # some of the part is there: what it lacks is drift (nothing there: not built yet)
            result.drift.extend(lacking)
        return result
    try:
        wanted = bake(ctx)
    except ConfigError as exc:  # web.source gone: status goes on (up, plan refuse it)
        check_without_inputs(ctx, result)
        result.drift.append(f"web AMI: whether it serves the configured site is not known: {exc}")
        return result
    baking.check_image(ctx, wanted, result)
    check_nginx_conf(ctx, result, nginx_conf(ctx))
    return result


def check_nginx_conf(ctx: Ctx, result: Check, wanted: bytes | None) -> bool:
    """Whether nginx.conf is in the bucket as `up` would write it (wanted None: what it would render is
    not known yet, without the internal load balancer). Written to a bucket that is there, it is a
    change, as `up` counts it."""
    head = ctx.aws.look(nginx_conf_look(ctx), resource=f"object {NGINX_KEY}")
    if head is not None and (wanted is None or head["ETag"].strip('"') == hashlib.md5(wanted).hexdigest()):
        return True
    result.drift.append(f"{NGINX_KEY} in the bucket: {'missing' if head is None else 'changed'} (`up` uploads it)")
    return False


def check_without_inputs(ctx: Ctx, result: Check) -> None:
    """What is there of Part 6 when what it is made from is not: which AMI the image name would
    fingerprint cannot be told, but the part's AMIs and nginx.conf are there or not all the same
    (so `status` says what is missing, not that the whole part is gone)."""
    images = sorted((i for i in baking.stack_images(ctx, NUMBER) if i.get("State") in ("pending", "available")),
                    key=lambda i: (i.get("CreationDate", ""), i["ImageId"]))
    for image in images:
        result.present.append(f"AMI {image.get('Name', image['ImageId'])}")
    if images:  # the newest is the one Part 7's template runs (older ones go once it does)
        ctx.resources["ami"], ctx.resources["image_name"] = images[-1]["ImageId"], images[-1].get("Name", "")
    else:
        result.missing.append("web AMI (it is baked from Parts 1 and 5)")
        baking.check_builder(ctx, "web", ctx.config.web.keep_builder, result)
    # No bucket: `up` writes nginx.conf into the one it makes, part of making that (not counted apart).
    if ctx.has(storage.NUMBER, "bucket") and check_nginx_conf(ctx, result, None):
        result.present.append(f"{NGINX_KEY} in the bucket")


def destroy(ctx: Ctx) -> None:
    baking.destroy(ctx, NUMBER)
