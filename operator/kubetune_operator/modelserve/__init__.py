"""The ModelServe resource: a model served by vLLM behind one Service, rolled out revision by revision,
benchmarked, and promoted only when its evaluation says so.

    api         typed spec and status (the CRD's source)
    validation  what the schema cannot say, each problem naming its field
    source      which model a spec names, and whether it can be served yet (pure)
    vllm        vLLM's argv, shared by the Deployment and `kubetune serve` (kubetune_local.serve)
    resources   pure builders: Deployment, Services, PodMonitor, autoscaler, bench and evaluation Jobs
    promotion   the promotion gate, fail-closed (pure; the operator, `kubetune serve` and `kubetune gate` call it)
    reconcile   the pure decision: observed state in, objects to apply and delete and the new typed status out
    handlers    thin kopf registrations: observe, decide, act
"""
