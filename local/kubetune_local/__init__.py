"""The local executors: `kubetune run`, `kubetune serve`, `kubetune validate`, `kubetune gate` run the operator's
resources (and its promotion gate) on one machine, without a cluster.

They import both sides: the operator's pure parts (the typed API, validation, the plan, vLLM's argv, the
promotion gate) and the jobs (as subprocesses, and their model and serving helpers). Nothing in the operator
or the jobs imports this package, so the operator image stays free of the jobs' runtime.

    cli       the `kubetune` command: parses, dispatches
    run       `kubetune run`: a FineTuneRun's plan as subprocesses, artifacts in a local directory or the store
    serve     `kubetune serve`: a ModelServe's model behind real vLLM, with the promotion gate first
    validate  `kubetune validate`: manifests checked as the operator checks them
    gate      `kubetune gate`: a ModelServe's promotion gate on two evaluation reports (exit 0 / 3 / 2)
"""
