"""The guide's Parts, one module each. Their order lives here and nowhere else."""
from threetier.engine import Part

from steps import database, network, storage

PARTS: tuple[Part, ...] = tuple(Part.from_module(module) for module in (
    storage,   # Part 1 — S3 code bucket, EC2 role and instance profile, code upload
    network,   # Part 2 — VPC, subnets, IGW, NAT gateways, route tables, security groups
    database,  # Part 3 — DB subnet group, Aurora MySQL cluster, writer + reader, secret access
))
