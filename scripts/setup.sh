#!/usr/bin/env bash
# Create .venv (once) and install the pinned development stack into it.
#   bash scripts/setup.sh                     what the demo needs: the Python stack
#   bash scripts/setup.sh --code-evaluation   and the system tools of the Code evaluation's tests
#                                             (bubblewrap for its sandbox, node, g++, util-linux)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "setup: $*"; }
if [[ ${1:-} == --code-evaluation ]]; then
  missing=()
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  command -v node >/dev/null || missing+=(nodejs)
  command -v g++ >/dev/null || missing+=(g++)
  command -v setpriv >/dev/null || missing+=(util-linux)  # setpriv, unshare: other users, hostile programs
  if (( ${#missing[@]} )); then
    if ! command -v apt-get >/dev/null; then
      echo "setup: install ${missing[*]} with your package manager" >&2
      exit 1
    fi
    sudo=$([[ $(id -u) == 0 ]] || echo sudo)
    # wait for another apt or dpkg (an unattended upgrade, say) instead of failing on its lock
    apt=(-o DPkg::Lock::Timeout=600)
    say "installing ${missing[*]} (apt-get; waits up to 10 minutes for another apt to finish) ..."
    $sudo apt-get "${apt[@]}" update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get "${apt[@]}" install -y -qq "${missing[@]}"
  fi
  # The sandbox caps each program in a cgroup of its own: root makes them; another user needs a
  # delegated one, and (Ubuntu 24.04) user namespaces allowed for bubblewrap.
  if [[ $(id -u) != 0 ]]; then
    say "the Code sandbox tests need root or a delegated cgroup: run them with sudo, or in" \
        "systemd-run --user --scope -p Delegate=yes"
  fi
  if [[ $(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null) == 1 ]]; then
    say "bubblewrap for users other than root needs" \
        "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
  fi
fi
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv ..."
  python3 -m venv .venv
fi
stamp=.venv/.requirements-dev.sha
wanted=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
  # pip's own lines, one per package it collects, show the progress of a first install (minutes)
  progress() { grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed)' || true; }
  .venv/bin/python -m pip install --quiet --upgrade pip
  say "installing torch 2.13.0 (the CPU wheel on disk, not a multi-GB CUDA build) ..."
  .venv/bin/python -m pip install --progress-bar off "torch==2.13.0" | progress
  say "installing the pinned stack of requirements-dev.txt (a few minutes on a fresh machine) ..."
  .venv/bin/python -m pip install --progress-bar off -r requirements-dev.txt | progress
  echo "$wanted" > "$stamp"
  say "done"
fi
