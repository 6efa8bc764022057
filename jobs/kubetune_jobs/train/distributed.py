"""This process's place in a distributed training step, and the few collectives run.py needs itself.

Under torchrun (`contract.launch`) every rank runs the same `kubetune-job train`; the Trainer (through
accelerate) does the data-parallel work. What is ours: rank 0 alone decides which checkpoint to resume
from and tells the others (`broadcast`), a stop request reaches every rank at the same step (`any`), and
ranks other than 0 see the store read-only. Without torchrun (WORLD_SIZE unset) it is a world of one and
no process group is made.

The process group is made before the Trainer exists; accelerate adopts an initialised default group.
Backend: NCCL on CUDA (each rank on the GPU of its local rank), gloo elsewhere.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class DistributedError(RuntimeError):
    """The process layout cannot work on this machine; the message says why."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> World:
        env = os.environ if environ is None else environ
        return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def name(self) -> str:
        return f"rank {self.rank} of {self.size}"

    def init(self) -> None:
        """Join the process group (a world of one joins nothing)."""
        if self.size == 1:
            return
        import torch
        import torch.distributed as dist

        if dist.is_initialized():
            return
        if torch.cuda.is_available():
            if self.local_rank >= torch.cuda.device_count():
                raise DistributedError(f"{self.name} needs GPU {self.local_rank} but this node shows "
                                       f"{torch.cuda.device_count()}; start fewer processes per node")
            torch.cuda.set_device(self.local_rank)
            dist.init_process_group("nccl", device_id=torch.device("cuda", self.local_rank))
        else:
            dist.init_process_group("gloo")
        log.info("%s joined the process group (%s)", self.name, dist.get_backend())

    def _device(self) -> Any:
        import torch

        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value`, on every rank."""
        if self.size == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, device=self._device())
        return box[0]

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank (every rank must call it at the same point)."""
        if self.size == 1:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([int(flag)], device=self._device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def close(self) -> None:
        """Leave the process group once every rank got here (rank 0 then exports on its own)."""
        if self.size == 1:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
