"""CloudFront's origin header (threetier/blocks/origin.py): one secret per stack, in Secrets Manager
only, found again rather than made twice, restored when scheduled for deletion, deleted at once."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from helpers import make_engine, moto
from steps import web_tier
from threetier.blocks import origin
from threetier.engine import Check
from threetier.errors import ThreetierError

CDN = {"edge": {"domain": "shop.example.com", "hosted_zone": "example.com", "cdn": True}}


def web_ctx(tmp_path: Path):
    engine = make_engine(tmp_path, CDN)
    engine.ctx.part = next(p for p in engine.parts if p.number == web_tier.NUMBER)
    return engine.ctx


def test_one_secret_made_once_its_value_random_and_nowhere_but_secrets_manager(tmp_path: Path) -> None:
    with moto():
        ctx = web_ctx(tmp_path)
        assert origin.value(ctx) is None
        origin.ensure_secret(ctx)
        first = origin.value(ctx)
        origin.ensure_secret(ctx)  # again (a second up): found, not made or changed
        secrets = boto3.client("secretsmanager").list_secrets()["SecretList"]
        assert [s["Name"] for s in secrets] == ["threetier-cdn-origin-header"]
        assert {t["Key"]: t["Value"] for t in secrets[0]["Tags"]}["threetier:stack"] == "threetier"
        assert first is not None and len(first) >= 40 and origin.value(ctx) == first
        assert first not in json.dumps(ctx.state.to_json())
        assert first not in ctx.out.stdout.getvalue() + ctx.out.stderr.getvalue()
        result = Check()
        origin.check(ctx, result)
        assert result.missing == [] and len(result.present) == 1
        # Another stack's value differs: the value is made, not derived.
        other = make_engine(tmp_path / "other", {**CDN, "stack": "other"})
        other.ctx.part = ctx.part
        origin.ensure_secret(other.ctx)
        assert origin.value(other.ctx) not in (None, first)


def test_a_secret_scheduled_for_deletion_is_restored_and_delete_is_at_once(tmp_path: Path) -> None:
    with moto():
        ctx = web_ctx(tmp_path)
        origin.ensure_secret(ctx)
        value = origin.value(ctx)
        client = boto3.client("secretsmanager")
        client.delete_secret(SecretId="threetier-cdn-origin-header", RecoveryWindowInDays=7)
        origin.ensure_secret(ctx)
        assert "DeletedDate" not in client.describe_secret(SecretId="threetier-cdn-origin-header")
        assert origin.value(ctx) == value
        origin.delete_secret(ctx)
        assert client.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []
        origin.delete_secret(ctx)  # gone already: nothing to do, no error
        result = Check()
        origin.check_off(ctx, result)
        assert result.drift == []


def test_a_secret_of_that_name_not_the_stacks_is_refused_not_taken(tmp_path: Path) -> None:
    with moto():
        boto3.client("secretsmanager").create_secret(Name="threetier-cdn-origin-header", SecretString="theirs")
        with pytest.raises(ThreetierError, match="not this stack's"):
            origin.ensure_secret(web_ctx(tmp_path))
