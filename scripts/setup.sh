#!/usr/bin/env bash
# Create .venv (once) and install the pinned development stack into it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Code evaluation's tests run programs in a bubblewrap sandbox, under node and g++; setpriv
# and unshare (util-linux) play the other users and the hostile programs.
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v node >/dev/null || missing+=(nodejs)
command -v g++ >/dev/null || missing+=(g++)
command -v setpriv >/dev/null || missing+=(util-linux)
if (( ${#missing[@]} )); then
  if ! command -v apt-get >/dev/null; then
    echo "setup: install ${missing[*]} with your package manager" >&2
    exit 1
  fi
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# The sandbox caps each program in a cgroup of its own: as root it makes them; another user needs
# a delegated one, and (Ubuntu 24.04) user namespaces allowed for bubblewrap.
if [[ $(id -u) != 0 ]]; then
  echo "setup: the Code sandbox tests need root, or a delegated cgroup: run them with sudo, or in" \
       "systemd-run --user --scope -p Delegate=yes" >&2
fi
if [[ $(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null) == 1 ]]; then
  echo "setup: bubblewrap for users other than root needs" \
       "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" >&2
fi
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
stamp=.venv/.requirements-dev.sha
wanted=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first and alone: the CPU wheel on disk, not a multi-GB CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  echo "$wanted" > "$stamp"
fi
