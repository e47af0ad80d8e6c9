"""IAM instance profiles: one is usable by RunInstances 8 s after CreateInstanceProfile (before that,
InvalidParameterValue: IAM is eventually consistent, and the caller retries)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.model import figures
from bench.model.core import Span, after, before

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


@after("iam", "CreateInstanceProfile")
def profile_created(model: LatencyModel, parsed: dict[str, Any], **_: Any) -> None:
    profile = parsed.get("InstanceProfile", {})
    for key in (profile.get("InstanceProfileName"), profile.get("Arn")):
        if key:
            model.profiles.setdefault(key, model.now)


@before("ec2", "RunInstances")
def run_instances(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    profile = params.get("IamInstanceProfile") or {}
    key = profile.get("Arn") or profile.get("Name")
    created = model.profiles.get(key) if key else None
    if created is not None and model.now - created < figures.PROFILE_USABLE_SECONDS:
        # Not a mistake of the caller: IAM is eventually consistent; retried.
        return model.refuse("InvalidParameterValue", f"Value ({key}) for parameter iamInstanceProfile.arn is "
                            f"invalid. Invalid IAM Instance Profile ARN", operation=operation)
    return None


def spans(model: LatencyModel) -> list[Span]:
    """One a profile (by name: its ARN is the same profile), in Part 1, where the stack makes them."""
    return [Span(1, "instance profile", name, created, created + figures.PROFILE_USABLE_SECONDS)
            for name, created in model.profiles.items() if not name.startswith("arn:")]
