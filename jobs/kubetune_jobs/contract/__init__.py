"""The contract between the operator and the jobs, and the only code both import.

The operator (and `kubetune run`) build `kubetune-job` command lines and read what the jobs write; the
jobs parse those command lines and write those files. Everything the two sides must agree on lives
here and nowhere else:

    options   each job's flags, their types and defaults (the CLI and the operator's argv both come from it)
    hyperparams  each fine-tuning hyperparameter, declared once: the train flag, the FineTuneRun field, the
                 trainer argument and whether it enters the step fingerprint all derive from it
    layout    artifact paths and file names under `<root>/<namespace>/<run>/`
    records   typed records the jobs write and the operator reads (progress, prepare stats, report summary)
    suites    evaluation suite names and BFCL categories (what the operator admits evaluate can run)
    env       names of the environment variables the jobs read
    store     resolving an object-store endpoint and its credentials (one function for every caller)
    metrics   every kubetune_* metric name, its help and labels, the Pushgateway groups, vLLM's names we read
    pushgateway  the Pushgateway client: the jobs push (best-effort), the operator deletes a resource's groups

Nothing here imports torch, transformers or kopf: the operator image holds this package and no other job code.
"""
