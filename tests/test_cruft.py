"""Rendered projects keep their provenance: `cruft create`, then `cruft update` brings template changes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from testkit.flower import BIN_DIR
from testkit.render import TEMPLATE_DIR

README_TEMPLATE = "{{cookiecutter.project_slug}}/README.md"


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` under a fixed identity; return its output."""
    identity = ["-c", "user.name=Template Test", "-c", "user.email=template-test@example.com"]
    return subprocess.run(
        ["git", *identity, *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the cruft command line."""
    return subprocess.run([str(BIN_DIR / "cruft"), *args], cwd=cwd, capture_output=True, text=True)


def copy_template_repo(destination: Path) -> Path:
    """A git repository with one commit holding the template's tracked files as they are now."""
    for name in git(TEMPLATE_DIR, "ls-files", "-z").split("\0"):
        if name:
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_DIR / name, destination / name)
    git(destination, "init", "--quiet")
    git(destination, "add", "--all")
    git(destination, "commit", "--quiet", "--message", "template")
    return destination


def test_cruft_update_brings_a_template_change_into_a_rendered_project(tmp_path):
    template = copy_template_repo(tmp_path / "template")
    created = cruft(
        "create", "--no-input", "--output-dir", str(tmp_path / "projects"),
        "--extra-context", json.dumps({"base_model": "Qwen/Qwen2.5-7B-Instruct"}), str(template),
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    (project,) = (tmp_path / "projects").iterdir()
    provenance = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert provenance["template"] == str(template)
    assert provenance["commit"] == git(template, "rev-parse", "HEAD").strip()
    assert provenance["context"]["cookiecutter"]["base_model"] == "Qwen/Qwen2.5-7B-Instruct"
    assert cruft("check", cwd=project).returncode == 0
    git(project, "init", "--quiet")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "rendered")

    with (template / README_TEMPLATE).open("a", encoding="utf-8") as readme:
        readme.write("\nUpdated by the template for {{ cookiecutter.project_slug }}.\n")
    git(template, "commit", "--quiet", "--all", "--message", "template change")
    assert cruft("check", cwd=project).returncode != 0, "cruft check missed the template change"

    updated = cruft("update", "--skip-apply-ask", cwd=project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "Updated by the template for flowertune-qwen2-5-7b-instruct." in (project / "README.md").read_text(
        encoding="utf-8"
    )
    assert not list(project.rglob("*.rej")), "the update did not apply cleanly"
    checked = cruft("check", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
