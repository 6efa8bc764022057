"""vLLM's command line, built once: the Deployment's container and `kubetune serve` run exactly this argv
(after `vllm serve` / `python -m vllm.entrypoints.openai.api_server`). Pure.

The API key is never a flag: vLLM reads it from VLLM_API_KEY (set from the Secret by reference), so it
stays out of argv, the pod spec's args, `ps` and logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..apitypes import shown
from . import api, vllm_args

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
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # what --max-lora-rank accepts


@dataclass(frozen=True)
class ModelFiles:
    """Where a replica finds what it serves."""

    model: str  # a local directory (fetched) or a Hub id
    chat_template: str | None = None  # a file, when the template is given or comes with the model's files
    adapter: str | None = None  # LoRA mode: the adapter directory


def runtime_adapters(spec: api.ModelServeSpec) -> bool:
    """spec.adapters: LoRA on, adapters loaded and unloaded at run time by each replica's adapter agent (vLLM
    serves those endpoints only where `contract.adapters.RUNTIME_UPDATES_ENV` is set)."""
    return bool(spec.adapters)


def tensor_parallel(spec: api.ModelServeSpec) -> int:
    return spec.vllm.tensor_parallel_size or max(1, spec.resources.gpus)


def lora_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds `rank`."""
    return next((r for r in LORA_RANKS if r >= rank), LORA_RANKS[-1])


@dataclass(frozen=True)
class Setting:
    """One setting of vLLM the operator owns: its flag, the spec field that decides it (None: the operator
    itself), and its values on this argv (None: not on it; [] for a switch that is on)."""

    flag: str
    field: str | None
    values: list[str] | None
    secret: bool = False  # never a flag: vLLM reads it from the environment, set from the field's Secret


def settings(spec: api.ModelServeSpec, served_name: str, files: ModelFiles, *, host: str = "0.0.0.0",
             port: int = PORT) -> list[Setting]:
    """Every setting vLLM's argv may carry for a ModelServe, in argv order, whether this spec sets it or not:
    together they are what `spec.vllm.extraArgs` may not touch."""
    v = spec.vllm
    gpus = spec.resources.gpus > 0
    single = files.adapter is not None  # model.lora.enabled: one adapter, served as the model, fixed at start
    lora = single or runtime_adapters(spec)
    return [
        Setting("--model", None, [files.model]),
        Setting("--served-model-name", None, [served_name]),
        Setting("--host", None, [host]),
        Setting("--port", None, [str(port)]),
        # Where and how it listens: HTTP on host:port, where the probes and the Service look.
        Setting("--uds", None, None),
        Setting("--grpc", None, None),
        Setting("--headless", None, None),
        # Secrets are never flags (argv shows in the pod spec, `ps` and logs): vLLM reads them from the env.
        Setting("--api-key", "spec.apiKeySecret", None, secret=True),
        Setting("--hf-token", "spec.hubTokenSecret", None, secret=True),
        Setting("--dtype", "spec.vllm.dtype", [v.dtype]),
        Setting("--max-model-len", "spec.vllm.maxModelLen", [str(v.max_model_len)] if v.max_model_len else None),
        Setting("--gpu-memory-utilization", "spec.vllm.gpuMemoryUtilization",
                [str(v.gpu_memory_utilization)] if gpus else None),
        Setting("--tensor-parallel-size", "spec.vllm.tensorParallelSize",
                [str(tensor_parallel(spec))] if gpus else None),
        Setting("--enable-auto-tool-choice", "spec.vllm.enableAutoToolChoice",
                [] if v.enable_auto_tool_choice else None),
        Setting("--tool-call-parser", "spec.vllm.toolCallParser", [v.tool_call_parser]),
        Setting("--chat-template", "spec.vllm.chatTemplate", [files.chat_template] if files.chat_template else None),
        Setting("--max-num-seqs", "spec.vllm.maxNumSeqs", [str(v.max_num_seqs)] if v.max_num_seqs else None),
        Setting("--enable-lora", "spec.model.lora.enabled", [] if lora else None),
        Setting("--max-lora-rank", "spec.model.lora.maxRank", [str(lora_rank(spec.model.lora.max_rank))] if lora
                else None),
        Setting("--max-loras", "spec.model.lora.maxLoras", ["1"] if single else [str(spec.model.lora.max_loras)]
                if lora else None),
        Setting("--lora-modules", None, [f"{served_name}={files.adapter}"] if single else None),
    ]


# Flags extraArgs may not hold though no setting above is theirs, and why.
REFUSED = {"--config": "reads flags from a file, which could set any setting the operator owns",
           "--help": "prints the help and exits instead of serving"}


def argv(spec: api.ModelServeSpec, served_name: str, files: ModelFiles, *, host: str = "0.0.0.0",
         port: int = PORT) -> list[str]:
    """The api_server flags of one replica: the operator's settings, then spec.vllm.extraArgs."""
    out = []
    for s in settings(spec, served_name, files, host=host, port=port):
        if s.values is not None:
            out += [s.flag, *s.values]
    return out + list(spec.vllm.extra_args)


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
    return out + extra_args_problems(spec)


def extra_args_problems(spec: api.ModelServeSpec) -> list[str]:
    """Each extraArgs item that vLLM's parser would read as one of the operator's settings in any spelling
    (an abbreviation, a short alias, a `--no-` negation, a dotted key, one more value of the operator's last
    flag), as a flag it refuses, or as a positional; and a setting given twice. A message names the item and
    never repeats a value (it may be a key pasted by mistake)."""
    extra = list(spec.vllm.extra_args)
    if not extra:
        return []
    files = ModelFiles(model="MODEL", chat_template="TEMPLATE",
                       adapter="ADAPTER" if spec.model.lora.enabled else None)
    owned = {vllm_args.dest(s.flag): s for s in settings(spec, "NAME", files)}
    refused = {vllm_args.dest(flag): why for flag, why in REFUSED.items()}
    full = argv(spec, "NAME", files)
    first = len(full) - len(extra)  # the index of extraArgs[0] in the full argv
    reading = vllm_args.read(full)
    found: dict[int, str] = {}

    def refuse(index: int, message: str) -> None:
        if index >= first:
            found.setdefault(index - first, message)

    for index, item in enumerate(extra):
        if item == "--":
            refuse(first + index, "`--` ends vLLM's options: every later item would be a positional")
    seen: dict[str, int] = {}
    for use in reading.uses:
        how = _spelled(use)
        if use.dest in owned:
            setting = owned[use.dest]
            refuse(use.flag, f"{how} {_owner(setting)}")
            for value in use.values if use.flag < first else ():  # a bare item after the operator's last flag
                refuse(value, f"would be read as one more value of {setting.flag}, which "
                              f"{'the operator sets' if setting.field is None else setting.field + ' sets'}")
        elif use.dest in refused:
            refuse(use.flag, f"{how} {refused[use.dest]}")
        elif use.flag >= first and vllm_args.option(use.option)["action"] != "Append":
            if use.dest in seen:
                refuse(use.flag, f"{how} is also set by spec.vllm.extraArgs[{seen[use.dest] - first}]; "
                                 "give each setting once")
            seen.setdefault(use.dest, use.flag)
    for r in reading.refusals:
        refuse(r.index, f"{r.reason}; vLLM would not start")
    for index in reading.positionals:
        item = extra[index - first] if index >= first else ""
        if item.startswith("-") and any(c.isspace() for c in item):
            refuse(index, f"{shown(item.split()[0].split('=', 1)[0])} and its value are two items (or one "
                          "`--flag=value`), not one with a space")
        else:
            refuse(index, "follows no flag that takes it: vLLM would read this bare item as a positional "
                          "argument (the model to serve, which the operator sets)")
    return [f"spec.vllm.extraArgs[{i}]: {m}" for i, m in sorted(found.items())]


def _spelled(use: vllm_args.Use) -> str:
    """A flag as given, and what vLLM reads it as when that is another spelling: `'--ho' (vLLM reads it as
    --host)`, `'--no-enable-auto-tool-choice' (vLLM reads it as --enable-auto-tool-choice turned off)`."""
    canonical = vllm_args.long_option(use.dest)
    if use.given == canonical:
        return canonical
    off = " turned off" if vllm_args.option(use.option).get("negates") else ""
    return f"{shown(use.given)} (vLLM reads it as {canonical}{off})"


def _owner(setting: Setting) -> str:
    if setting.field is None:
        return "is set by the operator"
    if setting.secret:
        return f"is set by the operator from a Secret; use {setting.field}"
    return f"is what {setting.field} sets; set that field instead"
