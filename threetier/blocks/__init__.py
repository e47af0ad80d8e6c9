"""The building blocks the guide's Parts are made of, one concern a module: finders, IAM, log
groups, alarms, the alarms' topic, the dashboard, baking an image, a tier behind a load balancer,
its scaling and its colors (blue/green), the certificate, DNS, HTTPS, the round-trip client, the WAF,
security groups and flow logs.

A block takes what it needs of other Parts as arguments (subnet and security group IDs, profile
ARNs, the bucket's name): it never reads another Part's resources nor waits for one. Those waits are
the Parts' own, declared in their graph. Names of resources are threetier.names'.
"""
