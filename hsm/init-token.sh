#!/usr/bin/env bash
# Creates (initialises) a PKCS#11 token for govsign: sets its label and SO PIN, then the user PIN.
# Run it once per token, at the key ceremony, before `govsign init`. See hsm/README.md.
#
# PINs are never taken as arguments (the process list shows arguments to every user) and never
# echoed: they are read from files (first line) or typed at the terminal, and handed to
# pkcs11-tool through its environment (`--pin env:NAME`), which only the same user and root can read.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: hsm/init-token.sh [options] LABEL

Initialises a token with the label LABEL on a free slot of a PKCS#11 module and sets its
Security Officer (SO) PIN and user PIN. A token that already has LABEL is left alone (exit 1).

Options:
  --module PATH          PKCS#11 library (default: $GOVSIGN_PKCS11_MODULE, else SoftHSM2's)
  --so-pin-file FILE     read the SO PIN from the first line of FILE (default: prompt)
  --user-pin-file FILE   read the user PIN from the first line of FILE (default: prompt)
  --softhsm2-dir DIR     SoftHSM2 only: write DIR/softhsm2.conf from hsm/softhsm2.conf.template
                         (tokens in DIR/tokens/, the layout of the embedded default) and use it;
                         without it, SOFTHSM2_CONF (or SoftHSM2's system configuration) applies
  -h, --help             show this text

Examples:
  # A token in the embedded layout of a data dir; PINs typed at the terminal:
  hsm/init-token.sh --softhsm2-dir ./govsign-data govsign
  # A hardware token, PINs from files prepared by the ceremony officers:
  hsm/init-token.sh --module /opt/vendor/lib/libpkcs11.so \
      --so-pin-file /run/ceremony/so.pin --user-pin-file /run/ceremony/user.pin govsign

Then run govsign with GOVSIGN_HSM_TOKEN_LABEL=LABEL and GOVSIGN_HSM_PIN_FILE=<user PIN file>
(and GOVSIGN_PKCS11_MODULE=PATH for a module other than the embedded SoftHSM2).
EOF
}

die() { printf 'init-token: %s\n' "$*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
module=${GOVSIGN_PKCS11_MODULE:-}
so_pin_file=""
user_pin_file=""
softhsm2_dir=""
label=""

while (($#)); do
  case $1 in
    --module) module=${2:?--module needs a path}; shift 2 ;;
    --so-pin-file) so_pin_file=${2:?--so-pin-file needs a file}; shift 2 ;;
    --user-pin-file) user_pin_file=${2:?--user-pin-file needs a file}; shift 2 ;;
    --softhsm2-dir) softhsm2_dir=${2:?--softhsm2-dir needs a directory}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --pin | --so-pin | --user-pin | --pin=* | --so-pin=* | --user-pin=*)
      die "PINs are not taken as arguments; use --so-pin-file and --user-pin-file, or type them when asked." ;;
    -*) usage >&2; die "Unknown option $1." ;;
    *)
      [[ -z $label ]] || { usage >&2; die "Give exactly one token label."; }
      label=$1; shift ;;
  esac
done
[[ -n $label ]] || { usage >&2; die "Give the token label."; }
((${#label} <= 32)) || die "A token label has at most 32 characters."

command -v pkcs11-tool >/dev/null 2>&1 || die "pkcs11-tool is missing; install the opensc package."

find_softhsm2() {
  local candidate
  for candidate in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so; do
    if [[ -f $candidate ]]; then printf '%s\n' "$candidate"; return 0; fi
  done
  return 1
}
if [[ -z $module ]]; then
  module=$(find_softhsm2) || die "No PKCS#11 module given and SoftHSM2 is not installed; use --module or install softhsm2."
fi
[[ -f $module ]] || die "There is no PKCS#11 library at $module."

if [[ -n $softhsm2_dir ]]; then
  mkdir -p "$softhsm2_dir/tokens"
  chmod 0700 "$softhsm2_dir/tokens"
  softhsm2_dir=$(cd "$softhsm2_dir" && pwd -P)
  conf="$softhsm2_dir/softhsm2.conf"
  if [[ ! -f $conf ]]; then
    # '|' as the sed delimiter: the path may hold '/', and a path holding '|' or '&' is refused.
    [[ $softhsm2_dir != *[\|\&\\]* ]] || die "The directory name must not contain '|', '&' or '\\'."
    sed "s|@TOKEN_DIR@|$softhsm2_dir/tokens|" "$here/softhsm2.conf.template" >"$conf"
    chmod 0600 "$conf"
  fi
  export SOFTHSM2_CONF=$conf
fi
if [[ -n ${SOFTHSM2_CONF:-} && ! -f $SOFTHSM2_CONF ]]; then
  die "SOFTHSM2_CONF names $SOFTHSM2_CONF, which does not exist."
fi

# -- PINs -----------------------------------------------------------------------------------
read_pin_file() { # FILE -> the PIN on stdout
  local file=$1 pin="" mode
  [[ -r $file ]] || die "Cannot read the PIN file $file."
  mode=$(stat -c %a "$file")
  if [[ $mode != 600 && $mode != 400 ]]; then
    printf 'init-token: warning: %s has mode %s; PIN files should be 0600 or 0400.\n' "$file" "$mode" >&2
  fi
  IFS= read -r pin <"$file" || true
  pin=${pin%$'\r'}
  printf '%s' "$pin"
}
prompt_pin() { # WHAT -> the PIN on stdout, asked twice at the terminal
  local what=$1 first second
  { : </dev/tty; } 2>/dev/null || die "No terminal to ask for the $what; give it with a PIN file."
  IFS= read -r -s -p "New $what: " first </dev/tty 2>/dev/tty; printf '\n' >/dev/tty
  IFS= read -r -s -p "New $what again: " second </dev/tty 2>/dev/tty; printf '\n' >/dev/tty
  [[ $first == "$second" ]] || die "The two $what entries differ."
  printf '%s' "$first"
}
check_pin() { # WHAT PIN
  local what=$1 pin=$2
  ((${#pin} >= 4)) || die "The $what is empty or shorter than 4 characters."
  ((${#pin} <= 255)) || die "The $what is longer than 255 characters."
}

set +x # never trace PINs
if [[ -n $so_pin_file ]]; then so_pin=$(read_pin_file "$so_pin_file"); else so_pin=$(prompt_pin "SO PIN"); fi
check_pin "SO PIN" "$so_pin"
if [[ -n $user_pin_file ]]; then user_pin=$(read_pin_file "$user_pin_file"); else user_pin=$(prompt_pin "user PIN"); fi
check_pin "user PIN" "$user_pin"
[[ $so_pin != "$user_pin" ]] || die "The SO PIN and the user PIN must differ."

# -- slots ----------------------------------------------------------------------------------
p11() { pkcs11-tool --module "$module" "$@"; }
# p11_quiet ARGS...: run pkcs11-tool, showing its output only when it fails.
p11_quiet() {
  local out
  if ! out=$(p11 "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    return 1
  fi
}

slots=$(p11 --list-slots 2>/dev/null) || die "pkcs11-tool could not list the slots of $module."
existing=$(awk -F': ' '/token label/ { sub(/[ \t]+$/, "", $2); print $2 }' <<<"$slots")
if grep -Fxq -- "$label" <<<"$existing"; then
  die "A token labelled '$label' already exists; choose another label or use that token."
fi
# The index (0-based, in listing order) of the first slot whose token is not initialised.
free_index=$(awk '
  /^Slot [0-9]+/ { index_now = n++ }
  /token state:[ \t]*uninitiali[sz]ed/ && !found { print index_now; found = 1 }
' <<<"$slots")
[[ -n $free_index ]] || die "The module has no slot with an uninitialised token."

# -- initialise -----------------------------------------------------------------------------
GOVSIGN_INIT_SO_PIN=$so_pin p11_quiet --slot-index "$free_index" --init-token --label "$label" \
  --so-pin env:GOVSIGN_INIT_SO_PIN \
  || die "pkcs11-tool could not initialise the token."
# SoftHSM2 moves a freshly initialised token to a new slot: address it by label from now on.
GOVSIGN_INIT_SO_PIN=$so_pin GOVSIGN_INIT_USER_PIN=$user_pin p11_quiet --token-label "$label" \
  --login --login-type so --so-pin env:GOVSIGN_INIT_SO_PIN \
  --init-pin --new-pin env:GOVSIGN_INIT_USER_PIN \
  || die "The token '$label' was created, but pkcs11-tool could not set its user PIN."
unset so_pin user_pin

echo "Token '$label' is ready on $module${SOFTHSM2_CONF:+ (SOFTHSM2_CONF=$SOFTHSM2_CONF)}."
