"""SSM Run Command, the builders' health gate: the agent registers 40 s after `running`, and not before
the subnet's way out is there (SendCommand before: InvalidInstanceId, retried); a command answers
InProgress until the bootstrap is over, then Success, or Failed with the reason (builders.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.model import figures
from bench.model.builders import bootstrap, internet_from
from bench.model.core import after, answer, before
from bench.model.ec2 import Instance, instance_state

if TYPE_CHECKING:
    from bench.model.latency import LatencyModel


@before("ssm", "SendCommand")
def send_command_before(model: LatencyModel, params: dict[str, Any], operation: str, **_: Any) -> Any:
    for instance_id in params.get("InstanceIds") or []:
        instance = model.instances.get(instance_id)
        if instance is not None and (instance_state(model, instance_id) != "running" or
                                     not _agent_registered(model, instance)):
            # The agent has not registered yet: Run Command does not know the instance.
            return model.refuse("InvalidInstanceId", "Instances not in a valid state for account",
                                operation=operation, service="ssm")
    return None


def _agent_registered(model: LatencyModel, instance: Instance) -> bool:
    """The agent registers 40 s after `running`, and not before it has a way out (SSM's endpoints)."""
    online, _ = internet_from(model, instance, instance.running_at)
    return online is not None and model.now >= max(instance.running_at + figures.SSM_AGENT_SECONDS, online)


@after("ssm", "SendCommand")
def command_sent(model: LatencyModel, parsed: dict[str, Any], params: dict[str, Any], **_: Any) -> None:
    command = parsed.get("Command", {}).get("CommandId")
    for instance_id in params.get("InstanceIds") or []:
        if command and instance_id in model.instances:
            model.commands[(command, instance_id)] = model.now


@before("ssm", "GetCommandInvocation")
def get_command_invocation(model: LatencyModel, params: dict[str, Any], **_: Any) -> Any:
    key = (params.get("CommandId", ""), params.get("InstanceId", ""))
    if key not in model.commands:
        return None
    done, failed, reason = bootstrap(model, key[1])
    base = {"CommandId": key[0], "InstanceId": key[1], "DocumentName": "AWS-RunShellScript",
            "PluginName": "aws:runShellScript", "StandardErrorContent": ""}
    if failed is not None and model.now >= failed:
        return answer({**base, "Status": "Failed", "StatusDetails": "Failed", "ResponseCode": 2,
                       "StandardOutputContent": f"bootstrap failed (exit 1)\n{reason}"})
    if done is not None and model.now >= done:
        return answer({**base, "Status": "Success", "StatusDetails": "Success", "ResponseCode": 0,
                       "StandardOutputContent": "healthy"})
    # The health script waits for cloud-init (the bootstrap) before it answers.
    return answer({**base, "Status": "InProgress", "StatusDetails": "InProgress", "ResponseCode": -1,
                   "StandardOutputContent": ""})
