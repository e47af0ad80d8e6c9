"""Part 4 — app tier instance, then its AMI.

The guide: launch an instance in a private app subnet with the app security
group and the instance profile (no key pair); install Node.js, fetch app-tier/
from the bucket, install its dependencies and run it on port 4000 under a
process manager that survives reboots; set up the database; when the app
answers its health check, create an AMI of the instance (the golden image).

Here the instance's user data does all of that (systemd instead of pm2, the
DB credentials from Secrets Manager), the health gate asks the instance itself
through SSM Run Command, and the builder is terminated once the AMI exists.
"""
from __future__ import annotations

from collections.abc import Iterator

from steps import database, network, storage
from threetier import artifacts
from threetier.aws import Look
from threetier.blocks import baking, log_groups, strays
from threetier.config import ConfigError
from threetier.engine import DONE, EXISTS, Check, Ctx

NUMBER = 4
NAME = "app-image"
TITLE = "app tier instance and AMI"


def bake(ctx: Ctx) -> baking.Bake:
    db = ctx.resources_of(database.NUMBER)
    app = ctx.config.app
    bucket, log_group = ctx.resources_of(storage.NUMBER)["bucket"], log_groups.name(ctx, log_groups.APP)
    if app.source is None:  # the demo
        user_data = artifacts.render_app_user_data(
            bucket=bucket, region=ctx.aws.region, db_host=db["db_writer_endpoint"], db_name=db["db_name"],
            db_secret_arn=db["db_secret_arn"], port=app.port, log_group=log_group)  # Part 1's, like its role
    else:  # your app (README "Your application"): config.parse made sure of runtime and start
        user_data = artifacts.render_custom_app_user_data(
            bucket=bucket, region=ctx.aws.region, db_host=db["db_writer_endpoint"],
            db_reader_host=db.get("db_reader_endpoint", ""), db_name=db["db_name"], db_secret_arn=db["db_secret_arn"],
            port=app.port, log_group=log_group, runtime=str(app.runtime), install=app.install, start=str(app.start),
            health_path=app.health_path)
    return baking.Bake(tier="app", subnet=network.subnet_ids(ctx, "app")[0],
                       security_group=network.security_group_id(ctx, "app-sg"),
                       instance_profile_arn=storage.profile_arn(ctx, "app"),
                       instance_type=app.instance_type, architecture=baking.architecture(ctx, app.instance_type),
                       user_data=user_data,
                       health_url=f"http://localhost:{app.port}{app.health_path}", keep_builder=app.keep_builder,
                       baked_files=storage.code_files(ctx, "app-tier"))


def looks(ctx: Ctx) -> Iterator[Look]:
    yield from baking.looks(ctx, ctx.config.app.instance_type)
    yield strays.groups_look(ctx)


def _strays(ctx: Ctx) -> list[strays.Stray]:
    return strays.of_bake(ctx, NUMBER, ctx.name(baking.builder_role("app")))


def start(ctx: Ctx) -> None:
    """The app image needs the database's endpoint and secret (known once the cluster is
    created), not the database itself: the bake's health check is the app's liveness."""
    strays.terminate(ctx, _strays(ctx))  # instances of this Part that are not its builder
    ctx.need(storage.NUMBER, DONE)
    ctx.need(database.NUMBER, EXISTS)
    # In a private subnet, a builder boots while the NAT gateway is still pending: its bootstrap
    # waits for the way out (wait_for_network) before dnf, S3 and npm. Only its route must exist.
    baking.start(ctx, bake(ctx), before_launch=lambda: ctx.need(network.NUMBER, network.ROUTES))


def finish(ctx: Ctx) -> None:
    baking.finish(ctx, bake(ctx))


def check(ctx: Ctx) -> Check:
    result = Check()
    strays.check(ctx, _strays(ctx), result)
    if not (ctx.has(storage.NUMBER, "bucket") and ctx.has(database.NUMBER, "db_writer_endpoint", "db_secret_arn")):
        result.missing.append("app AMI (it is baked from Parts 1 and 3)")
        baking.check_builder(ctx, "app", ctx.config.app.keep_builder, result)
        return result
    try:
        wanted = bake(ctx)
    except ConfigError as exc:  # app.source gone: status goes on (up, plan refuse it)
        result.drift.append(f"app AMI: whether it runs the configured code is not known: {exc}")
        return result
    baking.check_image(ctx, wanted, result)
    return result


def destroy(ctx: Ctx) -> None:
    baking.destroy(ctx, NUMBER)
