"""Completions of code prompts as bigcode-evaluation-harness generates them, many at once.

The harness feeds each prompt alone (its tokenizer's special tokens added, no prefix, no
instruction tokens), samples with temperature 0.2, top-p 0.95 and top-k off up to a total
length (prompt and completion) of `max_length` tokens, stops once a stop word (or the end of
sequence token, which it adds to the stop words) appears in the new text, and decodes the
whole sequence with special tokens kept. Here prompts go in left-padded batches; each row
keeps its own length budget and stops on its own. Greedy decoding (when the model's generation
config leaves it a plain argmax) decodes each problem once, whatever the number of samples, and
a row that has stopped leaves its batch (`greedy_until_settled`); sampling goes through
`generate`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from ..engine import greedy_until_settled, is_plain_greedy, load_model, load_tokenizer, use_adapter


def load_generation_model(base_model: str, peft_path: str | None):
    """The base model in float32 with the adapter merged into it, as the official run loads it;
    and its tokenizer."""
    model = load_model(base_model, peft_path, "none")
    if peft_path is not None:
        model = model.merge_and_unload()
    return model, load_tokenizer(base_model)


def adapter_models(base_model: str, peft_paths: Sequence[str]) -> Iterator[tuple[Any, Any]]:
    """The base model loaded once, as `load_generation_model` loads it, with each adapter
    merged into it in turn and taken out again before the next (which restores the base
    weights up to float32 rounding)."""
    model = load_model(base_model, None, "none")
    tokenizer = load_tokenizer(base_model)
    for peft_path in peft_paths:
        model = use_adapter(model, peft_path)
        model.merge_adapter()
        try:
            yield model, tokenizer
        finally:
            model.unmerge_adapter()


class StopWordsOrBudget(StoppingCriteria):
    """Per row: done once its new text holds a stop word, or it has used its token budget.

    The new text is decoded whole, special tokens kept, as the harness checks it; rows already
    done are not decoded again.
    """

    def __init__(self, tokenizer, prompt_width: int, stop_words: Sequence[str], budgets: Sequence[int]):
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.stop_words = list(stop_words)
        self.budgets = list(budgets)
        self.done = [False] * len(budgets)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        new_tokens = input_ids[:, self.prompt_width :]
        for row, budget in enumerate(self.budgets):
            if not self.done[row]:
                text = self.tokenizer.decode(new_tokens[row])
                stopped = any(word in text for word in self.stop_words)
                self.done[row] = stopped or new_tokens.shape[1] >= budget
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


def decode_completion(tokenizer, token_ids: list[int], prompt: str) -> str:
    """The text after the prompt, decoded as the harness decodes: the whole sequence, its
    leading BOS dropped, special tokens kept, then cut at the prompt's length."""
    if token_ids and token_ids[0] == tokenizer.bos_token_id:
        token_ids = token_ids[1:]
    text = tokenizer.decode(token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return text[len(prompt) :]


def holds_stop_word(tokenizer, new_tokens: Sequence[int], stop_words: Sequence[str]) -> bool:
    """Whether the new text, decoded with special tokens kept as the harness decodes it, holds
    a stop word."""
    text = tokenizer.decode(new_tokens)
    return any(word in text for word in stop_words)


def greedy_completions(
    model, tokenizer, prompts: Sequence[str], token_ids: Sequence[list[int]], problems: Sequence[int],
    stop_words: Sequence[str], max_length: int, batch_size: int, description: str,
) -> dict[int, str]:
    """The greedy completion of each of `problems`, as `generate` gives it to the prompt alone.

    A row ends at a stop word, its budget or the end of sequence; `generate` keeps that last
    token, so it is put back here (the harness cuts the completion at it, a stop word).
    """
    budgets = [max_length - len(token_ids[problem]) for problem in problems]
    new_tokens = greedy_until_settled(
        model, tokenizer, [token_ids[problem] for problem in problems], budgets, batch_size,
        lambda row, tokens: holds_stop_word(tokenizer, tokens, stop_words), description,
    )
    completions = {}
    for problem, budget, tokens in zip(problems, budgets, new_tokens, strict=True):
        if len(tokens) < budget and not holds_stop_word(tokenizer, tokens, stop_words):
            tokens = [*tokens, tokenizer.eos_token_id]
        completions[problem] = decode_completion(tokenizer, token_ids[problem] + tokens, prompts[problem])
    return completions


def generate_completions(
    model,
    tokenizer,
    prompts: Sequence[str],
    stop_words: Sequence[str],
    max_length: int,
    n_samples: int,
    batch_size: int,
    sampling: Mapping[str, Any],
    description: str,
) -> list[list[str]]:
    """`n_samples` completions of each prompt (the text after it, not yet cut at a stop word).

    `sampling` holds `generate`'s decoding settings (`do_sample`, `temperature`...). A prompt
    of `max_length` tokens or more gets an empty completion, as in the harness.
    """
    token_ids = tokenizer(list(prompts))["input_ids"]
    completions = [[""] * n_samples for _ in prompts]
    fitting = [problem for problem in range(len(prompts)) if len(token_ids[problem]) < max_length]
    if dict(sampling) == {"do_sample": False} and is_plain_greedy(model):
        greedy = greedy_completions(model, tokenizer, prompts, token_ids, fitting, stop_words, max_length,
                                    batch_size, description)
        for problem, completion in greedy.items():
            completions[problem] = [completion] * n_samples
        return completions
    rows = sorted(
        ((problem, sample) for problem in fitting for sample in range(n_samples)),
        key=lambda row: len(token_ids[row[0]]),
    )  # rows of similar length share a batch: little padding
    batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    for batch in tqdm(batches, desc=description, unit="batch"):
        problems = [problem for problem, _ in batch]
        encoded = tokenizer(
            [prompts[problem] for problem in problems], return_tensors="pt", padding=True,
            padding_side="left",
        ).to(model.device)
        width = encoded["input_ids"].shape[1]
        budgets = [max_length - len(token_ids[problem]) for problem in problems]
        with torch.inference_mode():
            output = model.generate(
                **encoded,
                max_new_tokens=max(budgets),
                stopping_criteria=StoppingCriteriaList(
                    [StopWordsOrBudget(tokenizer, width, stop_words, budgets)]
                ),
                pad_token_id=tokenizer.eos_token_id,
                **sampling,
            )
        rows_tokens = zip(batch, budgets, output[:, width:].tolist(), strict=True)
        for (problem, sample), budget, new_tokens in rows_tokens:
            completions[problem][sample] = decode_completion(
                tokenizer, token_ids[problem] + new_tokens[:budget], prompts[problem]
            )
    return completions
