#!/usr/bin/env bash
# Creates <repo>/.venv, the test venv: the Python-client conformance tests in sim/tests/python,
# helm-sdkpy, and sushy-emulator for the Redfish client's tests. Packages are pinned in
# .ci/requirements.txt.
#
# Idempotent: a stamp file in the venv holds a hash of everything that decides
# its contents (requirements, the helm-sdkpy pin, the interpreter), so a re-run
# with nothing changed returns at once. When any of them changes the venv is
# rebuilt from scratch, so no package left over from an older pin survives.
#
# Usage: .ci/python-venv.sh            (PYTHON=/path/to/python3 to pick another interpreter)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
requirements="$repo/.ci/requirements.txt"
python="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"

# helm-sdkpy declares Requires-Python >=3.12 but works on 3.11, so it is
# installed on its own with --ignore-requires-python and --no-deps; its own
# dependencies (cffi, pycparser) are pinned in requirements.txt.
helm_sdkpy="helm-sdkpy==0.1.32"

pip_quiet=(--quiet --no-input --disable-pip-version-check)

want="$(
    {
        cat "$requirements"
        echo "$helm_sdkpy"
        "$python" -c 'import sys; print(sys.executable, sys.version)'
    } | sha256sum | cut -d' ' -f1
)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$venv/bin/python" -c '' 2>/dev/null; then
    exit 0
fi

# `python3 -m venv` needs ensurepip, which Debian's own python3 leaves out
# unless python3-venv is installed (a pyenv or upstream build has it).
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
        echo "python-venv.sh: installing python3-venv" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "python-venv.sh: $python cannot create a venv (no ensurepip); install python3-venv" >&2
        exit 1
    fi
fi

echo "python-venv.sh: building $venv" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install "${pip_quiet[@]}" -r "$requirements"
"$venv/bin/python" -m pip install "${pip_quiet[@]}" --no-deps --ignore-requires-python "$helm_sdkpy"
# Fail here, not in the middle of a test run, if something did not install.
"$venv/bin/python" -c 'import kubernetes, pytest, helm_sdkpy, sushy_tools'

# Written last: an interrupted run leaves no stamp and is redone next time.
echo "$want" >"$stamp"
