"""The kubetune operator (kopf): FineTuneRun and ModelServe, and their local executors (`kubetune run`,
`kubetune serve`). It never imports torch; what it shares with the jobs is `kubetune_jobs.contract`.

One package per resource (`finetunerun/`, `modelserve/`: API, validation, pure builders, a pure reconcile
decision, thin kopf handlers, the local executor); `kube/` what both share with Kubernetes; `registry`
wires the handlers into kopf; `apitypes`, `settings`, `crd`, `naming`, `metrics`, `urls`, `cli` are shared.
"""
