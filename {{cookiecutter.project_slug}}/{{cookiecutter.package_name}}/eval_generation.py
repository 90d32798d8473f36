"""Greedy answers to many prompts at once, equal to answering them one at a time."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm


def official_max_new_tokens(tokenizer, golds: Sequence[str], batch_size: int) -> list[int]:
    """Per row, the official limit on new tokens.

    The official evaluation walks the rows in batches of `batch_size` and lets every row of a
    batch generate as many tokens as the first row's gold answer has (no special tokens).
    """
    limits = []
    for start in range(0, len(golds), batch_size):
        first_gold_tokens = tokenizer(golds[start], add_special_tokens=False)["input_ids"]
        limits += [len(first_gold_tokens)] * len(golds[start : start + batch_size])
    return limits


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
    """Greedy answers to `prompts` (each with its own token limit), in the order given."""
    answers: list[str] = [""] * len(prompts)
    batches = decoding_batches(prompts, max_new_tokens, batch_size)
    for batch in tqdm(batches, desc=description, unit="batch"):
        texts = greedy_decode(
            model, tokenizer, [prompts[row] for row in batch], max_new_tokens[batch[0]]
        )
        for row, text in zip(batch, texts, strict=True):
            answers[row] = text
    return answers
