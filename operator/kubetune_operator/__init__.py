"""The kubetune operator (kopf): reconciles FineTuneRun and ModelServe. It never runs a workload and never
imports torch; what it shares with the jobs is `kubetune_jobs.contract`. The local executors (`kubetune run`,
`kubetune serve`) live apart, in `kubetune_local`, and import this package's pure parts.

One package per resource (`finetunerun/`, `modelserve/`: API, validation, pure builders, a pure reconcile
decision, thin kopf handlers); `kube/` what both share with Kubernetes; `registry` wires the handlers into
kopf; `apitypes`, `settings`, `crd`, `naming`, `metrics`, `urls` are shared.
"""
