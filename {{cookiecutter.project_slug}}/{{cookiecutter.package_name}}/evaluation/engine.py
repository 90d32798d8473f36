"""The shared evaluation engine: the model as the official tools load it, and greedy answers
to many prompts at once, equal to answering them one at a time."""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

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


def use_adapter(model, peft_path: str):
    """`model` answering with the adapter at `peft_path`: a base model gets it as
    `PeftModel.from_pretrained` gives it; a `PeftModel` loads it beside its adapter, switches
    to it and drops the old one, so the base weights are loaded once for many adapters."""
    name = Path(peft_path).name or "adapter"
    if not isinstance(model, PeftModel):
        return PeftModel.from_pretrained(model, peft_path, adapter_name=name).eval()
    previous = model.active_adapter
    if name == previous:
        name += "-next"
    model.load_adapter(peft_path, adapter_name=name)
    model.set_adapter(name)
    model.delete_adapter(previous)
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
    "encoder_repetition_penalty": (None, 1.0),
    "exponential_decay_length_penalty": (None,),
    "stop_strings": (None,),
    "max_time": (None,),
    "watermarking_config": (None,),
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


# Rows of similar length share a prefill pass while its padding stays within this share of its tokens.
PREFILL_PADDING = 0.25


def prefill_groups(rows: Sequence[int], lengths: Sequence[int], most: int) -> list[list[int]]:
    """Consecutive rows (sorted by length) in groups of at most `most` that pad little."""
    groups: list[list[int]] = []
    for row in rows:
        group = groups[-1] if groups else None
        if group and len(group) < most:
            widest = max(lengths[row], *(lengths[other] for other in group))
            tokens = lengths[row] + sum(lengths[other] for other in group)
            if widest * (len(group) + 1) <= (1 + PREFILL_PADDING) * tokens:
                group.append(row)
                continue
        groups.append([row])
    return groups


@dataclass
class Decoding:
    """Rows decoding together: their cache, attention mask, next positions and last tokens."""

    rows: list[int]
    cache: DynamicCache
    attention: torch.Tensor  # (rows, width): 1 on real tokens, 0 on padding
    positions: torch.Tensor  # (rows, 1): the position of each row's next token
    tokens: torch.Tensor  # (rows,): each row's last chosen token, the next input

    def poolable(self) -> bool:
        """Whether other rows can join: every cache layer a plain growing one (a sliding window
        ties its columns to positions)."""
        return all(type(layer) is DynamicLayer for layer in self.cache.layers)

    def keep(self, indices: list[int]) -> Decoding:
        """Only these rows (and, where others may join, without the padding columns that none
        of them needs any longer)."""
        kept = torch.tensor(indices, device=self.attention.device)
        attention = self.attention[kept]
        rows = [self.rows[index] for index in indices]
        if not self.poolable():
            self.cache.batch_select_indices(kept)
            return Decoding(rows, self.cache, attention, self.positions[kept], self.tokens[kept])
        start = int(attention.any(0).int().argmax())  # leading columns that are padding in every row
        cache = DynamicCache(ddp_cache_data=[(keys[kept, :, start:], values[kept, :, start:])
                                             for keys, values, _ in self.cache])
        return Decoding(rows, cache, attention[:, start:], self.positions[kept], self.tokens[kept])

    def join(self, other: Decoding) -> Decoding:
        """These rows and the other's, left-padded to one width."""
        width = max(self.attention.shape[1], other.attention.shape[1])

        def padded(tensor: torch.Tensor, dim: int) -> torch.Tensor:
            missing = width - tensor.shape[dim]
            if not missing:
                return tensor
            shape = list(tensor.shape)
            shape[dim] = missing
            return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)

        cache = DynamicCache(ddp_cache_data=[
            (torch.cat([padded(keys, 2), padded(other_keys, 2)]),
             torch.cat([padded(values, 2), padded(other_values, 2)]))
            for (keys, values, _), (other_keys, other_values, _) in zip(self.cache, other.cache, strict=True)
        ])
        return Decoding(self.rows + other.rows, cache,
                        torch.cat([padded(self.attention, 1), padded(other.attention, 1)]),
                        torch.cat([self.positions, other.positions]), torch.cat([self.tokens, other.tokens]))


def prefill(
    model, prompts: Sequence[Sequence[int]], rows: list[int], pad: int, right_padded: Collection[int] = ()
) -> Decoding:
    """Run the rows' prompts as one left-padded batch, positions counted from each row's first
    real token (as `generate` counts them); each row's first greedy token.

    A row in `right_padded` is continued as `generate` continues a shorter prompt of a
    right-padded batch: after its prompt comes a pad token that no token attends to, at position
    0, whose logits give the first new token; the new tokens then take positions 1, 2, ... (one
    pad or several: the last one's logits are the same, since no pad is attended to).
    """
    device = model.device
    tokens = {row: [*prompts[row], pad] if row in right_padded else list(prompts[row]) for row in rows}
    width = max(len(row_tokens) for row_tokens in tokens.values())
    input_ids = torch.full((len(rows), width), pad, device=device)
    attention = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for index, row in enumerate(rows):
        input_ids[index, width - len(tokens[row]) :] = torch.tensor(tokens[row], device=device)
        attention[index, width - len(tokens[row]) : width - len(tokens[row]) + len(prompts[row])] = 1
    positions = (attention.cumsum(-1) - 1).masked_fill(attention == 0, 0)  # as `generate` counts them
    output = model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                   use_cache=True, logits_to_keep=1)
    return Decoding(list(rows), output.cache, attention, positions[:, -1:] + 1,
                    output.logits[:, -1].argmax(-1))


def step(model, decoding: Decoding) -> Decoding:
    """Feed every row its last token; the rows with their next greedy token."""
    attention = torch.cat([decoding.attention, decoding.attention.new_ones((len(decoding.rows), 1))], dim=-1)
    output = model(input_ids=decoding.tokens[:, None], attention_mask=attention,
                   position_ids=decoding.positions, cache=decoding.cache, use_cache=True)
    return Decoding(decoding.rows, output.cache, attention, decoding.positions + 1,
                    output.logits[:, -1].argmax(-1))


# Rows guess their next tokens from their own text and check the guesses in the pass that feeds
# their last token: at most this many tokens fed a row a pass.
LOOKAHEAD_WIDTH = 5
NGRAM_SIZES = (3, 2)  # the longest repeated tail first
# A pass checks guesses only where those expected to hold fill this share of the places it adds.
GUESS_SHARE = 0.25


class RowText:
    """A row's tokens so far (prompt and new ones), with where each of its n-grams last occurred
    with a token after it, so that a guess costs a lookup, not a search."""

    def __init__(self, tokens: Sequence[int]) -> None:
        self.tokens: list[int] = []
        self.followed: dict[int, dict[tuple[int, ...], int]] = {size: {} for size in NGRAM_SIZES}
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        for token in tokens:
            end = len(self.tokens)
            for size in NGRAM_SIZES:
                if end >= size:
                    self.followed[size][tuple(self.tokens[end - size : end])] = end - size
            self.tokens.append(token)

    def guess(self, most: int) -> list[int]:
        """What followed the latest earlier occurrence of the row's last tokens (at most `most`):
        the row's next tokens if it repeats itself (a loop, a copied passage), else nothing."""
        for size in NGRAM_SIZES:
            start = self.followed[size].get(tuple(self.tokens[-size:]))
            if start is not None:
                return self.tokens[start + size : start + size + most]
        return []


def guesses_per_row(trusted: Sequence[int]) -> int:
    """How many guesses a pass checks in each row, given how many each row's record says will
    hold: the most for which those fill `GUESS_SHARE` of the places the pass adds (0: none)."""
    for count in range(min(max(trusted), LOOKAHEAD_WIDTH - 1), 0, -1):
        if sum(min(hits, count) for hits in trusted) >= GUESS_SHARE * len(trusted) * count:
            return count
    return 0


def lookahead_step(
    model, decoding: Decoding, guesses: list[list[int]], pad: int
) -> tuple[Decoding, list[list[int]], list[int]]:
    """Feed every row its last token and its guessed next tokens (padded to one width) in one
    pass; keep in each row the guesses that greedy decoding confirms, and the greedy token after
    them.

    A row's places not kept (wrong guesses, padding) are masked from then on, as padding is, so
    each row goes on as after steps of one token, several in one pass over the weights. Returns
    the rows after the pass, each row's chosen tokens (the last one is the next input), and how
    many of its guesses each row's greedy tokens confirmed.
    """
    count = max(map(len, guesses))
    device = decoding.tokens.device
    inputs = torch.full((len(guesses), count + 1), pad, device=device)
    inputs[:, 0] = decoding.tokens
    fed = decoding.attention.new_zeros((len(guesses), count + 1))
    fed[:, 0] = 1
    for index, guess in enumerate(guesses):
        inputs[index, 1 : len(guess) + 1] = torch.tensor(guess, device=device)
        fed[index, : len(guess) + 1] = 1
    attention = torch.cat([decoding.attention, fed], dim=-1)
    output = model(input_ids=inputs, attention_mask=attention, cache=decoding.cache, use_cache=True,
                   position_ids=decoding.positions + torch.arange(count + 1, device=device))
    greedy = output.logits.argmax(-1)  # the token after each one fed
    confirmed = ((greedy[:, :count] == inputs[:, 1:]) & (fed[:, 1:] == 1)).int().cumprod(-1).sum(-1)
    attention[:, -(count + 1) :] = torch.arange(count + 1, device=device) <= confirmed[:, None]
    longest = int(confirmed.max())
    if longest < count:  # places no row keeps
        output.cache.crop(longest - count)
        attention = attention[:, : longest - count]
    after = Decoding(decoding.rows, output.cache, attention, decoding.positions + confirmed[:, None] + 1,
                     greedy[torch.arange(len(guesses), device=device), confirmed])
    hits = confirmed.tolist()
    return after, [tokens[: kept + 1] for tokens, kept in zip(greedy.tolist(), hits, strict=True)], hits


def greedy_until_settled(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: Sequence[int],
    batch_size: int,
    settled: Callable[[int, list[int]], bool],
    description: str | None = None,
    right_padded: Collection[int] = (),
) -> list[list[int]]:
    """Greedy new tokens of each token row, up to its limit, the end of sequence, or until
    `settled(row, new_tokens)` says nothing it could still write would change its score.
    The rows in `right_padded` are continued as a right-padded `generate` batch continues its
    shorter prompts (`prefill`).

    At most `batch_size` rows decode at once, one token each a step: one pass over the weights
    serves all of them. A row that is done leaves at once; once a quarter of the places are
    free, the next rows (shortest prompts first) take them: their prompts run in left-padded
    groups of similar length, with positions counted from each row's first real token, and
    they join the others, padded on the left. A row that repeats itself (a loop, a copied
    passage) is guessed ahead from its own text, and the guesses are checked in the pass that
    feeds its last token (`lookahead_step`), so it writes several tokens a pass. Whether a pass
    checks guesses, and how many, follows how well each row's guesses held so far: a guess of one
    token is checked against each plain step's token for free. Every row so gets what
    `generate` gives it alone.
    (Where the cache has sliding-window layers, groups decode side by side and new rows wait
    until all are done.)
    """
    new_tokens: list[list[int]] = [[] for _ in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    lengths = [len(prompt) for prompt in prompts]
    waiting = sorted(range(len(prompts)), key=lambda row: lengths[row])
    running: list[Decoding] = []
    refill_at = max(1, batch_size // 4)

    texts = [RowText(prompt) for prompt in prompts]
    trusted = [0] * len(prompts)  # guesses of each row expected to hold, from its record

    def still_writing(decoding: Decoding, chosen: list[list[int]] | None = None) -> Decoding | None:
        """The rows that go on after their newest tokens (`chosen`, else each row's last token;
        the end of sequence is not kept)."""
        going_on = []
        for index, (row, tokens) in enumerate(zip(
            decoding.rows, chosen or [[token] for token in decoding.tokens.tolist()], strict=True
        )):
            for token in tokens:
                if token == tokenizer.eos_token_id:
                    break
                new_tokens[row].append(token)
                texts[row].extend([token])
                if len(new_tokens[row]) >= max_new_tokens[row] or settled(row, new_tokens[row]):
                    break
            else:
                going_on.append(index)
        progress.update(len(decoding.rows) - len(going_on))
        if not going_on:
            return None
        return decoding if len(going_on) == len(decoding.rows) else decoding.keep(going_on)

    def advance(decoding: Decoding) -> Decoding | None:
        """One pass of every row: one token each, and the guesses checked where rows repeat themselves."""
        count = guesses_per_row([trusted[row] for row in decoding.rows]) if decoding.poolable() else 0
        guesses = [texts[row].guess(max(count, 1)) for row in decoding.rows]
        if count:
            after, chosen, confirmed = lookahead_step(model, decoding, guesses, pad)
            for row, guess, hits in zip(decoding.rows, guesses, confirmed, strict=True):
                trusted[row] = min(2 * hits, LOOKAHEAD_WIDTH - 1) if guess and hits == len(guess) else hits
            return still_writing(after, chosen)
        after = step(model, decoding)
        chosen = [[token] for token in after.tokens.tolist()]
        for row, guess, tokens in zip(decoding.rows, guesses, chosen, strict=True):
            trusted[row] = max(trusted[row], 1) if guess == tokens else 0
        return still_writing(after, chosen)

    with torch.inference_mode(), tqdm(total=len(prompts), desc=description, unit="row") as progress:
        while waiting or running:
            room = batch_size - sum(len(decoding.rows) for decoding in running)
            poolable = all(decoding.poolable() for decoding in running)
            if waiting and (not running or (poolable and room >= min(refill_at, len(waiting)))):
                joining, waiting = waiting[:room], waiting[room:]
                for group in prefill_groups(joining, lengths, room):
                    started = still_writing(prefill(model, prompts, group, pad, right_padded))
                    if started is None:
                        continue
                    if running and running[-1].poolable() and started.poolable():
                        running[-1] = running[-1].join(started)
                    else:
                        running.append(started)
                continue
            running = [going for decoding in running if (going := advance(decoding))]
    return new_tokens
