"""The shared evaluation engine: the model as the official tools load it, and greedy answers
to many prompts at once, equal to answering them one at a time."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

QUANTIZATIONS = ("4", "8", "none")


def load_model(base_model: str, peft_path: str | None, quantization: str):
    """The base model as the official evaluations load it, with the adapter if one is given.

    4-bit: bitsandbytes defaults and float32; 8-bit: float16; `none`: unquantized float32.
    The weights go to the GPU when there is one, else stay on the CPU.
    """
    quantization_config = {
        "4": BitsAndBytesConfig(load_in_4bit=True),
        "8": BitsAndBytesConfig(load_in_8bit=True),
    }.get(quantization)
    model = AutoModelForCausalLM.from_pretrained(
        base_model,
        quantization_config=quantization_config,
        dtype=torch.float16 if quantization == "8" else torch.float32,
        device_map="auto",
    )
    if peft_path is not None:
        model = PeftModel.from_pretrained(model, peft_path)
    return model.eval()


def load_tokenizer(base_model: str):
    """The base model's tokenizer, able to pad (with EOS when it has no pad token)."""
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def greedy_decode(model, tokenizer, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
    """Continue the prompts greedily as one left-padded batch; return the new text of each."""
    encoded = tokenizer(
        list(prompts), return_tensors="pt", padding=True, padding_side="left"
    ).to(model.device)
    with torch.inference_mode():
        output_ids = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
    new_ids = output_ids[:, encoded["input_ids"].shape[1] :]
    return tokenizer.batch_decode(new_ids, skip_special_tokens=True)


# Generation settings under which `generate`'s greedy token is the argmax of the logits.
GREEDY_NEUTRAL = {
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "bad_words_ids": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "sequence_bias": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "guidance_scale": (None, 1.0),
}


def is_plain_greedy(model) -> bool:
    """Whether the model's generation config leaves greedy decoding a plain argmax."""
    config = model.generation_config
    return all(getattr(config, name, None) in neutral for name, neutral in GREEDY_NEUTRAL.items())


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all rows share."""
    length = min(len(row) for row in rows)
    for row in rows[1:]:
        length = next((i for i in range(length) if row[i] != rows[0][i]), length)
    return length


def shared_start(model, rows: Sequence[Sequence[int]]):
    """Run the rows' common start (a benchmark's instruction) once: its length and its cache.

    Every row keeps at least one token of its own, whose logits give the row's answer. Only an
    attention cache of a model on transformers' attention interface is shared this way: where the
    model keeps a recurrent state (Mamba, linear attention) or handles its cache its own way,
    every row runs from its first token.
    """
    length = max(common_prefix_length(rows) - 1, 0)
    if not length or not getattr(model, "_supports_attention_backend", False):
        return 0, None
    start = torch.tensor([rows[0][:length]], device=model.device)
    cache = getattr(model(start, use_cache=True, logits_to_keep=1), "cache", None)
    plain_layers = (DynamicLayer, DynamicSlidingWindowLayer)  # keys and values only, no recurrent state
    if not all(type(layer) in plain_layers for layer in getattr(cache, "layers", [None])):
        return 0, None
    return length, cache


def first_tokens(model, tokenizer, rows: Sequence[Sequence[int]], start) -> list[str]:
    """The greedy next token of each token row, as `generate` would give it, in one pass.

    Rows are right-padded: a causal model never looks at the pads after a row's last token,
    so that token's logits are those of the row alone. `start` (from `shared_start`) is the
    rows' common start, already run; its cache serves every row.
    """
    start_length, start_cache = start
    device = model.device
    cache = None
    tails = [row[start_length:] for row in rows]
    width = max(map(len, tails))
    if start_cache is not None:
        cache = copy.deepcopy(start_cache)
        cache.batch_repeat_interleave(len(rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batch = torch.full((len(rows), width), pad, device=device)
    for index, tail in enumerate(tails):
        batch[index, : len(tail)] = torch.tensor(tail, device=device)
    last = [len(tail) - 1 for tail in tails]
    kept = sorted(set(last))  # logits only where some row ends
    logits = model(
        batch, cache=cache, use_cache=cache is not None, logits_to_keep=torch.tensor(kept, device=device),
    ).logits
    columns = torch.tensor([kept.index(position) for position in last], device=device)
    tokens = logits[torch.arange(len(rows), device=device), columns].argmax(-1).tolist()
    return [tokenizer.decode([token], skip_special_tokens=True) for token in tokens]


def decoding_batches(
    prompts: Sequence[str], max_new_tokens: Sequence[int], batch_size: int
) -> list[list[int]]:
    """Row indices in batches of rows that share a token limit and have similar lengths.

    Sorting by length keeps padding, and so wasted compute, small. Since a batch answers each
    prompt as it would be answered alone, the grouping changes no answer.
    """
    order = sorted(range(len(prompts)), key=lambda row: (max_new_tokens[row], len(prompts[row])))
    batches: list[list[int]] = []
    for row in order:
        batch = batches[-1] if batches else None
        if batch and len(batch) < batch_size and max_new_tokens[batch[0]] == max_new_tokens[row]:
            batch.append(row)
        else:
            batches.append([row])
    return batches


def generate_answers(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: Sequence[int],
    batch_size: int,
    description: str | None = None,
) -> list[str]:
    """Greedy answers to `prompts` (each with its own token limit), in the order given.

    One-token answers (most multiple-choice rows) take one forward pass per batch
    (`first_tokens`) when the generation config makes greedy decoding a plain argmax, after
    the start they all share (a benchmark's instruction) has run once; the others go through
    `generate`.
    """
    answers: list[str] = [""] * len(prompts)
    plain = is_plain_greedy(model)
    single = [row for row in range(len(prompts)) if plain and max_new_tokens[row] == 1]
    others = sorted(set(range(len(prompts))) - set(single))
    encoded = tokenizer([prompts[row] for row in single])["input_ids"] if single else []
    token_ids = dict(zip(single, encoded, strict=True))
    single.sort(key=lambda row: len(token_ids[row]))  # little padding in each batch
    jobs = [(1, single[start : start + batch_size]) for start in range(0, len(single), batch_size)]
    jobs += [
        (max_new_tokens[others[batch[0]]], [others[index] for index in batch])
        for batch in decoding_batches(
            [prompts[row] for row in others], [max_new_tokens[row] for row in others], batch_size
        )
    ]
    with torch.inference_mode():
        start = shared_start(model, encoded) if single else (0, None)
        for limit, batch in tqdm(jobs, desc=description, unit="batch"):
            if batch[0] in token_ids:
                texts = first_tokens(model, tokenizer, [token_ids[row] for row in batch], start)
            else:
                texts = greedy_decode(model, tokenizer, [prompts[row] for row in batch], limit)
            for row, text in zip(batch, texts, strict=True):
                answers[row] = text
    return answers


def greedy_until_settled(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: Sequence[int],
    batch_size: int,
    settled: Callable[[int, list[int]], bool],
    description: str | None = None,
) -> list[list[int]]:
    """Greedy new tokens of each token row, up to its limit, the end of sequence, or until
    `settled(row, new_tokens)` says nothing it could still write would change its score.

    Rows are batched by length and left-padded, with positions counted from each row's first
    real token, so every row gets what `generate` gives it alone. A row that is done leaves
    its batch: the rest go on without it.
    """
    new_tokens: list[list[int]] = [[] for _ in prompts]
    order = sorted(range(len(prompts)), key=lambda row: len(prompts[row]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = model.device
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    with torch.inference_mode():
        for batch in tqdm(batches, desc=description, unit="batch"):
            width = max(len(prompts[row]) for row in batch)
            input_ids = torch.full((len(batch), width), pad, device=device)
            attention = torch.zeros((len(batch), width), dtype=torch.long, device=device)
            for index, row in enumerate(batch):
                input_ids[index, width - len(prompts[row]) :] = torch.tensor(prompts[row], device=device)
                attention[index, width - len(prompts[row]) :] = 1
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
            output = model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                           use_cache=True, logits_to_keep=1)
            cache, active = output.cache, list(batch)
            next_positions = positions[:, -1:] + 1
            while True:
                chosen = output.logits[:, -1].argmax(-1)
                keep = []
                for index, (row, token) in enumerate(zip(active, chosen.tolist(), strict=True)):
                    if token == tokenizer.eos_token_id:
                        continue
                    new_tokens[row].append(token)
                    if len(new_tokens[row]) < max_new_tokens[row] and not settled(row, new_tokens[row]):
                        keep.append(index)
                if not keep:
                    break
                if len(keep) < len(active):
                    kept = torch.tensor(keep, device=device)
                    cache.batch_select_indices(kept)
                    attention, chosen, next_positions = attention[kept], chosen[kept], next_positions[kept]
                    active = [active[index] for index in keep]
                attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=-1)
                output = model(input_ids=chosen[:, None], attention_mask=attention,
                               position_ids=next_positions, cache=cache, use_cache=True)
                next_positions = next_positions + 1
    return new_tokens
