"""vLLM's command line, built once: the Deployment's container and `kubetune serve` run exactly this argv
(after `vllm serve` / `python -m vllm.entrypoints.openai.api_server`). Pure.

The API key is never a flag: vLLM reads it from VLLM_API_KEY (set from the Secret by reference), so it
stays out of argv, the pod spec's args, `ps` and logs.
"""

from __future__ import annotations

from dataclasses import dataclass

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
# Flags the operator sets itself (or must never be set in argv): extraArgs may not name them.
OWNED_FLAGS = frozenset({"--model", "--served-model-name", "--host", "--port", "--api-key", "--chat-template",
                         "--tensor-parallel-size", "--lora-modules", "--enable-lora"})
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
        flag = arg.split("=", 1)[0]
        if flag in OWNED_FLAGS:
            out.append(f"spec.vllm.extraArgs[{i}]: {flag} is set by the operator"
                       + ("; use spec.apiKeySecret" if flag == "--api-key" else ""))
    return out
