"""The train job's settings, typed: one dataclass built from the `train` flags of `kubetune_jobs.cli`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class TrainConfig:
    model: str
    data: str
    output: str
    backend: str = "auto"
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    batch_size: int = 4
    grad_accum: int = 4
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1
    max_seq_length: int = 1024
    warmup_ratio: float = 0.03
    lr_scheduler: str = "linear"
    weight_decay: float = 0.0
    optim: str = "auto"
    precision: str = "auto"
    load_in_4bit: bool = False
    packing: bool = False
    gradient_checkpointing: bool | None = None
    save_steps: int = 100
    keep_checkpoints: int = 2
    eval_steps: int = 0
    logging_steps: int = 1
    seed: int = 42
    no_merge: bool = False
    pushgateway: str | None = None
    run_name: str = "local"
    stage_name: str = "train"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainConfig:
        values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        if isinstance(values.get("target_modules"), str):
            values["target_modules"] = tuple(m.strip() for m in values["target_modules"].split(",") if m.strip())
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for name in ("lora_r", "lora_alpha", "batch_size", "grad_accum", "max_seq_length", "save_steps",
                     "keep_checkpoints", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("--max-steps must be positive (or -1 to train for --epochs)")
        if self.max_steps == -1 and self.epochs <= 0:
            raise ValueError("--epochs must be positive")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("--warmup-ratio must be in [0, 1)")
        if not self.target_modules:
            raise ValueError("--target-modules names no module")
