"""The guide's Parts, one module each. Their order lives here and nowhere else; what each waits
for, in steps/graph.py."""
from steps import app_image, app_tier, database, graph, network, storage, web_image, web_tier
from threetier.engine import Part

PARTS: tuple[Part, ...] = tuple(Part.from_module(module, graph.EDGES) for module in (
    storage,   # Part 1 — S3 code bucket, EC2 role and instance profile, code upload
    network,   # Part 2 — VPC, subnets, IGW, NAT gateways, route tables, security groups
    database,  # Part 3 — DB subnet group, Aurora MySQL cluster, writer + reader, secret access
    app_image,  # Part 4 — app builder instance, health gate, app AMI
    app_tier,  # Part 5 — app target group, internal ALB, launch template, Auto Scaling group
    web_image,  # Part 6 — nginx.conf, web builder instance, health gate, web AMI
    web_tier,  # Part 7 — web target group, external ALB, launch template, Auto Scaling group; the URL
))
