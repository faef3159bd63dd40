#!/usr/bin/env bash
# Prepares a machine and the project's virtual environment for govsign.
#
#   scripts/bootstrap.sh            run it (scripts/serve does)
#   scripts/bootstrap.sh --tests    also what only the tests use (scripts/test does): Chromium and
#                                   its WebDriver for the browser test of the verification page,
#                                   npm and axe-core (in .venv/axe) for its accessibility check
#   source scripts/bootstrap.sh     same, then exports GOVSIGN_ROOT and puts .venv/bin first on PATH
#
# On Debian/Ubuntu as root it installs the system packages govsign and its tests use (SoftHSM2,
# OpenSC's pkcs11-tool, poppler's pdfsig, GnuTLS's certtool, NSS's certutil, qpdf, openssl, the DejaVu
# font of the verification reports, Liberation Serif 2 for Vietnamese signature stamps, HAProxy for
# the two-node test and scripts/cluster) and,
# when no usable Python is present, python3 with venv support and a compiler. It then creates
# .venv in the project root and installs the project with its [dev] extras into it, again only
# when the venv is new or pyproject.toml changed since the last install (the sha256 of
# pyproject.toml is kept in .venv/.govsign-installed). When nothing is missing it only checks, in
# well under a second, and prints nothing.
#
# Environment: GOVSIGN_PYTHON (default python3) is the interpreter that creates the venv.

_govsign_bootstrap() (
  set -euo pipefail

  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
  venv="$root/.venv"
  stamp="$venv/.govsign-installed"
  python=${GOVSIGN_PYTHON:-python3}

  for_tests=false
  [[ ${1:-} == --tests ]] && for_tests=true
  say() { printf 'bootstrap: %s\n' "$*" >&2; }
  die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

  # -- system packages -----------------------------------------------------------------------
  installed() { [[ "$(dpkg -s "$1" 2>/dev/null)" == *"Status: install ok installed"* ]]; }

  # Python is only needed to (re)create the venv; a working venv skips this check entirely.
  # `-m venv --help` alone is not enough on Debian: the venv module is in the standard library
  # but ensurepip (needed to create a venv with pip) comes with python3-venv.
  need_python=false
  if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    if ! command -v "$python" >/dev/null 2>&1 \
      || ! "$python" -m venv --help >/dev/null 2>&1 \
      || ! "$python" -c 'import ensurepip' >/dev/null 2>&1; then
      need_python=true
    fi
  fi

  packages=(softhsm2 opensc poppler-utils gnutls-bin libnss3-tools qpdf openssl ca-certificates fonts-dejavu-core fonts-liberation2 haproxy)
  if [[ $for_tests == true ]]; then
    packages+=(chromium chromium-driver)
    command -v npm >/dev/null 2>&1 || packages+=(npm)
  fi
  if [[ $need_python == true ]]; then
    packages+=(python3 python3-venv python3-dev gcc)
  fi

  if command -v dpkg >/dev/null 2>&1; then
    missing=()
    for p in "${packages[@]}"; do
      installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]})); then
      if [[ $(id -u) -ne 0 ]]; then
        die "These packages are missing and only root can install them: ${missing[*]} (run this script as root, or apt-get install them first)."
      fi
      say "installing ${missing[*]}"
      log=$(mktemp)
      if ! { apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } \
        >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        die "apt-get could not install ${missing[*]}."
      fi
      rm -f "$log"
      if [[ $need_python == true ]]; then python=python3; fi
    fi
  else
    # Not a Debian-family system: say what is expected and carry on.
    for tool in softhsm2-util pkcs11-tool pdfsig certtool certutil qpdf openssl; do
      command -v "$tool" >/dev/null 2>&1 || say "warning: $tool is not installed; some features or tests need it."
    done
    if [[ $need_python == true ]]; then
      die "No Python 3.11+ with venv and ensurepip was found as $python; install one or set GOVSIGN_PYTHON."
    fi
  fi

  # -- virtual environment -------------------------------------------------------------------
  new_venv=false
  if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    if [[ -e $venv ]]; then
      say "recreating $venv (its Python no longer runs)"
      "$python" -m venv --clear "$venv" || die "Could not recreate the virtual environment at $venv."
    else
      say "creating $venv"
      "$python" -m venv "$venv" || die "Could not create the virtual environment at $venv."
    fi
    new_venv=true
  fi
  "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "The virtual environment at $venv runs Python older than 3.11; remove it and set GOVSIGN_PYTHON to a Python 3.11+."

  want=$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)
  have=$(cat "$stamp" 2>/dev/null || true)
  if [[ $new_venv == true || $want != "$have" ]]; then
    say "installing govsign with its [dev] extras into .venv"
    rm -f "$stamp"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    (cd "$root" && "$venv/bin/python" -m pip install -q -e '.[dev]') \
      || die "pip could not install govsign into $venv (see the errors above)."
    printf '%s\n' "$want" >"$stamp"
  fi

  # -- axe-core, for the accessibility check of the verification page (tests only) ------------
  if [[ $for_tests == true && ! -f $venv/axe/node_modules/axe-core/axe.min.js ]]; then
    say "installing axe-core into $venv/axe"
    mkdir -p "$venv/axe"
    (cd "$venv/axe" && npm install --silent --no-audit --no-fund --prefix "$venv/axe" axe-core@4 >/dev/null) \
      || say "warning: npm could not install axe-core; the accessibility check will fail."
  fi
)

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  # Run as a program.
  set -euo pipefail
  _govsign_bootstrap "$@"
else
  # Sourced: do the work in a subshell (strict mode does not leak into the caller's shell), then
  # make the project's tools the first on PATH for the caller.
  # (Called as a plain command, not in an `if`, so that set -e inside it stays in force.)
  _govsign_bootstrap "$@"
  _govsign_rc=$?
  unset -f _govsign_bootstrap
  if ((_govsign_rc == 0)); then
    unset _govsign_rc
    GOVSIGN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
    export GOVSIGN_ROOT
    case ":$PATH:" in
      *":$GOVSIGN_ROOT/.venv/bin:"*) ;;
      *) export PATH="$GOVSIGN_ROOT/.venv/bin:$PATH" ;;
    esac
  else
    unset _govsign_rc
    return 1
  fi
fi
