"""The architecture census: every decoder architecture transformers maps to causal LM, built as
a tiny random model and run through the rendered package's own path.

`census_architectures()` derives the list from transformers' own causal-LM mapping and gives
each architecture left out with its reason; `census_entry()` runs one architecture: the server's
initial adapter from the config alone, the 4-bit client with LoRA on the `auto` targets, one
training step, the adapter saved from its arrays as the server saves it, reloaded as the
leaderboard loads it (`AutoModelForCausalLM.from_pretrained` + `PeftModel.from_pretrained`), and
one greedy token through the evaluation engine. `benchmarks/architectures.py` prints the table,
`tests/test_architectures.py` asserts every row.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .render import TEMPLATE_PACKAGE_DIR, load_template_module

# Layer sizes of the tiny models; each name is set only where the config has it.
TEXT_SIZES = {
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 512,
    # older spellings of the same sizes
    "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 512, "n_ctx": 512, "d_model": 64,
    "ffn_dim": 128, "n_inner": 128, "d_inner": 128, "dff": 128, "n_heads": 4, "n_layers": 2,
    "rotary_dim": 8, "num_layers": 2, "ffn_hidden_size": 128,
    # mixtures of experts
    "moe_intermediate_size": 32, "num_experts": 4, "num_local_experts": 4, "n_routed_experts": 4,
    "moe_num_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1, "num_shared_experts": 1,
    "shared_expert_intermediate_size": 32, "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1,
    "num_experts_per_token": 2, "num_expert_group": 1,
    # linear attention
    "linear_head_dim": 16, "linear_num_heads": 4, "linear_key_head_dim": 16, "linear_value_head_dim": 16,
    "linear_num_key_heads": 2, "linear_num_value_heads": 4,
    "swa_num_attention_heads": 4, "swa_num_key_value_heads": 2, "swa_head_dim": 16,
    "shared_experts_intermediate_size": 32,
    # multi-head latent attention
    "q_lora_rank": 32, "kv_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8,
    "v_head_dim": 16, "qk_head_dim": 16,
    # sparse-attention indexers (DeepSeek V3.2)
    "index_head_dim": 16, "index_n_heads": 2, "index_topk": 4,
    # per-layer inputs (Gemma 3n, Gemma 4)
    "hidden_size_per_layer_input": 16,
}
# Most layers one model may keep so that each kind of layer its pattern lists occurs once.
MAX_LAYERS = 8
TOWER_SIZES = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
    "num_key_value_heads": 2, "head_dim": 16, "image_size": 28, "patch_size": 14,
    "moe_intermediate_size": 32, "num_local_experts": 2, "downsample_hidden_size": 32,
    # the projection from a tower into the language model
    "adapter_in_dim": 32, "adapter_input_size": 32, "adapter_out_dim": TEXT_SIZES["hidden_size"],
}
# Sub-configs whose names contain these words are towers (vision, audio, image tokenizer).
TOWER_WORDS = ("vision", "audio", "vq")
# An adapter tensor whose name holds one of these lies in a tower or a projector.
TOWER_KEY = re.compile(r"vision|visual|audio|image|speech|multi_modal|mm_projector|vq")

# Mamba-2 mixers of hybrid models sized to the tiny hidden size (their defaults, 128 heads with a
# state of 256, make a CPU training step take minutes).
TINY_MAMBA = {"mamba_n_heads": 8, "mamba_d_head": 16, "mamba_d_state": 16, "mamba_chunk_size": 16}

# model_type -> config arguments a tiny model of it needs beyond the sizes above.
TINY_OVERRIDES: dict[str, dict] = {
    "cohere_compass_text": {"rope_parameters": {
        kind: {"rope_type": "default", "rope_theta": 10000.0}
        for kind in ("full_attention", "sliding_attention")
    }},
    "bamba": {"attn_layer_indices": [1], **TINY_MAMBA},
    "falcon_h1": {**TINY_MAMBA, "mamba_d_ssm": 128},
    "dbrx": {"attn_config": {"kv_n_heads": 2, "rope_theta": 10000.0, "clip_qkv": 8.0},
             "ffn_config": {"ffn_hidden_size": 128, "moe_num_experts": 4, "moe_top_k": 2}},
    # compress keys at the census's short sequences too
    "deepseek_v4": {"compress_rates": {"compressed_sparse_attention": 4, "heavily_compressed_attention": 8}},
    "dory": {"num_hidden_layers": 4, "layer_types": None, "n_input_layers": 1, "n_recurrent_layers": 2,
             "n_output_layers": 1},
    "dots3_note": {"text_config": {"head_dim": 16}},
    "dots3_note_text": {"head_dim": 16},
    "ernie4_5_moe": {"moe_k": 2},
    "gemma3n_text": {"num_hidden_layers": 10, "num_kv_shared_layers": 5},
    "gpt_neo": {"attention_types": [[["global", "local"], 1]]},
    "granitemoehybrid": {"layer_types": ["linear_attention", "full_attention"], **TINY_MAMBA},
    "inkling2_text": {"unpadded_vocab_size": 512},
    "jamba": {"attn_layer_period": 2, "attn_layer_offset": 1, "expert_layer_period": 2,
              "expert_layer_offset": 1},
    "inkling2_loop_text": {"unpadded_vocab_size": 512},
    "lfm2_moe": {"layer_types": ["conv", "full_attention"], "num_dense_layers": 1},
    "longcat_flash": {"expert_ffn_hidden_size": 32, "zero_expert_num": 2, "moe_topk": 2},
    "qwen4_exp_text": {"indexer_n_heads": 2, "indexer_kv_heads": 1, "indexer_head_dim": 16,
                       "indexer_budget": 8, "indexer_compress_ratio": 2, "ple_embed_dim": 16},
    "recurrent_gemma": {"num_hidden_layers": 3},
    "mamba2": {"num_heads": 4, "head_dim": 32, "n_groups": 1, "state_size": 16, "time_step_rank": 8,
               "chunk_size": 16},
    "qwen4_exp": {"text_config": {"indexer_n_heads": 2, "indexer_kv_heads": 1, "indexer_head_dim": 16,
                                  "indexer_budget": 8, "indexer_compress_ratio": 2, "ple_embed_dim": 16}},
    "zamba": {"num_hidden_layers": 4, "layers_block_type": ["linear_attention", "hybrid"] * 2},
    "zaya": {"num_experts_per_tok": 1},
}

# The rendered package's table of architectures that cannot run quantized (refused at run start).
NOT_QUANTIZABLE = load_template_module(TEMPLATE_PACKAGE_DIR / "modeling" / "lora_targets.py",
                                       "census_lora_targets").NOT_QUANTIZABLE
# Left out of the census, with the reason: architectures no mapping of transformers tells apart.
NOT_CHAT = {
    "bert-generation": "non-chat: the decoder half of a BERT encoder-decoder",
    "blt": "non-chat: a byte-level research model (no tokenizer), released pretrained only",
    "trocr": "encoder-decoder: the text decoder of an image-to-text (OCR) encoder-decoder",
    "git": "non-chat: an image-captioning decoder",
    "got_ocr2": "non-chat: an OCR model (image to transcript)",
    "moshi": "audio/music: the text stream of a speech-to-speech model",
    "gemma4_assistant": "non-chat: a draft model for speculative decoding beside Gemma 4",
    "gemma4_unified_assistant": "non-chat: a draft model for speculative decoding beside Gemma 4",
    "gemma3n": "needs timm: its vision tower needs the timm library, which the baseline does not install "
               "(its language model is in the census as gemma3n_text)",
}

PROMPT = "What is sepsis?\n### Response:"
EXAMPLES = [
    {"prompt": "What hormone lets cells take up glucose?\n### Response:", "completion": " Insulin."},
    {"prompt": "What is sepsis?\n### Response:", "completion": " A response to an infection."},
    {"prompt": "What does the liver store?\n### Response:", "completion": " Glycogen."},
    {"prompt": "What is anaemia?\n### Response:", "completion": " Too little haemoglobin."},
]
# Run values of a census entry: one short training step on a CPU.
RUN_OVERRIDES = {
    "train.seq-length": 64,
    "train.training-arguments.max-steps": 1,
    "train.training-arguments.per-device-train-batch-size": 2,
    "train.training-arguments.logging-steps": 1,
}


def exclusion_reason(model_type: str) -> str | None:
    """Why an architecture of the causal-LM mapping is not a decoder-only chat model, or None."""
    from transformers import CONFIG_MAPPING
    from transformers.models.auto import modeling_auto

    if model_type in NOT_CHAT:
        return NOT_CHAT[model_type]
    if model_type in NOT_QUANTIZABLE:
        return f"not quantizable: {NOT_QUANTIZABLE[model_type]} (the server refuses it)"
    if (model_type in modeling_auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES
            or model_type in modeling_auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES
            or getattr(CONFIG_MAPPING[model_type], "is_encoder_decoder", False) is True):
        return "encoder-decoder: the decoder of a sequence-to-sequence model"
    if model_type in modeling_auto.MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES:
        return "audio/music: generates audio"
    if model_type in modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "non-chat: an encoder (masked language model) with a language-model head"
    return None


def census_architectures() -> tuple[list[str], dict[str, str]]:
    """The architectures of the census and those left out, with their reasons, from
    transformers' causal-LM mapping (in its order)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    included, excluded = [], {}
    for model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        reason = exclusion_reason(model_type)
        if reason is None:
            included.append(model_type)
        else:
            excluded[model_type] = reason
    return included, excluded


def tiny_sizes(names: set[str], extra: dict) -> dict:
    """The tiny sizes (and `extra` values) of the config fields among `names`."""
    sizes = {name: value for name, value in {**TEXT_SIZES, **extra}.items() if name in names}
    if "kv_lora_rank" in names:  # latent attention: a key and a value per head, part of it roped
        sizes["num_key_value_heads"] = TEXT_SIZES["num_attention_heads"]
        if "head_dim" in names:
            sizes["head_dim"] = TEXT_SIZES["qk_rope_head_dim"]
    return sizes


def layer_patterns(config: dict, count: int | None = None) -> dict:
    """A config's per-layer lists (layer kinds, per-layer sizes) cut to `count` layers, by default
    the fewest first layers that hold every kind of layer, and that number of layers."""
    layers = config.get("num_hidden_layers")
    lists = {name: value for name, value in config.items()
             if isinstance(value, list) and layers and layers > 2 and len(value) == layers}
    if not lists:
        return {}
    kinds = [value for value in lists.values() if all(isinstance(item, str) for item in value)]
    if count is None:
        count = 2
        while count < min(layers, MAX_LAYERS) and any(set(value[:count]) != set(value) for value in kinds):
            count += 1
    cut = {name: [TEXT_SIZES[name]] * count if name in TEXT_SIZES else value[:count]
           for name, value in lists.items()}
    if config.get("per_layer_config"):  # layers whose sizes differ from the others' (Dots 3)
        cut["per_layer_config"] = {index: tiny_sizes(set(sizes), {}) | {
            name: value for name, value in sizes.items() if name not in TEXT_SIZES
        } for index, sizes in config["per_layer_config"].items() if int(index) < count}
    return {"num_hidden_layers": count, **cut}


def tiny_config(model_type: str, tokenizer):
    """A config of `model_type` with tiny sizes, towers tinier still, and `tokenizer`'s vocabulary."""
    import transformers

    config_class = transformers.CONFIG_MAPPING[model_type]
    default = config_class()
    overrides = TINY_OVERRIDES.get(model_type, {})
    token_ids = {
        "vocab_size": len(tokenizer), "vocab_size_per_layer_input": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }

    def text(config) -> dict:
        fields = config.to_dict()
        layers = overrides.get("num_hidden_layers")
        return {**tiny_sizes(set(fields), token_ids), **layer_patterns(fields, layers)}

    arguments = text(default)
    for name, value in vars(default).items():
        if isinstance(value, transformers.PretrainedConfig):
            tower = any(word in name for word in TOWER_WORDS)
            if tower:  # one small layer, none of its own per-layer sizes
                fields = set(value.to_dict())
                arguments[name] = {size: TOWER_SIZES[size] for size in fields & set(TOWER_SIZES)}
                arguments[name].update({"per_layer_config": {}} if "per_layer_config" in fields else {})
            else:
                arguments[name] = text(value)
    for name, value in overrides.items():  # an override of a sub-config adds to its tiny sizes
        both_dicts = isinstance(value, dict) and isinstance(arguments.get(name), dict)
        arguments[name] = {**arguments[name], **value} if both_dicts else value
    return config_class(**arguments)


def build_tiny_architecture(model_type: str, out_dir: Path | str, tokenizer, seed: int = 0) -> Path:
    """Save a tiny random model of `model_type` and `tokenizer` to `out_dir`.

    Weights that the random initialisation leaves at zero (gates, scales and output projections
    that some architectures start at zero) get small random values, as in a trained checkpoint:
    otherwise no gradient would reach the adapters before them. The config saved is the whole
    config of `model_type`, as a hub checkpoint holds it, also where the causal-LM class keeps
    only its text part (Emu3, Mllama).
    """
    import torch
    from transformers import AutoModelForCausalLM

    out_dir = Path(out_dir)
    config = tiny_config(model_type, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.is_floating_point() and not parameter.any():
                parameter.normal_(0.0, 0.02)
    model.save_pretrained(out_dir)
    config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@dataclass
class CensusRow:
    """One architecture's census result."""

    architecture: str
    model_class: str = ""
    targets: str = ""
    adapter_tensors: int = 0
    outcome: str = "not run"

    @property
    def trained(self) -> bool:
        return self.outcome == "trained"


def census_entry(model_type: str, package: Callable, run_config: dict, tokenizer, workdir: Path) -> CensusRow:
    """Run one architecture through the rendered package (see the module docstring).

    `package(name)` imports `<rendered package>.<name>`; `run_config` is its flat run config.
    The outcome is `trained` or the first check that failed.
    """
    row = CensusRow(model_type)
    try:
        _run_entry(row, package, run_config, tokenizer, Path(workdir))
    except Exception as error:  # noqa: BLE001 - the census reports every failure as its outcome
        row.outcome = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:160]}" if str(error) \
            else type(error).__name__
    return row


def _run_entry(row: CensusRow, package: Callable, run_config: dict, tokenizer, workdir: Path) -> None:
    import numpy as np
    from datasets import Dataset
    from peft.utils import get_peft_model_state_dict
    from safetensors.numpy import load_file

    model_dir = build_tiny_architecture(row.architecture, workdir / "model", tokenizer)
    loading = package("modeling.loading")
    targets = package("modeling.lora_targets").resolve_target_modules(str(model_dir), "auto")
    settings = package("settings").read_settings({
        **run_config, **RUN_OVERRIDES, "model.name": str(model_dir), "model.lora.target-modules": targets,
    })
    row.targets = loading.lora_targets(settings).describe()

    row.outcome = "server: initial adapter"
    initial = loading.initial_adapter_state(settings)
    row.adapter_tensors = len(initial)

    row.outcome = "client: 4-bit model with LoRA"
    client_app = package("client_app")
    model, tokenizer, fresh = client_app.loaded_model(settings)
    row.model_class = type(model.get_base_model()).__name__
    if set(fresh) != set(initial):
        raise AssertionError(f"client and server adapters differ: {sorted(set(fresh) ^ set(initial))[:3]}")
    loading.load_adapter_state(model, initial)

    row.outcome = "client: training step"
    loss = client_app.train_adapter(model, tokenizer, settings, Dataset.from_list(EXAMPLES), 1e-3, 0.0)
    if not np.isfinite(loss):
        raise AssertionError(f"training loss is {loss}")
    trained = loading.adapter_state(model)

    row.outcome = "server: checkpoint"
    arrays = package("communication").to_arrays(dict(trained), "float32")
    directory = package("checkpoint").save_adapter(arrays, settings, workdir / "peft_1", comm_total_mb=0.0)
    saved = load_file(directory / "adapter_model.safetensors")
    unchanged = sorted(key for key, value in saved.items() if ".lora_B." in key and not value.any())
    if unchanged:
        raise AssertionError(f"{len(unchanged)} of {sum('.lora_B.' in key for key in saved)} B matrices "
                             f"untrained: {unchanged[0]}")
    in_towers = [key for key in saved if TOWER_KEY.search(key)]
    if in_towers:
        raise AssertionError(f"{len(in_towers)} adapter tensors in a tower: {in_towers[0]}")

    row.outcome = "leaderboard: reload"
    engine = package("evaluation.engine")
    reloaded = engine.load_model(str(model_dir), str(directory), "4")
    loaded = {key: value.float().cpu().numpy() for key, value in get_peft_model_state_dict(reloaded).items()}
    if set(loaded) != set(saved):
        raise AssertionError(f"reloaded adapter keys differ: {sorted(set(loaded) ^ set(saved))[:3]}")
    differ = [key for key in saved if not np.allclose(loaded[key], saved[key])]
    if differ:
        raise AssertionError(f"{len(differ)} reloaded adapter tensors differ from those saved: {differ[0]}")

    row.outcome = "evaluation: greedy token"
    prompts = [PROMPT, PROMPT + " A"]
    answers = engine.generate_answers(reloaded, engine.load_tokenizer(str(model_dir)), prompts, [1, 1], 2)
    if len(answers) != 2:
        raise AssertionError(f"the engine gave {len(answers)} answers to 2 prompts")
    row.outcome = "trained"


def run_census(package: Callable, run_config: dict, tokenizer, architectures: list[str],
               report: Callable[[CensusRow], None] = lambda row: None) -> list[CensusRow]:
    """Census rows of `architectures`, each in a fresh temporary folder; `report` sees each row."""
    rows = []
    for model_type in architectures:
        with tempfile.TemporaryDirectory() as workdir:
            row = census_entry(model_type, package, run_config, tokenizer, Path(workdir))
        report(row)
        rows.append(row)
    return rows


README_START = "<!-- census: python benchmarks/architectures.py --write-readme -->"
README_END = "<!-- end of census -->"


def readme_table(rows: list[CensusRow], excluded: dict[str, str]) -> str:
    """The README's table of the trained architectures, and those left out by reason."""
    lines = ["| architecture | class (`AutoModelForCausalLM`) | LoRA targets with `auto` | adapter tensors |",
             "| --- | --- | --- | --- |"]
    lines += [f"| `{row.architecture}` | `{row.model_class}` | {row.targets} | {row.adapter_tensors} |"
              for row in rows if row.trained]
    by_reason: dict[str, list[str]] = {}
    for model_type, reason in excluded.items():
        by_reason.setdefault(reason, []).append(f"`{model_type}`")
    lines += ["", "Left out:", ""]
    lines += [f"- {reason}: {', '.join(types)}" for reason, types in by_reason.items()]
    return "\n".join(lines)


def readme_with_table(readme: str, rows: list[CensusRow], excluded: dict[str, str]) -> str:
    """`readme` with the census table written between its markers."""
    start = readme.index(README_START) + len(README_START)
    return f"{readme[:start]}\n{readme_table(rows, excluded)}\n{readme[readme.index(README_END):]}"


def readme_rows(readme: str) -> dict[str, tuple[str, str, int]]:
    """The README's census rows: architecture -> (class, targets, adapter tensors)."""
    table = readme[readme.index(README_START):readme.index(README_END)]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2], int(cells[3]))
    return rows
