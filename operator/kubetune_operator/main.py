"""`kubetune-operator`: run the controller for every kubetune kind (kopf, standalone, one replica)."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubetune-operator", description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--namespace", action="append", default=[],
                        help="watch only this namespace (repeatable; default: all namespaces)")
    parser.add_argument("--metrics-port", type=int, default=8080, help="port of /metrics (0: off)")
    parser.add_argument("--liveness", default="http://0.0.0.0:8081/healthz", help="kopf liveness endpoint")
    parser.add_argument("--api-url", default=None, help="API server URL (default: in-cluster, else kubeconfig)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    import kopf

    from . import metrics, registry
    from .settings import Settings

    settings = Settings.from_env(api_url=args.api_url)
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.FULL)
    logging.getLogger("kubetune_operator").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    kopf.run(registry=registry.build(settings), standalone=True, clusterwide=not args.namespace,
             namespaces=args.namespace, liveness_endpoint=args.liveness or None, memo=kopf.Memo())
    return 0


if __name__ == "__main__":
    sys.exit(main())
