#!/usr/bin/env bash
# Install what the end-to-end tests (tests/e2e) need, on Debian bookworm, as root.
# Idempotent: each package is installed only when it is missing, so a second run is instant.
#
#   apt:  docker.io skopeo umoci podman containerd docker-registry busybox-static wrk
#         chromium chromium-driver
#   pip:  oras docker helm-python-sdk pytest requests selenium
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-test-deps: must run as root (or with sudo)" >&2
        exit 1
    fi
fi

# --- apt ------------------------------------------------------------------------------
# package -> a file/command that proves it is installed
apt_missing=()
need_cmd() { # need_cmd <command> <package>
    command -v "$1" >/dev/null 2>&1 || apt_missing+=("$2")
}
need_cmd dockerd docker.io
need_cmd skopeo skopeo
need_cmd umoci umoci
need_cmd podman podman
need_cmd containerd containerd
need_cmd ctr containerd
need_cmd docker-registry docker-registry
need_cmd wrk wrk
# a real browser for the web page tests (headless)
need_cmd chromium chromium
need_cmd chromedriver chromium-driver
# busybox-static: the test images need a *static* /bin/busybox (the dynamic "busybox"
# package also provides /bin/busybox, so check the package itself).
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
    apt_missing+=(busybox-static)
fi

if [ "${#apt_missing[@]}" -gt 0 ]; then
    # de-duplicate
    mapfile -t apt_missing < <(printf '%s\n' "${apt_missing[@]}" | sort -u)
    echo "install-test-deps: apt-get install ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${apt_missing[@]}" >/dev/null
else
    echo "install-test-deps: apt packages present"
fi

# --- pip ------------------------------------------------------------------------------
PY="${PYTHON:-python3}"
pip_missing=()
need_mod() { # need_mod <import name> <pip requirement>
    "$PY" -c "import $1" >/dev/null 2>&1 || pip_missing+=("$2")
}
need_mod oras "oras>=0.2.43,<0.3"
need_mod docker "docker>=7"
need_mod helm_python "helm-python-sdk>=0.2.2,<0.3"
need_mod pytest "pytest"
need_mod requests "requests"
need_mod selenium "selenium>=4.10"
need_mod yaml "PyYAML"
need_mod jsonschema "jsonschema>=4.18"
need_mod openapi_spec_validator "openapi-spec-validator>=0.7"

if [ "${#pip_missing[@]}" -gt 0 ]; then
    echo "install-test-deps: pip install ${pip_missing[*]}"
    pip_args=(-m pip install -q --disable-pip-version-check --root-user-action=ignore)
    if ! "$PY" "${pip_args[@]}" "${pip_missing[@]}"; then
        # Debian's system python refuses without this flag (PEP 668)
        "$PY" "${pip_args[@]}" --break-system-packages "${pip_missing[@]}"
    fi
else
    echo "install-test-deps: python packages present"
fi
