"""The FineTuneRun resource: a base model fine-tuned stage by stage into a tool-calling assistant, as a
sequence of Jobs (prepare, train, evaluate) whose artifacts live in the object store.

    api         typed spec and status (the CRD's source)
    validation  what the schema cannot say, each problem naming its field
    plan        spec -> the ordered steps and their `kubetune-job` command lines (pure; `kubetune run` runs
                the same plan)
    jobs        pure builders: a step -> its Job
    group       a training step over several nodes: Indexed Job or JobSet, and the restart policy
    results     what the jobs' records say of stages and evaluations, and the evaluation gates
    reconcile   the pure decision: observed state in, Jobs to create and the new status out
    handlers    thin kopf registrations: observe, decide, act
"""
