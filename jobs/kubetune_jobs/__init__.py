"""kubetune workloads: the command-line programs the operator runs as Kubernetes Jobs."""

__version__ = "0.1.0"
