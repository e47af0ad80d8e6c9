"""A regional web ACL with AWS's managed rule groups and a rate limit on the
external ALB (config.yaml `edge.waf`)."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from helpers import FakeClock, cli, make_engine, moto, mutating, write_config
from steps import web_tier
from threetier.aws import PART_TAG, STACK_TAG, tag_value
from threetier.blocks import waf
from threetier.errors import ThreetierError
from threetier.scan import tagged

ACL = "threetier-web-acl"
ACL_ARN = f"arn:aws:wafv2:us-east-1:123456789012:regional/webacl/{ACL}/11111111-2222-3333-4444-555555555555"
ALB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/threetier-ext-alb/50dc6c495c0c9188"


def waf_config(**edge_keys) -> dict:
    return {"edge": {"waf": True, **edge_keys}}


def web_acls() -> list[dict]:
    return boto3.client("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]


def acl_on(balancer_arn: str) -> str | None:
    found = boto3.client("wafv2").get_web_acl_for_resource(ResourceArn=balancer_arn)
    return (found.get("WebACL") or {}).get("ARN")


def rules_of(summary: dict) -> dict[str, dict]:
    acl = boto3.client("wafv2").get_web_acl(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])["WebACL"]
    return {rule["Name"]: rule for rule in acl["Rules"]}


# A stack without the WAF makes no WAF call: test_edge.py's test_edge_and_waf_off_make_no_edge_or_waf_call_and_no_443
# (one build for both).


def test_waf_up_again_status_converge_off_on_and_down(reference_stacks, stack_from) -> None:
    # The order of a new stack's calls is asserted (the ACL on the ALB before the web instances): those
    # of the "waf" reference stack's build (its `up --yes`), read, not made again.
    tmp_path = stack_from("waf")
    build = reference_stacks.build("waf")
    (tmp_path / ".threetier" / "threetier.json").unlink()  # as built by make_engine: its state.json alone
    engine = make_engine(tmp_path, waf_config())  # the stack that build made
    web = engine.ctx.state.parts[7].resources

    # One web ACL, tagged with the stack and Part 7, that allows by default ...
    [summary] = web_acls()
    assert summary["Name"] == ACL and web["web_acl_arn"] == summary["ARN"]
    tags = {"Tags": boto3.client("wafv2").list_tags_for_resource(ResourceARN=summary["ARN"])["TagInfoForResource"]["TagList"]}
    assert tag_value(tags, STACK_TAG) == "threetier" and tag_value(tags, PART_TAG) == "7"
    acl = boto3.client("wafv2").get_web_acl(Name=ACL, Scope="REGIONAL", Id=summary["Id"])["WebACL"]
    assert acl["DefaultAction"] == {"Allow": {}}
    # ... blocks an IP over the rate limit first, then runs AWS's three managed rule groups.
    rules = rules_of(summary)
    rate = rules["rate-limit-per-ip"]
    assert rate["Priority"] == 0 and rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {"Limit": 2000, "AggregateKeyType": "IP"}
    groups = {r["Statement"]["ManagedRuleGroupStatement"]["Name"]: r for r in rules.values()
              if "ManagedRuleGroupStatement" in r["Statement"]}
    assert set(groups) == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                           "AWSManagedRulesSQLiRuleSet"}
    assert all(r["OverrideAction"] == {"None": {}} and r["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
               for r in groups.values())  # the groups' own actions (block), not counted only
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in rules.values())
    # It is on the external ALB: made in start, associated in finish before the web instances
    # exist (no request is served unfiltered).
    assert acl_on(web["load_balancer_arn"]) == summary["ARN"]
    calls = [(operation, params) for (_, operation), params in zip(build.up_calls, build.up_params, strict=True)]
    operations = [operation for operation, _ in calls]
    web_group = next(i for i, (op, params) in enumerate(calls)
                     if op == "CreateAutoScalingGroup" and params["AutoScalingGroupName"] == "threetier-web-asg")
    assert operations.index("CreateWebACL") < operations.index("AssociateWebACL") < web_group

    # The dashboard shows what it lets through and blocks.
    body = json.loads(boto3.client("cloudwatch").get_dashboard(DashboardName="threetier-us-east-1-dashboard")["DashboardBody"])
    graphs = [w["properties"] for w in body["widgets"] if w["type"] == "metric"]
    assert [m[:6] for g in graphs for m in g["metrics"] if m[0] == "AWS/WAFV2"] == [
        ["AWS/WAFV2", metric, "WebACL", ACL, "Region", "us-east-1"] for metric in ("AllowedRequests", "BlockedRequests")]

    # A second up changes nothing.
    again = make_engine(tmp_path, waf_config())
    again.up()
    assert mutating(again) == []

    # status shows it attached, with no drift.
    write_config(tmp_path, **waf_config())
    result = cli("status", "--json", cwd=tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    part = json.loads(result.stdout)["parts"][6]
    assert part["resources"]["waf"].startswith(f"attached: {ACL}, 4 rules, at most 2000 requests")
    assert part["drift"] == []

    # A new rate limit: status shows the drift, up puts it in place with one update.
    write_config(tmp_path, **waf_config(waf_rate_limit=500))
    drifted = cli("status", "--json", cwd=tmp_path)
    assert drifted.code == 3
    assert json.loads(drifted.stdout)["parts"][6]["drift"] == [
        f"web ACL {ACL}: its rules or default action are not the stack's (4 rules, at most 500 requests per "
        f"5 minutes per IP, the rest allowed)"]
    lower = make_engine(tmp_path, waf_config(waf_rate_limit=500))
    lower.up()
    assert mutating(lower) == ["UpdateWebACL"]
    assert rules_of(summary)["rate-limit-per-ip"]["Statement"]["RateBasedStatement"]["Limit"] == 500

    # Its default action set to Block by hand (every request refused): status shows it, up undoes it.
    current = boto3.client("wafv2").get_web_acl(Name=ACL, Scope="REGIONAL", Id=summary["Id"])
    boto3.client("wafv2").update_web_acl(
        Name=ACL, Scope="REGIONAL", Id=summary["Id"], LockToken=current["LockToken"], DefaultAction={"Block": {}},
        Rules=current["WebACL"]["Rules"], VisibilityConfig=current["WebACL"]["VisibilityConfig"])
    blocked = cli("status", "--json", cwd=tmp_path)
    assert blocked.code == 3 and "default action" in json.loads(blocked.stdout)["parts"][6]["drift"][0]
    unblock = make_engine(tmp_path, waf_config(waf_rate_limit=500))
    unblock.up()
    assert mutating(unblock) == ["UpdateWebACL"]
    assert boto3.client("wafv2").get_web_acl(Name=ACL, Scope="REGIONAL", Id=summary["Id"])["WebACL"][
        "DefaultAction"] == {"Allow": {}}

    # Removed from the ALB by hand: status says so, up puts it back.
    boto3.client("wafv2").disassociate_web_acl(ResourceArn=web["load_balancer_arn"])
    write_config(tmp_path, **waf_config(waf_rate_limit=500))
    detached = json.loads(cli("status", "--json", cwd=tmp_path).stdout)["parts"][6]
    assert f"web ACL {ACL}: not on load balancer threetier-ext-alb (`up` puts it there)" in detached["drift"]
    back = make_engine(tmp_path, waf_config(waf_rate_limit=500))
    back.up()
    assert mutating(back) == ["AssociateWebACL"]
    assert acl_on(web["load_balancer_arn"]) == summary["ARN"]

    # waf off: status (no WAF in the config, the state remembers one) shows it; up removes it.
    write_config(tmp_path)
    off_status = json.loads(cli("status", "--json", "--state", str(tmp_path / "state.json"),
                                cwd=tmp_path).stdout)["parts"][6]
    assert off_status["drift"] == [
        f"web ACL {ACL} on threetier-ext-alb: edge.waf is false (`up` takes it off)",
        f"web ACL {ACL}: present, and edge.waf is false (`up` removes it)",
        "CloudWatch dashboard threetier-us-east-1-dashboard: changed since `up` made it (`up` puts it back)"]
    off = make_engine(tmp_path)
    off.up()
    assert mutating(off) == ["DisassociateWebACL", "DeleteWebACL", "PutDashboard"]  # its graph goes too
    assert web_acls() == [] and acl_on(web["load_balancer_arn"]) is None
    assert "web_acl_arn" not in off.ctx.state.parts[7].resources
    # ... and, gone, is not looked for again.
    quiet = make_engine(tmp_path)
    quiet.up()
    assert "wafv2" not in {c.service for c in quiet.ctx.aws.calls}

    # On again, then down: disassociated and deleted before the ALB goes; the scan finds nothing.
    make_engine(tmp_path, waf_config()).up()
    assert len(web_acls()) == 1
    down = make_engine(tmp_path)  # whatever the config says at down
    down.ctx.skip_final_snapshot = True
    down.down()
    operations = [c.operation for c in down.ctx.aws.calls if c.operation in (
        "DisassociateWebACL", "DeleteWebACL", "DeleteLoadBalancer")]
    assert operations[:2] == ["DisassociateWebACL", "DeleteWebACL"] and "DeleteLoadBalancer" in operations[2:]
    assert web_acls() == []
    assert [f for f in tagged(down.ctx.aws, "threetier") if f.kind == "web ACL"] == []


def test_the_scan_finds_a_leftover_web_acl(stack_from) -> None:
    tmp_path = stack_from("waf")
    found = [f for f in tagged(make_engine(tmp_path).ctx.aws, "threetier") if f.kind == "web ACL"]
    assert [(f.name, f.part, f.billable) for f in found] == [(ACL, 7, True)]


def test_a_web_acl_of_the_stack_s_name_that_is_not_the_stack_s_is_never_taken_over(built: Path) -> None:
    # Theirs is there before the WAF's first `up` (on the built stack, as on a new one: Part 7 makes the ACL).
    visibility = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "theirs"}
    theirs = boto3.client("wafv2").create_web_acl(Name=ACL, Scope="REGIONAL", DefaultAction={"Block": {}},
                                                  Rules=[], VisibilityConfig=visibility)["Summary"]
    engine = make_engine(built, waf_config())
    with pytest.raises(ThreetierError, match=f"web ACL {ACL} .* is not tagged with stack threetier"):
        engine.up()
    assert "CreateWebACL" not in mutating(engine) and "UpdateWebACL" not in mutating(engine)
    down = make_engine(built, waf_config())
    down.ctx.skip_final_snapshot = True
    down.down()
    assert [s["ARN"] for s in web_acls()] == [theirs["ARN"]]  # left alone ...
    assert f"web ACL {ACL}" in down.ctx.out.stderr.getvalue()  # ... and said


# -- AWS's eventual consistency, which moto does not show -----------------------------------------
@pytest.mark.parametrize("refusals", [3, waf.ASSOCIATE_TIMEOUT // 10 + 1])
def test_the_association_is_retried_while_waf_says_the_new_acl_is_unavailable_then_given_up(
        tmp_path, refusals: int) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, waf_config(), clock=clock)
    engine.ctx.part = next(p for p in engine.parts if p.number == web_tier.NUMBER)
    engine.ctx.resources.update(load_balancer_arn=ALB_ARN, web_acl_arn=ACL_ARN)
    gives_up = refusals * 10 > waf.ASSOCIATE_TIMEOUT
    with Stubber(engine.ctx.aws.client("wafv2")) as stub:
        stub.add_response("get_web_acl_for_resource", {}, {"ResourceArn": ALB_ARN})
        for _ in range(refusals):
            stub.add_client_error("associate_web_acl", "WAFUnavailableEntityException", "Retry your request.", 400)
        if gives_up:
            with pytest.raises(ThreetierError, match="WAFUnavailableEntityException"):
                waf.ensure_association(engine.ctx, web_tier.tier(engine.ctx))
            assert clock.t == waf.ASSOCIATE_TIMEOUT
        else:
            stub.add_response("associate_web_acl", {}, {"WebACLArn": ACL_ARN, "ResourceArn": ALB_ARN})
            waf.ensure_association(engine.ctx, web_tier.tier(engine.ctx))
            assert clock.sleeps == [10] * refusals
        stub.assert_no_pending_responses()


def test_delete_waits_out_a_lingering_association_and_a_stale_lock_token(tmp_path) -> None:
    clock = FakeClock()
    engine = make_engine(tmp_path, clock=clock)
    summary = {"Name": ACL, "Id": ACL_ARN.rsplit("/", 1)[1], "ARN": ACL_ARN}
    key = {"Name": ACL, "Scope": "REGIONAL", "Id": summary["Id"]}

    def acl(token: str) -> dict:
        return {"WebACL": {"Name": ACL, "Id": summary["Id"], "ARN": ACL_ARN, "DefaultAction": {"Allow": {}},
                           "VisibilityConfig": waf.visibility(ACL)}, "LockToken": token}

    with Stubber(engine.ctx.aws.client("wafv2")) as stub:
        stub.add_response("get_web_acl", acl("token-1"), key)
        stub.add_client_error("delete_web_acl", "WAFAssociatedItemException", "still associated", 400)
        stub.add_client_error("delete_web_acl", "WAFOptimisticLockException", "changed meanwhile", 400)
        stub.add_response("get_web_acl", acl("token-2"), key)
        stub.add_response("delete_web_acl", {}, {**key, "LockToken": "token-2"})
        assert waf.with_lock_token(engine.ctx, summary, "delete_web_acl")
        stub.assert_no_pending_responses()
    assert clock.sleeps == [10]


def test_rules_compare_by_what_the_stack_sets_not_what_aws_adds(tmp_path) -> None:
    engine = make_engine(tmp_path, waf_config())
    wanted = waf.wanted_rules(engine.ctx)
    answered = json.loads(json.dumps(wanted))
    answered[0]["Statement"]["RateBasedStatement"]["EvaluationWindowSec"] = 300  # AWS fills these in
    answered[1]["Statement"]["ManagedRuleGroupStatement"]["Version"] = "Version_1.12"
    assert waf.same_rules(answered, wanted)
    answered[2]["OverrideAction"] = {"Count": {}}  # a group only counting: not the stack's
    assert not waf.same_rules(answered, wanted)
    assert not waf.same_rules(wanted[:-1], wanted)


# -- edge.cdn: CloudFront's web ACL (CLOUDFRONT scope, us-east-1) --------------------------------------
CDN_ACL = "threetier-cdn-web-acl"
EDGE = {"domain": "shop.example.com", "hosted_zone": "example.com", "waf": True}


def cloudfront_acls() -> list[dict]:
    return boto3.client("wafv2", region_name="us-east-1").list_web_acls(Scope="CLOUDFRONT")["WebACLs"]


def test_cdn_on_swaps_the_regional_acl_for_cloudfront_s_and_off_swaps_back(stack_from) -> None:
    tmp_path = stack_from("edge_waf")
    balancer = make_engine(tmp_path).ctx.state.parts[7].resources["load_balancer_arn"]
    [regional] = web_acls()

    # cdn on: CloudFront's ACL made in start (its ARN kept for the distribution), the regional one
    # taken off the ALB and deleted in finish.
    on = make_engine(tmp_path, {"edge": {**EDGE, "cdn": True}})
    on.up()
    [summary] = cloudfront_acls()
    web = on.ctx.state.parts[7].resources
    assert summary["Name"] == CDN_ACL and web["cdn_web_acl_arn"] == summary["ARN"] and ":global/webacl/" in summary["ARN"]
    assert "web_acl_arn" not in web and web["waf"].startswith(f"on CloudFront: {CDN_ACL}, 4 rules")
    tags = {"Tags": boto3.client("wafv2", region_name="us-east-1").list_tags_for_resource(
        ResourceARN=summary["ARN"])["TagInfoForResource"]["TagList"]}
    assert (tag_value(tags, STACK_TAG), tag_value(tags, PART_TAG), tag_value(tags, "Name")) == ("threetier", "7", CDN_ACL)
    acl = boto3.client("wafv2", region_name="us-east-1").get_web_acl(Name=CDN_ACL, Scope="CLOUDFRONT", Id=summary["Id"])
    assert waf.as_wanted(on.ctx, acl["WebACL"])  # the same rules as the regional one had
    assert web_acls() == [] and acl_on(balancer) is None
    calls = [(c.operation, c.params.get("Scope")) for c in on.ctx.aws.mutating_calls() if c.service == "wafv2"]
    assert calls == [("CreateWebACL", "CLOUDFRONT"), ("DisassociateWebACL", None), ("DeleteWebACL", "REGIONAL")]
    assert ("deleted", "web ACL", regional["Name"]) in [(c.action, c.kind, c.name) for c in on.ctx.changes]
    # The dashboard graphs CloudFront's ACL: its metrics are in us-east-1, with no Region dimension.
    body = json.loads(boto3.client("cloudwatch").get_dashboard(DashboardName="threetier-us-east-1-dashboard")["DashboardBody"])
    [graph] = [w["properties"] for w in body["widgets"] if w["type"] == "metric"
               and w["properties"]["metrics"][0][0] == "AWS/WAFV2"]
    assert graph["region"] == "us-east-1" and [m[:6] for m in graph["metrics"]] == [
        ["AWS/WAFV2", metric, "WebACL", CDN_ACL, "Rule", "ALL"] for metric in ("AllowedRequests", "BlockedRequests")]

    # status: on CloudFront, no WAF drift (found, not made again: the Stubber test below).
    write_config(tmp_path, edge={**EDGE, "cdn": True})
    status = json.loads(cli("status", "--json", cwd=tmp_path).stdout)["parts"][6]
    assert status["resources"]["waf"].startswith(f"on CloudFront: {CDN_ACL}")
    assert [line for line in status["drift"] if "web ACL" in line] == []

    # cdn off: the regional ACL made and on the ALB again; CloudFront's goes in the same run, once the
    # distribution that named it is deleted (settle_cloudfront after cdn.finish).
    off = make_engine(tmp_path, {"edge": EDGE})
    off.up()
    [back] = web_acls()
    assert back["Name"] == ACL and acl_on(balancer) == back["ARN"] and cloudfront_acls() == []
    deletes = [(c.operation, c.params.get("Scope")) for c in off.ctx.aws.mutating_calls()
               if c.operation in ("DeleteDistribution", "DeleteWebACL")]
    assert deletes == [("DeleteDistribution", None), ("DeleteWebACL", "CLOUDFRONT")]
    assert "cdn_web_acl_arn" not in off.ctx.state.parts[7].resources
    write_config(tmp_path, edge=EDGE)
    status = json.loads(cli("status", "--json", "--state", str(tmp_path / "state.json"), cwd=tmp_path).stdout)
    assert [line for line in status["parts"][6]["drift"] if "web ACL" in line] == []

    # One left by a run that crashed (no distribution names it): the scan finds it in us-east-1, and
    # settle_cloudfront deletes it (destroy_cloudfront: the Stubber test below).
    on_again = make_engine(tmp_path, {"edge": {**EDGE, "cdn": True}})
    on_again.ctx.part = next(p for p in on_again.parts if p.number == web_tier.NUMBER)
    waf.ensure_acl(on_again.ctx, waf.CLOUDFRONT)
    assert sorted(f.name for f in tagged(on_again.ctx.aws, "threetier") if f.kind == "web ACL") == [CDN_ACL, ACL]
    settle = make_engine(tmp_path, {"edge": EDGE})
    settle.ctx.part = on_again.ctx.part
    settle.ctx.resources["cdn_web_acl_arn"] = on_again.ctx.resources["cdn_web_acl_arn"]  # what that run saved
    waf.settle_cloudfront(settle.ctx)
    assert cloudfront_acls() == [] and mutating(settle) == ["DeleteWebACL"]
    assert "cdn_web_acl_arn" not in settle.ctx.resources


def test_cloudfront_s_acl_is_found_or_made_in_us_east_1_whatever_the_stack_s_region(tmp_path) -> None:
    """moto keeps CLOUDFRONT ACLs whatever the region asked (docs/moto.md): the Stubber, on the
    us-east-1 client only, proves where the calls go."""
    config = {"region": "eu-west-1", "edge": {**EDGE, "cdn": True}}
    arn = f"arn:aws:wafv2:us-east-1:123456789012:global/webacl/{CDN_ACL}/{'1' * 8}"
    summary = {"Name": CDN_ACL, "Id": "1" * 8, "ARN": arn, "LockToken": "token-1"}
    listing = {"Scope": "CLOUDFRONT", "Limit": 100}
    key = {"Name": CDN_ACL, "Scope": "CLOUDFRONT", "Id": summary["Id"]}

    def engine_and_client(clock: FakeClock) -> tuple:
        engine = make_engine(tmp_path, config, clock=clock)
        engine.ctx.part = next(p for p in engine.parts if p.number == web_tier.NUMBER)
        client = engine.ctx.aws.client("wafv2", "us-east-1")
        assert client is not engine.ctx.aws.client("wafv2")  # the stack's region's
        return engine.ctx, client

    def acl(ctx, token: str) -> dict:
        return {"WebACL": {"Name": CDN_ACL, "Id": summary["Id"], "ARN": arn, "DefaultAction": {"Allow": {}},
                           "Rules": waf.wanted_rules(ctx), "VisibilityConfig": waf.visibility(CDN_ACL)},
                "LockToken": token}

    with moto():
        # None yet: made, CLOUDFRONT-scoped, tagged, with the stack's rules; its ARN kept for the distribution.
        ctx, client = engine_and_client(FakeClock())
        with Stubber(client) as stub:
            stub.add_response("list_web_acls", {"WebACLs": []}, listing)
            stub.add_response("create_web_acl", {"Summary": summary}, {
                "Name": CDN_ACL, "Scope": "CLOUDFRONT", "Tags": ctx.tags(waf.CDN_ROLE),
                **waf.acl_settings(ctx, waf.CLOUDFRONT)})
            waf.start(ctx, web_tier.tier(ctx))
            stub.assert_no_pending_responses()
        assert ctx.resources["cdn_web_acl_arn"] == arn
        assert [(c.operation, c.params["Scope"]) for c in ctx.aws.mutating_calls()] == [("CreateWebACL", "CLOUDFRONT")]

        # A later run finds it by name and tag (its rules as wanted: no create, no update); at down,
        # after DeleteDistribution, WAF still sees the distribution for a while: retried.
        clock = FakeClock()
        ctx, client = engine_and_client(clock)
        with Stubber(client) as stub:
            stub.add_response("list_web_acls", {"WebACLs": [summary]}, listing)
            stub.add_response("list_tags_for_resource", {"TagInfoForResource": {
                "ResourceARN": arn, "TagList": ctx.tags(waf.CDN_ROLE)}}, {"ResourceARN": arn})
            stub.add_response("get_web_acl", acl(ctx, "token-1"), key)
            waf.ensure_acl(ctx, waf.CLOUDFRONT)
            assert ctx.aws.mutating_calls() == []
            stub.add_response("get_web_acl", acl(ctx, "token-2"), key)
            for _ in range(2):
                stub.add_client_error("delete_web_acl", "WAFAssociatedItemException", "still on a distribution", 400)
            stub.add_response("delete_web_acl", {}, {**key, "LockToken": "token-2"})
            waf.destroy_cloudfront(ctx)
            stub.assert_no_pending_responses()
        assert clock.sleeps == [10, 10] and "cdn_web_acl_arn" not in ctx.resources
