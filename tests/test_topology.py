"""All seven parts against moto, resource by resource, then nothing left."""
from __future__ import annotations

import base64
import json

import boto3
import pytest

from helpers import make_engine, moto, mutating
from threetier import artifacts
from threetier.aws import PART_TAG, STACK_TAG, tag_value

STACK = "threetier"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One stack built once for the read-only topology assertions (moto state is per mock)."""
    import os
    saved = dict(os.environ)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing",
                      AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)
    path = tmp_path_factory.mktemp("stack")
    try:
        with moto():
            engine = make_engine(path)
            engine.up()
            yield engine
    finally:
        os.environ.clear()
        os.environ.update(saved)


def res(engine, part: int) -> dict:
    return engine.ctx.state.parts[part].resources


def calls(engine, operation: str) -> list[dict]:
    return [c.params for c in engine.ctx.aws.calls if c.operation == operation]


def test_part_3_database(stack) -> None:
    rds = boto3.client("rds")
    network = res(stack, 2)
    group = rds.describe_db_subnet_groups(DBSubnetGroupName=f"{STACK}-db-subnet-group")["DBSubnetGroups"][0]
    assert {s["SubnetIdentifier"] for s in group["Subnets"]} == {
        network["subnets"]["private-db-subnet-az1"], network["subnets"]["private-db-subnet-az2"]}
    cluster = rds.describe_db_clusters(DBClusterIdentifier=f"{STACK}-aurora")["DBClusters"][0]
    assert cluster["Engine"] == "aurora-mysql"
    assert cluster["EngineVersion"] == stack.ctx.config.database.engine_version
    assert cluster["StorageEncrypted"] is True
    assert cluster["BackupRetentionPeriod"] == 7
    assert [g["VpcSecurityGroupId"] for g in cluster["VpcSecurityGroups"]] == [network["security_groups"]["db-sg"]]
    assert cluster["MasterUsername"] == "admin" and cluster["DatabaseName"] == "webappdb"
    # RDS keeps the password in Secrets Manager; it was never sent by threetier.
    create = calls(stack, "CreateDBCluster")[0]
    assert create["ManageMasterUserPassword"] is True and "MasterUserPassword" not in create
    assert res(stack, 3)["db_secret_arn"] == cluster["MasterUserSecret"]["SecretArn"]
    instances = {i["DBInstanceIdentifier"]: i for i in rds.describe_db_instances()["DBInstances"]}
    writer, reader = instances[f"{STACK}-aurora-writer"], instances[f"{STACK}-aurora-reader"]
    azs = network["azs"]
    assert writer["AvailabilityZone"] == azs[0] and reader["AvailabilityZone"] == azs[1]  # the reader in the other AZ
    assert writer["PubliclyAccessible"] is False and reader["PubliclyAccessible"] is False
    members = {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in cluster["DBClusterMembers"]}
    assert members == {f"{STACK}-aurora-writer": True, f"{STACK}-aurora-reader": False}
    assert res(stack, 3)["db_writer_endpoint"] == cluster["Endpoint"]
    # The app tier's role reads exactly that secret.
    policy = boto3.client("iam").get_role_policy(RoleName=f"{STACK}-us-east-1-app-role", PolicyName="read-db-secret")
    statements = policy["PolicyDocument"]["Statement"]
    assert [s["Resource"] for s in statements] == [cluster["MasterUserSecret"]["SecretArn"]]
    assert set(statements[0]["Action"]) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    for item in (cluster, writer, reader):
        assert {t["Key"] for t in item["TagList"]} >= {STACK_TAG, PART_TAG, "Name"}


@pytest.mark.parametrize("part,tier,subnet,group", [(4, "app", "private-app-subnet-az1", "app-sg"),
                                                     (6, "web", "public-web-subnet-az1", "web-sg")])
def test_parts_4_and_6_bake_health_gated_images(stack, part: int, tier: str, subnet: str, group: str) -> None:
    ec2, network = boto3.client("ec2"), res(stack, 2)
    runs = [c for c in calls(stack, "RunInstances") if any(
        tag_value(spec, "Name") == f"{STACK}-{tier}-builder" for spec in c["TagSpecifications"])]
    assert len(runs) == 1
    run = runs[0]
    assert run["SubnetId"] == network["subnets"][subnet]
    assert run["SecurityGroupIds"] == [network["security_groups"][group]]
    assert run["IamInstanceProfile"] == {"Arn": res(stack, 1)[f"{tier}_instance_profile_arn"]}  # the tier's own
    assert run["MetadataOptions"]["HttpTokens"] == "required"
    assert "KeyName" not in run
    parameter = boto3.client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
    assert run["ImageId"] == parameter  # looked up, never hard-coded
    assert run["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    user_data = base64.b64decode(run["UserData"]).decode()  # as sent (botocore encodes it)
    assert res(stack, 1)["bucket"] in user_data
    if tier == "app":
        assert res(stack, 3)["db_secret_arn"] in user_data and res(stack, 3)["db_writer_endpoint"] in user_data
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=res(stack, 3)["db_secret_arn"])
        assert json.loads(secret["SecretString"])["password"] not in user_data
    # Health gate before the image: SSM Run Command on the builder, then CreateImage of that builder.
    builder = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [f"{STACK}-{tier}-builder"]}])["Reservations"]
               for i in r["Instances"]]
    assert len(builder) == 1 and builder[0]["State"]["Name"] == "terminated"  # not kept
    builder_id = builder[0]["InstanceId"]
    ops = [(c.operation, c.params) for c in stack.ctx.aws.calls]
    gate = next(i for i, (op, p) in enumerate(ops) if op == "SendCommand" and p["InstanceIds"] == [builder_id])
    image = next(i for i, (op, p) in enumerate(ops) if op == "CreateImage" and p["InstanceId"] == builder_id)
    terminated = next(i for i, (op, p) in enumerate(ops) if op == "TerminateInstances" and p["InstanceIds"] == [builder_id])
    assert gate < image < terminated
    assert any("curl -fsS" in line for line in ops[gate][1]["Parameters"]["commands"])
    ami = ec2.describe_images(ImageIds=[res(stack, part)["ami"]])["Images"][0]
    assert ami["Name"].startswith(f"{STACK}-{tier}-ami-") and ami["State"] == "available"
    assert tag_value(ami, STACK_TAG) == STACK and tag_value(ami, PART_TAG) == str(part)
    snapshots = [m["Ebs"]["SnapshotId"] for m in ami["BlockDeviceMappings"] if "Ebs" in m]
    for snapshot in ec2.describe_snapshots(SnapshotIds=snapshots)["Snapshots"]:
        assert tag_value(snapshot, STACK_TAG) == STACK  # tagged at creation, found again by down


def test_part_6_renders_nginx_conf_with_the_internal_alb(stack) -> None:
    body = boto3.client("s3").get_object(Bucket=res(stack, 1)["bucket"], Key="nginx.conf")["Body"].read()
    dns = res(stack, 5)["internal_alb_dns"]
    assert body == artifacts.render_nginx_conf(dns)
    assert dns.encode() in body and b"@@" not in body


@pytest.mark.parametrize("part,tier,scheme,subnets,alb_sg,instance_sg,port,ami_part", [
    (5, "app", "internal", ("private-app-subnet-az1", "private-app-subnet-az2"), "internal-alb-sg", "app-sg", 4000, 4),
    (7, "web", "internet-facing", ("public-web-subnet-az1", "public-web-subnet-az2"), "external-alb-sg", "web-sg", 80, 6),
])
def test_parts_5_and_7_load_balanced_tiers(stack, part, tier, scheme, subnets, alb_sg, instance_sg, port, ami_part) -> None:
    elb, ec2, autoscaling = boto3.client("elbv2"), boto3.client("ec2"), boto3.client("autoscaling")
    network, mine = res(stack, 2), res(stack, part)
    group = elb.describe_target_groups(Names=[f"{STACK}-{tier}-tg"])["TargetGroups"][0]
    assert (group["Protocol"], group["Port"], group["TargetType"], group["HealthCheckPath"]) == ("HTTP", port, "instance", "/health")
    assert group["VpcId"] == network["vpc"]
    balancer = elb.describe_load_balancers(Names=[mine["load_balancer_arn"].split("/")[-2]])["LoadBalancers"][0]
    assert balancer["Scheme"] == scheme and balancer["Type"] == "application"
    assert sorted(a["SubnetId"] for a in balancer["AvailabilityZones"]) == sorted(network["subnets"][s] for s in subnets)
    assert balancer["SecurityGroups"] == [network["security_groups"][alb_sg]]
    listeners = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    assert [(x["Protocol"], x["Port"], x["DefaultActions"][0]["Type"], x["DefaultActions"][0]["TargetGroupArn"])
            for x in listeners] == [("HTTP", 80, "forward", group["TargetGroupArn"])]
    for arn in (group["TargetGroupArn"], balancer["LoadBalancerArn"], listeners[0]["ListenerArn"]):
        tags = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]
        assert tag_value(tags, STACK_TAG) == STACK and tag_value(tags, PART_TAG) == str(part)
    # moto-notes: assert on the launch template, not on the ASG's instances.
    version = ec2.describe_launch_template_versions(LaunchTemplateName=f"{STACK}-{tier}-lt",
                                                    Versions=["$Default"])["LaunchTemplateVersions"][0]
    data = version["LaunchTemplateData"]
    assert data["ImageId"] == res(stack, ami_part)["ami"]
    assert data["InstanceType"] == "t3.micro"
    assert data["SecurityGroupIds"] == [network["security_groups"][instance_sg]]
    assert data["IamInstanceProfile"]["Arn"] == res(stack, 1)[f"{tier}_instance_profile_arn"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert "KeyName" not in data
    instance_tags = {t["Key"]: t["Value"] for spec in data["TagSpecifications"] if spec["ResourceType"] == "instance"
                     for t in spec["Tags"]}
    assert instance_tags[STACK_TAG] == STACK and instance_tags[PART_TAG] == str(part)
    asg = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{STACK}-{tier}-asg"])["AutoScalingGroups"][0]
    assert sorted(asg["VPCZoneIdentifier"].split(",")) == sorted(network["subnets"][s] for s in subnets)
    assert asg["TargetGroupARNs"] == [group["TargetGroupARN"] if "TargetGroupARN" in group else group["TargetGroupArn"]]
    assert asg["HealthCheckType"] == "ELB"
    assert (asg["MinSize"], asg["DesiredCapacity"], asg["MaxSize"]) == (2, 2, 4)  # scales to 4 (issue 12)
    assert asg["LaunchTemplate"]["LaunchTemplateName"] == f"{STACK}-{tier}-lt"
    assert all(t["PropagateAtLaunch"] for t in asg["Tags"])
    assert {t["Key"] for t in asg["Tags"]} == {STACK_TAG, PART_TAG, "Name"}
    healthy = elb.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
    assert sum(t["TargetHealth"]["State"] == "healthy" for t in healthy) >= 2


def test_the_url_is_the_external_alb(stack) -> None:
    web = res(stack, 7)
    balancer = boto3.client("elbv2").describe_load_balancers(Names=[f"{STACK}-ext-alb"])["LoadBalancers"][0]
    assert web["url"] == f"http://{balancer['DNSName']}"
    assert web["round_trip"].startswith("not checked: AWS here is an emulator")  # it says so, never "working"


def test_second_up_and_replay_change_nothing(stack) -> None:
    again = make_engine(stack.state_file.path.parent)
    again.up()
    assert mutating(again) == []
    replay = make_engine(stack.state_file.path.parent)
    replay.replay("5")
    assert mutating(replay) == []
