"""The `train` job: one supervised fine-tuning stage (LoRA/QLoRA) with checkpoints in the object store."""
