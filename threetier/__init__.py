"""threetier: the AWS three-tier web architecture of the deployment guide, as one command."""
__version__ = "0.1.0"
