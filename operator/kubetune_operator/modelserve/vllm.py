"""vLLM's command line, built once: the Deployment's container and `kubetune serve` run exactly this argv
(after `vllm serve` / `python -m vllm.entrypoints.openai.api_server`). Pure.

The API key is never a flag: vLLM reads it from VLLM_API_KEY (set from the Secret by reference), so it
stays out of argv, the pod spec's args, `ps` and logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..apitypes import shown
from . import api

# vLLM 0.32's tool-call parsers (`ToolParserManager`); a test checks this list against the real vLLM.
TOOL_PARSERS = frozenset({
    "apertus", "cohere_command3", "cohere_command4", "deepseek_v3", "deepseek_v31", "deepseek_v32", "deepseek_v4",
    "deepseek_v41", "dots", "ernie45", "functiongemma", "gemma4", "gigachat3", "glm45", "glm47", "granite",
    "granite-20b-fc", "granite4", "hermes", "hf", "hunyuan_a13b", "hy_v3", "hy_v4", "inkling", "internlm", "jamba",
    "k2_horizon", "kimi_k2", "kimi_k3", "lfm2", "ling3", "llama3_json", "llama4_json", "llama4_pythonic", "longcat",
    "mimo", "minicpm5", "minimax_m2", "minimax_m3", "mistral", "muse_glimmer", "olmo3", "openai", "phi4_mini_json",
    "plamo3", "poolside_v1", "pythonic", "qwen3_coder", "qwen3_json", "qwen3_xml", "seed_oss", "step3", "step3p5",
    "xlam",
})
API_KEY_ENV = "VLLM_API_KEY"
PORT = 8000
# Flags the operator sets itself (or must never be set in argv): extraArgs may not name them. `--config` reads
# flags from a file, which could set any of them.
OWNED_FLAGS = frozenset({"--model", "--served-model-name", "--host", "--port", "--api-key", "--lora-modules",
                         "--enable-lora", "--max-loras", "--config"})
# Flags a field sets: extraArgs naming one would silently override the field (argparse keeps the last).
FIELD_FLAGS = {"--dtype": "spec.vllm.dtype", "--max-model-len": "spec.vllm.maxModelLen",
               "--gpu-memory-utilization": "spec.vllm.gpuMemoryUtilization",
               "--tensor-parallel-size": "spec.vllm.tensorParallelSize",
               "--tool-call-parser": "spec.vllm.toolCallParser",
               "--enable-auto-tool-choice": "spec.vllm.enableAutoToolChoice",
               "--chat-template": "spec.vllm.chatTemplate", "--max-num-seqs": "spec.vllm.maxNumSeqs",
               "--max-lora-rank": "spec.model.lora.maxRank"}
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # what --max-lora-rank accepts


@dataclass(frozen=True)
class ModelFiles:
    """Where a replica finds what it serves."""

    model: str  # a local directory (fetched) or a Hub id
    chat_template: str | None = None  # a file, when the template is given or comes with the model's files
    adapter: str | None = None  # LoRA mode: the adapter directory


def tensor_parallel(spec: api.ModelServeSpec) -> int:
    return spec.vllm.tensor_parallel_size or max(1, spec.resources.gpus)


def lora_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds `rank`."""
    return next((r for r in LORA_RANKS if r >= rank), LORA_RANKS[-1])


def argv(spec: api.ModelServeSpec, served_name: str, files: ModelFiles, *, host: str = "0.0.0.0",
         port: int = PORT) -> list[str]:
    """The api_server flags of one replica."""
    v = spec.vllm
    out = ["--model", files.model, "--served-model-name", served_name, "--host", host, "--port", str(port),
           "--dtype", v.dtype]
    if v.max_model_len:
        out += ["--max-model-len", str(v.max_model_len)]
    if spec.resources.gpus > 0:
        out += ["--gpu-memory-utilization", str(v.gpu_memory_utilization),
                "--tensor-parallel-size", str(tensor_parallel(spec))]
    if v.enable_auto_tool_choice:
        out += ["--enable-auto-tool-choice"]
    out += ["--tool-call-parser", v.tool_call_parser]
    if files.chat_template:
        out += ["--chat-template", files.chat_template]
    if v.max_num_seqs:
        out += ["--max-num-seqs", str(v.max_num_seqs)]
    if files.adapter:
        out += ["--enable-lora", "--max-lora-rank", str(lora_rank(spec.model.lora.max_rank)), "--max-loras", "1",
                "--lora-modules", f"{served_name}={files.adapter}"]
    return out + list(v.extra_args)


def problems(spec: api.ModelServeSpec) -> list[str]:
    """Settings vLLM would refuse or that would leak a secret, each naming its field."""
    out = []
    v = spec.vllm
    if v.tool_call_parser not in TOOL_PARSERS:
        out.append(f"spec.vllm.toolCallParser: unknown parser {v.tool_call_parser!r} "
                   f"(vLLM's: {', '.join(sorted(TOOL_PARSERS))})")
    gpus = spec.resources.gpus
    if v.tensor_parallel_size is not None:
        if gpus == 0:
            out.append("spec.vllm.tensorParallelSize: needs GPUs (spec.resources.gpus is 0)")
        elif gpus % v.tensor_parallel_size:
            out.append(f"spec.vllm.tensorParallelSize: {v.tensor_parallel_size} does not divide "
                       f"spec.resources.gpus ({gpus})")
    for i, arg in enumerate(v.extra_args):
        out += [f"spec.vllm.extraArgs[{i}]: {p}" for p in _arg_problems(arg)]
    return out


def flag_name(arg: str) -> str | None:
    """The long flag an argv item names as vLLM's parser reads it (`--max_num_seqs=8` -> `--max-num-seqs`)."""
    if not arg.startswith("--") or arg == "--":
        return None
    return "--" + arg[2:].split("=", 1)[0].split(".", 1)[0].replace("_", "-")


def _arg_problems(arg: str) -> list[str]:
    """What is wrong with one extraArgs item; never repeats a value (it may be a key pasted by mistake)."""
    head = arg.split("=", 1)[0]
    flag = flag_name(head.split()[0] if head.split() else head)
    if flag is None:
        return []  # a flag's value (or a short flag)
    # argparse also takes an unambiguous abbreviation: `--served-model` is `--served-model-name`.
    owned = sorted(f for f in OWNED_FLAGS if f == flag or (len(flag) > 4 and f.startswith(flag)))
    if owned:
        return [f"{owned[0]} is set by the operator" + ("; use spec.apiKeySecret" if owned[0] == "--api-key" else "")]
    fields = sorted(f for f in FIELD_FLAGS if f == flag or (len(flag) > 4 and f.startswith(flag)))
    if fields:
        return [f"{fields[0]} is what {FIELD_FLAGS[fields[0]]} sets; set that field instead"]
    if any(c.isspace() for c in head):
        return [f"{shown(flag)} and its value are two items (or one `--flag=value`), not one with a space"]
    return []
