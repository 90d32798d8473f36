"""The Code evaluation (HumanEval, MBPP, MultiPL-E JS and C++) offline: tasks as the harness
builds them, known-right and known-wrong programs scored, files, messages, and a tiny model
end to end. Hostile programs are in test_code_eval_sandbox.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from testkit.code_fixtures import (
    CPP_ROWS,
    HUMANEVAL_ROWS,
    JS_ROWS,
    MBPP_ROWS,
    RIGHT,
    ROWS,
    WRONG,
    rendered_code_project,
    write_code_fixtures,
    write_generations,
)

TASK_NAMES = ["humaneval", "mbpp", "multiple-js", "multiple-cpp"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    with rendered_code_project(tmp_path_factory.mktemp("code-project")) as modules:
        yield modules


@pytest.fixture(scope="module")
def evaluation(rendered):
    """The rendered `eval` command."""
    return rendered[0]


@pytest.fixture(scope="module")
def code(rendered):
    return rendered[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_code_fixtures(tmp_path_factory.mktemp("code-data"))


def parse(evaluation, code, argv):
    return evaluation.build_parser(code).parse_args(argv)


def score(evaluation, code, generations, task, data_dir, tmp_path, *flags):
    path = write_generations(tmp_path / f"generations_{task}.json", generations)
    args = parse(evaluation, code, ["--score-generations", str(path), "--datasets", task,
                                    "--data-dir", str(data_dir), *flags])
    return code.score_generations(path, task, args)


def test_the_interface_the_eval_command_dispatches_to(evaluation, code):
    assert evaluation.challenge_evaluation() is code
    assert code.DATASETS == ("humaneval", "mbpp", "multiple-js", "multiple-cpp")
    assert tuple(code.tasks.TASKS) == code.DATASETS
    args = parse(evaluation, code, [])
    assert (args.datasets, args.temperature, args.top_p, args.n_samples, args.seed, args.greedy) == (
        TASK_NAMES, 0.2, 0.95, 1, 0, False)
    assert args.max_length_generation is None and args.memory_limit_mb == 4000
    assert [code.tasks.TASKS[name].max_length for name in TASK_NAMES] == [1024, 2048, 1024, 1024]


def test_prompts_tests_and_stop_words_are_the_harness_ones(code, data_dir):
    tasks = code.tasks
    humaneval = tasks.load_problems(tasks.TASKS["humaneval"], data_dir)
    assert humaneval.prompts == [row["prompt"].strip() for row in HUMANEVAL_ROWS]
    assert humaneval.tests[0] == "\n" + HUMANEVAL_ROWS[0]["test"] + "\ncheck(neighbour_sums)"
    assert humaneval.stop_words == [
        "\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>"]
    mbpp = tasks.load_problems(tasks.TASKS["mbpp"], data_dir)
    row = MBPP_ROWS[1]
    assert mbpp.prompts[1] == f'"""\n{row["text"]}\n{row["test_list"][0]}\n"""\n'
    assert mbpp.tests[1] == "\n".join(row["test_list"])
    assert mbpp.stop_words == ["\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```"]
    for name, rows in (("multiple-js", JS_ROWS), ("multiple-cpp", CPP_ROWS)):
        problems = tasks.load_problems(tasks.TASKS[name], data_dir)
        assert problems.prompts == [row["prompt"].strip() for row in rows]
        assert problems.tests == [row["tests"] for row in rows]
        assert problems.stop_words == [*rows[0]["stop_tokens"], "<file_sep>"]
    assert tasks.program("def f(): pass", "assert f() is None") == "def f(): pass\nassert f() is None"


def test_a_completion_is_cut_at_its_first_stop_word_not_the_prompts(code):
    stop_words = ["\ndef", "\n#", "</s>"]
    prompt = "def f():\n    # a comment\n    \"\"\"Doc.\"\"\""
    completion = "\n    return 1\n# trailing\ndef g():\n    pass</s>"
    assert code.tasks.postprocess(prompt, completion, stop_words) == prompt + "\n    return 1"
    assert code.tasks.postprocess(prompt, "\n    return 2", stop_words) == prompt + "\n    return 2"


def test_pass_at_k_is_the_unbiased_estimator_averaged_over_problems(code):
    pass_at_k = code.scoring.pass_at_k
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)  # 1 - C(7,5) / C(10,5)
    assert pass_at_k(5, 4, 2) == 1.0 and pass_at_k(1, 0, 1) == 0.0
    assert code.scoring.pass_at_ks([[True, False], [False, False]]) == {"pass@1": 0.25}
    assert code.scoring.pass_at_ks([[True] * 10, [False] * 10]) == {"pass@1": 0.5, "pass@10": 0.5}


@pytest.mark.parametrize("task", TASK_NAMES)
def test_known_right_and_wrong_programs_score_as_the_harness(evaluation, code, data_dir, tmp_path, task):
    assert score(evaluation, code, RIGHT[task], task, data_dir, tmp_path) == "pass@1: 1.0"
    assert score(evaluation, code, WRONG[task], task, data_dir, tmp_path) == "pass@1: 0.0"
    # Two programs for the first problem (one right), one wrong one for the second: all of them
    # with --n-samples 2; as the harness, only each problem's first with the default of 1.
    mixed = [RIGHT[task][0] + WRONG[task][0], WRONG[task][1]]
    assert score(evaluation, code, mixed, task, data_dir, tmp_path, "--n-samples", "2") == "pass@1: 0.25"
    assert score(evaluation, code, mixed, task, data_dir, tmp_path) == "pass@1: 0.5"


def test_the_eval_command_scores_a_harness_generations_file(evaluation, data_dir, tmp_path, capsys):
    generations = [RIGHT["humaneval"][0], WRONG["humaneval"][1]]
    path = write_generations(tmp_path / "generations_humaneval.json", generations)
    evaluation.main(
        ["--score-generations", str(path), "--datasets", "humaneval", "--data-dir", str(data_dir)])
    assert capsys.readouterr().out.strip() == "pass@1: 0.5"


def test_a_file_with_fewer_or_more_problems_scores_the_first_ones_as_the_harness(
        evaluation, code, data_dir, tmp_path, capsys):
    assert score(evaluation, code, RIGHT["mbpp"][:1], "mbpp", data_dir, tmp_path) == "pass@1: 1.0"
    assert "the file has 1 problems and the data 2: scoring the first 1" in capsys.readouterr().err
    longer = RIGHT["mbpp"] + WRONG["mbpp"]
    assert score(evaluation, code, longer, "mbpp", data_dir, tmp_path) == "pass@1: 1.0"
    assert "the file has 4 problems and the data 2: scoring the first 2" in capsys.readouterr().err


def test_unsafe_mode_runs_the_programs_without_the_sandbox(evaluation, code, data_dir, tmp_path, capsys):
    unsafe = "--unsafe-no-sandbox"
    result = score(evaluation, code, RIGHT["humaneval"], "humaneval", data_dir, tmp_path, unsafe)
    assert result == "pass@1: 1.0"
    assert "WITHOUT a sandbox" in capsys.readouterr().err


@pytest.fixture(scope="module")
def sandbox(code):
    with code.execution.open_sandbox(["python", "javascript"], 4000, 2, False) as box:
        yield box


def judge(code, sandbox, language, programs):
    """The verdict of each program, judged as the evaluation judges them."""
    verdicts = code.execution.execute([[program] for program in programs], language, sandbox, 2, "test")
    return [problem[0] for problem in verdicts]


# Programs that pass in the harness, whose worker had imported numpy, pandas and multiprocessing
# and used tempfile before its guard; its guard still holds for them.
PREPARED_AS_THE_HARNESS = [
    "import numpy as np\nassert int(np.array([1, 2, 4]).sum()) == 7\n",
    "import pandas as pd\nassert int(pd.DataFrame({'a': [1, 2]})['a'].sum()) == 3\n",
    "from pandas import Series\nimport numpy\nassert Series(numpy.arange(3)).tolist() == [0, 1, 2]\n",
    "import multiprocessing\nassert multiprocessing.cpu_count() >= 1\n",
    "import tempfile, os\nfolder = tempfile.mkdtemp()\nwith open(os.path.join(folder, 'x'), 'w') as f:\n"
    "    f.write('y')\nassert open(os.path.join(tempfile.gettempdir(), folder, 'x')).read() == 'y'\n",
    "import numpy, os, shutil\nassert os.putenv is None and os.remove is None and shutil.rmtree is None\n",
]


def test_programs_using_what_the_harness_had_prepared_pass_as_there(code, sandbox):
    verdicts = judge(code, sandbox, "python", PREPARED_AS_THE_HARNESS)
    assert [verdict.status for verdict in verdicts] == ["passed"] * len(PREPARED_AS_THE_HARNESS)


# It patches os.write (and posix.write) so that the runner's failure line would read as a pass.
PATCHED_WRITE = """
import os, posix
real_write = os.write
def forged(fd, data):
    return real_write(fd, data.split(b" ")[0] + b" passed\\n")
os.write = posix.write = forged
assert False, "the tests fail"
"""

# It looks for the verdict's token in every string it can reach (frames and their locals and
# globals, the garbage collector's objects), writes `<candidate> passed` to every file descriptor
# and to the judge's stdout under /proc, reads what it can of the judge under /proc, then fails
# with a report: how many strings it saw, whether the runner's own frames were among them,
# whether the token (known by its hash) was, and which of the judge's files it could read.
SEARCH_FOR_THE_TOKEN = """
import gc, hashlib, json, os, re, sys
seen, runner_frames = set(), False
def take(value):
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        seen.add(value)
        seen.update(re.findall("[0-9a-f]{32}", value))
frame = sys._getframe()
while frame is not None:
    runner_frames |= "report_write" in frame.f_locals
    for value in [*frame.f_locals.values(), *frame.f_globals.values(), *frame.f_code.co_consts]:
        take(value)
    frame = frame.f_back
for holder in gc.get_objects():
    for value in gc.get_referents(holder):
        take(value)
candidates = {text for text in seen if re.fullmatch("[0-9a-f]{32}", text)}
judge = os.getppid()
for candidate in candidates:
    line = f"{candidate} passed\\n".encode()
    for fd in range(3, 64):
        try:
            os.write(fd, line)
        except OSError:
            pass
    for path in (f"/proc/{judge}/fd/1", "/proc/1/fd/1"):
        try:
            with open(path, "wb") as channel:
                channel.write(line)
        except OSError:
            pass
readable = []
for path in (f"/proc/{judge}/fd/0", f"/proc/{judge}/mem", f"/proc/{judge}/environ"):
    try:
        with open(path, "rb") as file:
            file.read(1)
        readable.append(path)
    except OSError:
        pass
found = any(hashlib.sha256(text.encode()).hexdigest() == TOKEN_HASH for text in seen)
raise Exception(json.dumps({"strings": len(seen), "runner_frames": runner_frames, "token": found,
                            "readable": readable}))
"""


def test_a_program_cannot_forge_a_pass_by_patching_os_write_or_finding_the_token(code, sandbox, monkeypatch):
    import hashlib
    import types

    token = "0123456789abcdef" * 2
    monkeypatch.setattr(code.execution, "secrets", types.SimpleNamespace(token_hex=lambda size: token))
    search = f"TOKEN_HASH = {hashlib.sha256(token.encode()).hexdigest()!r}\n" + SEARCH_FOR_THE_TOKEN
    patched, searched = judge(code, sandbox, "python", [PATCHED_WRITE, search])
    assert (patched.passed, patched.status) == (False, "failed: the tests fail")
    assert not searched.passed and searched.status.startswith("failed: {"), searched.status
    report = json.loads(searched.status.removeprefix("failed: "))
    assert report["runner_frames"] and report["strings"] > 1000  # it did search the runner's frames
    assert report["token"] is False and report["readable"] == []


def test_programs_that_fool_the_harness_fool_this_evaluation_too(code, sandbox):
    always_equal = ("class Anything:\n    def __eq__(self, other):\n        return True\n"
                    "def add(a, b):\n    return Anything()\nassert add(1, 2) == 3\nassert add(2, 2) == 5\n")
    [python] = judge(code, sandbox, "python", [always_equal])
    [javascript] = judge(code, sandbox, "javascript", [
        "const assert = require('node:assert');\nprocess.exit(0);\nassert.deepEqual(1, 2);\n"])
    assert python.passed and javascript.passed


def test_multiple_e_is_read_at_the_harness_forks_revision(code, monkeypatch):
    """The leaderboard's harness (the fork Flower's evaluation installs) pins nuprl/MultiPL-E at
    ff5c146; upstream's HEAD pins another revision."""
    import datasets

    calls = []

    def load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        row = {"name": "HumanEval_0", "prompt": "p", "tests": "t", "stop_tokens": ["\n}"]}
        return datasets.Dataset.from_list([row])

    monkeypatch.setattr(code.tasks.load_split.__globals__["datasets"], "load_dataset", load_dataset)
    for name in ("multiple-js", "multiple-cpp"):
        code.tasks.load_problems(code.tasks.TASKS[name], None)
    revision = "ff5c146da05f10bc69b9ce393b77f381b3825d1b"
    assert calls == [
        (("nuprl/MultiPL-E", "humaneval-js"), {"split": "test", "revision": revision}),
        (("nuprl/MultiPL-E", "humaneval-cpp"), {"split": "test", "revision": revision}),
    ]


def test_a_pinned_revision_that_is_a_loading_script_is_read_from_the_parquet_export_with_a_warning(
        code, monkeypatch, capsys):
    import datasets

    calls = []

    def load_dataset(*args, **kwargs):
        calls.append(kwargs["revision"])
        if kwargs["revision"] != "refs/convert/parquet":
            raise RuntimeError("Dataset scripts are no longer supported, but found MultiPL-E.py")
        return datasets.Dataset.from_list([{"prompt": "p", "tests": "t", "stop_tokens": ["\n}"]}])

    monkeypatch.setattr(code.tasks.load_split.__globals__["datasets"], "load_dataset", load_dataset)
    assert code.tasks.load_problems(code.tasks.TASKS["multiple-cpp"], None).tests == ["t"]
    assert calls == [code.tasks.MULTIPLE_REVISION, "refs/convert/parquet"]
    warning = capsys.readouterr().err
    assert f"nuprl/MultiPL-E at revision {code.tasks.MULTIPLE_REVISION} is a loading script" in warning


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read it as JSON"),
        ('{"a": 1}', "must be a JSON list with one list of program strings per problem"),
        ('["def f(): pass"]', "problem 0 is"),
        ("[[]]", "problem 0 is"),
    ],
)
def test_unusable_generations_files_stop_with_one_line(evaluation, code, data_dir, tmp_path, content,
                                                       message):
    path = tmp_path / "generations.json"
    path.write_text(content)
    args = parse(evaluation, code, ["--datasets", "humaneval", "--data-dir", str(data_dir)])
    with pytest.raises(SystemExit) as stop:
        code.score_generations(path, "humaneval", args)
    assert message in str(stop.value) and str(path) in str(stop.value) and "\n" not in str(stop.value)


def test_data_without_a_needed_column_names_it(evaluation, code, tmp_path):
    folder = tmp_path / "humaneval"
    folder.mkdir()
    row = {key: value for key, value in HUMANEVAL_ROWS[0].items() if key != "entry_point"}
    (folder / "test.jsonl").write_text(json.dumps(row) + "\n")
    path = write_generations(tmp_path / "generations.json", RIGHT["humaneval"][:1])
    args = parse(evaluation, code, ["--datasets", "humaneval", "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="humaneval: the data has no column entry_point"):
        code.score_generations(path, "humaneval", args)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--temperature", "0"], "--temperature: 0 is out of range: use a value above 0"),
        (["--top-p", "1.5"], "--top-p: 1.5 is out of range: use a value above 0 and at most 1"),
        (["--n-samples", "0"], "--n-samples: 0 is out of range: use a value at least 1"),
        (["--memory-limit-mb", "100"], "--memory-limit-mb: 100 is out of range: use a value at least 256"),
        (["--workers", "two"], "--workers: 'two' is not an integer"),
        (["--datasets", "humaneval,apps"], "use a comma list of humaneval, mbpp, multiple-js, multiple-cpp"),
    ],
)
def test_bad_flags_stop_with_a_message(evaluation, code, capsys, argv, message):
    with pytest.raises(SystemExit):
        parse(evaluation, code, argv)
    assert message in capsys.readouterr().err


def test_generation_stops_a_row_at_a_stop_word_or_at_its_budget(code, tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model("llama"))
    prompt = tokenizer("ab")["input_ids"]
    stopping = tokenizer("x = 1\ndef", add_special_tokens=False)["input_ids"]
    going_on = tokenizer("y", add_special_tokens=False)["input_ids"] * len(stopping)
    rows = torch.tensor([prompt + stopping, prompt + going_on])
    def done(stop_words, budgets):
        criterion = code.generation.StopWordsOrBudget(tokenizer, len(prompt), stop_words, budgets)
        return criterion(rows, None).tolist()

    assert done(["\ndef"], [100, 100]) == [True, False]
    assert done(["\ndef"], [100, len(stopping)]) == [True, True]
    assert done(["\nclass"], [100, 100]) == [False, False]


def test_greedy_batches_give_each_prompt_what_generate_gives_it_alone(code, tiny_model, data_dir):
    from transformers import StoppingCriteriaList

    model, tokenizer = code.generation.load_generation_model(str(tiny_model("llama")), None)
    problems = code.tasks.load_problems(code.tasks.TASKS["humaneval"], data_dir)
    prompts = problems.prompts + [problems.prompts[0][:40], problems.prompts[1][:60]]  # left padding
    lengths = [len(tokenizer(prompt)["input_ids"]) for prompt in prompts]
    max_length = max(lengths) + 12  # rows stop at their own budgets: later rows take their places
    alone = []
    for prompt, length in zip(prompts, lengths, strict=True):
        criterion = code.generation.StopWordsOrBudget(tokenizer, length, ["</s>"], [max_length - length])
        output = model.generate(**tokenizer(prompt, return_tensors="pt"), do_sample=False,
                                max_length=max_length, stopping_criteria=StoppingCriteriaList([criterion]))
        alone.append([code.generation.decode_completion(tokenizer, output[0].tolist(), prompt)] * 2)
    for batch_size in (2, len(prompts)):
        assert code.generation.generate_completions(
            model, tokenizer, prompts, ["</s>"], max_length, 2, batch_size, {"do_sample": False}, "test"
        ) == alone
    assert all(completion[0] for completion in alone)  # each got new tokens


def test_a_prompt_at_the_length_limit_gets_an_empty_completion_as_in_the_harness(code, tiny_model, data_dir):
    model, tokenizer = code.generation.load_generation_model(str(tiny_model("llama")), None)
    prompt = code.tasks.load_problems(code.tasks.TASKS["humaneval"], data_dir).prompts[0]
    length = len(tokenizer(prompt)["input_ids"])
    completions = code.generation.generate_completions(
        model, tokenizer, [prompt], ["</s>"], length, 2, 4, {"do_sample": False}, "test")
    assert completions == [["", ""]]


@pytest.fixture(scope="module")
def full_run(evaluation, code, tiny_model, data_dir, tmp_path_factory):
    """One run over the four tasks: a tiny model with a LoRA adapter, two samples per problem."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    adapter = tmp_path_factory.mktemp("code-adapter")
    base = AutoModelForCausalLM.from_pretrained(tiny_model("llama"))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    get_peft_model(base, config).save_pretrained(adapter)
    output_dir = tmp_path_factory.mktemp("code-results")
    evaluation.main([
        "--base-model-name-path", str(tiny_model("llama")), "--peft-path", str(adapter),
        "--data-dir", str(data_dir), "--output-dir", str(output_dir), "--run-name", "tiny",
        "--batch-size", "3", "--n-samples", "2", "--max-length-generation", "256",
    ])
    return output_dir


@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_end_to_end_writes_generations_and_results_for_every_task(code, full_run, data_dir, task):
    generations = json.loads((full_run / f"generations_{task}_tiny.json").read_text())
    problems = code.tasks.load_problems(code.tasks.TASKS[task], data_dir)
    assert len(generations) == len(ROWS[task]) and all(len(samples) == 2 for samples in generations)
    for prompt, samples in zip(problems.prompts, generations, strict=True):
        for generation in samples:
            assert generation.startswith(prompt)
            assert not any(word in generation[len(prompt):] for word in problems.stop_words)
    results = json.loads((full_run / f"evaluation_results_{task}_tiny.json").read_text())
    assert set(results[task]) == {"pass@1"} and 0 <= results[task]["pass@1"] <= 1
    config = results["config"]
    assert (config["do_sample"], config["temperature"], config["top_p"], config["top_k"], config["seed"]) == (
        True, 0.2, 0.95, 0, 0)
    assert config["max_length_generation"] == 256 and config["sandbox"] == "bubblewrap"
    assert "cgroup" in config["sandbox_holds"] and "seccomp" in config["sandbox_holds"]
    assert "</s>" in config["stop_words"]
    assert [len(statuses) for statuses in results["verdicts"]] == [2, 2]


@pytest.mark.slow
def test_saved_generations_rescore_to_the_same_pass_at_1(evaluation, code, full_run, data_dir):
    for task in TASK_NAMES:
        path = full_run / f"generations_{task}_tiny.json"
        args = parse(evaluation, code, ["--datasets", task, "--data-dir", str(data_dir), "--n-samples", "2"])
        saved = json.loads((full_run / f"evaluation_results_{task}_tiny.json").read_text())[task]["pass@1"]
        assert code.score_generations(path, task, args) == f"pass@1: {saved}"


@pytest.mark.slow
def test_score_generations_runs_as_a_module_of_the_project(evaluation, data_dir, tmp_path):
    path = write_generations(tmp_path / "generations.json", RIGHT["multiple-js"])
    project = evaluation.__file__.rsplit("/", 2)[0]
    process = subprocess.run(
        [sys.executable, "-m", f"{evaluation.__package__}.eval", "--score-generations", str(path),
         "--datasets", "multiple-js", "--data-dir", str(data_dir)],
        cwd=project, capture_output=True, text=True, check=True,
    )
    assert process.stdout.strip().splitlines()[-1] == "pass@1: 1.0"
