"""How a step with several processes is started: the one `torchrun` command line behind the Job's container
and behind `kubetune run`, and the batch arithmetic every rank, the operator and `kubetune run` share.

    launch = Launch(nproc_per_node=4, nnodes=2)
    ["torchrun", *launch.torchrun_args(), *step.args]          # a Job's container (command + args)
    [sys.executable, "-m", TORCHRUN_MODULE, *launch.torchrun_args(), *step.args]   # the local executor

One node rendezvouses by itself (`--standalone`). Several nodes use torchrun's static rendezvous; the node
rank, master address and port reach torchrun through its `PET_*` environment (`rendezvous_env`), which the
Job builder fills from the pod's completion index and the group's headless Service. torchrun never restarts
workers itself (`--max-restarts 0`): a failed rank fails the group, and the Job, JobSet or `kubetune run`
starts it again from the newest checkpoint. Importing this module needs no torch (the operator uses it).
"""

from __future__ import annotations

from dataclasses import dataclass

TORCHRUN = "torchrun"  # the console script in the jobs image
TORCHRUN_MODULE = "torch.distributed.run"  # the same program as a module of a given interpreter
JOB_MODULE = "kubetune_jobs.cli"
MASTER_PORT = 29500
# torchrun's own settings, read from the environment when the flag is not given (torch's `PET_` prefix).
NODE_RANK_ENV = "PET_NODE_RANK"
MASTER_ADDR_ENV = "PET_MASTER_ADDR"
MASTER_PORT_ENV = "PET_MASTER_PORT"
# How long torchrun lets its workers finish after SIGTERM before it kills them (torch's default is 30 s, less
# than one training step of a large model): the worker's "checkpoint after this step" needs the pod's grace.
SHUTDOWN_TIMEOUT_ENV = "TORCH_ELASTIC_SHUTDOWN_TIMEOUT"
DISTRIBUTIONS = ("ddp", "fsdp")  # how ranks share a step: TrainOptions.distribution
DEFAULT_DISTRIBUTION = "ddp"


@dataclass(frozen=True)
class Launch:
    """The process layout of one step: `nproc_per_node` ranks on each of `nnodes` nodes."""

    nproc_per_node: int = 1
    nnodes: int = 1

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    @property
    def distributed(self) -> bool:
        """Whether the step runs under torchrun (else `kubetune-job` is started directly)."""
        return self.world_size > 1

    def torchrun_args(self) -> list[str]:
        """torchrun's flags and the job's module: append the `kubetune-job` arguments."""
        out = ["--nnodes", str(self.nnodes), "--nproc-per-node", str(self.nproc_per_node), "--max-restarts", "0"]
        if self.nnodes == 1:
            out.append("--standalone")
        return [*out, "-m", JOB_MODULE]


def shutdown_env(grace_seconds: int) -> dict[str, str]:
    """Let torchrun's workers use the stop grace (less a margin for torchrun's own exit) to checkpoint."""
    return {SHUTDOWN_TIMEOUT_ENV: str(max(grace_seconds - 10, 30))}


def rendezvous_env(master_addr: str, master_port: int = MASTER_PORT) -> dict[str, str]:
    """The multi-node rendezvous torchrun reads from its environment (the node rank comes separately:
    `NODE_RANK_ENV`, from each pod's completion index)."""
    return {MASTER_ADDR_ENV: master_addr, MASTER_PORT_ENV: str(master_port)}


class BatchPlanError(ValueError):
    """The world size does not divide the global batch; the message names what to change."""


def accumulation(global_batch: int, batch_size: int, world_size: int, *, what: str = "--global-batch") -> int:
    """Micro-batches each rank accumulates per optimizer step so that the step covers `global_batch` rows:
    global_batch / (batch_size × world_size), which must be a whole number of at least 1."""
    per_step = batch_size * world_size
    if global_batch < per_step or global_batch % per_step:
        raise BatchPlanError(f"{what} {global_batch} is not a multiple of the per-device batch size × world size "
                             f"({batch_size} × {world_size} = {per_step})")
    return global_batch // per_step
