"""Create a token on a PKCS#11 module, with the PINs read from standard input.

python-pkcs11 has no C_InitToken, and softhsm2-util takes PINs only as arguments (visible to
every user in the process list) or from a terminal. This module calls C_InitToken, C_Login (SO)
and C_InitPIN through ctypes in a child process, so PINs travel only over a pipe and the
parent's own PKCS#11 state is untouched.

Run as ``python -m govsign.keystore.token_init MODULE LABEL`` with two lines on stdin: the SO PIN
and the user PIN. Exit status 0 on success; one sentence on stderr otherwise.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from collections.abc import Iterator

from govsign.errors import HSMUnavailableError

CKF_SERIAL_SESSION = 0x4
CKF_RW_SESSION = 0x2
CKF_TOKEN_INITIALIZED = 0x400
CKU_SO = 0
CKR_OK = 0


class _CKVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class _CKTokenInfo(ctypes.Structure):
    _fields_ = [
        ("label", ctypes.c_char * 32),
        ("manufacturerID", ctypes.c_char * 32),
        ("model", ctypes.c_char * 16),
        ("serialNumber", ctypes.c_char * 16),
        ("flags", ctypes.c_ulong),
        ("ulMaxSessionCount", ctypes.c_ulong),
        ("ulSessionCount", ctypes.c_ulong),
        ("ulMaxRwSessionCount", ctypes.c_ulong),
        ("ulRwSessionCount", ctypes.c_ulong),
        ("ulMaxPinLen", ctypes.c_ulong),
        ("ulMinPinLen", ctypes.c_ulong),
        ("ulTotalPublicMemory", ctypes.c_ulong),
        ("ulFreePublicMemory", ctypes.c_ulong),
        ("ulTotalPrivateMemory", ctypes.c_ulong),
        ("ulFreePrivateMemory", ctypes.c_ulong),
        ("hardwareVersion", _CKVersion),
        ("firmwareVersion", _CKVersion),
        ("utcTime", ctypes.c_char * 16),
    ]


def _check(rv: int, what: str) -> None:
    if rv != CKR_OK:
        raise RuntimeError(f"{what} failed with CKR 0x{rv:x}")


def _token_slots(lib: ctypes.CDLL) -> Iterator[tuple[int, _CKTokenInfo]]:
    """Each slot with a token present (C_GetSlotList with tokenPresent), with its token info."""
    count = ctypes.c_ulong(0)
    _check(lib.C_GetSlotList(ctypes.c_ubyte(1), None, ctypes.byref(count)), "C_GetSlotList")
    slots = (ctypes.c_ulong * max(count.value, 1))()
    _check(lib.C_GetSlotList(ctypes.c_ubyte(1), slots, ctypes.byref(count)), "C_GetSlotList")
    for index in range(count.value):
        info = _CKTokenInfo()
        _check(lib.C_GetTokenInfo(slots[index], ctypes.byref(info)), "C_GetTokenInfo")
        yield slots[index], info


def _init_token(module: str, label: str, so_pin: bytes, user_pin: bytes) -> None:
    lib = ctypes.CDLL(module)
    _check(lib.C_Initialize(None), "C_Initialize")
    try:
        free_slot = None
        for slot, info in _token_slots(lib):
            if info.flags & CKF_TOKEN_INITIALIZED:
                if info.label.decode("utf-8", "replace").rstrip() == label:
                    raise RuntimeError(f"a token labelled '{label}' already exists")
            elif free_slot is None:
                free_slot = slot
        if free_slot is None:
            raise RuntimeError("the module has no free slot for a new token")
        padded = label.encode("utf-8").ljust(32, b" ")
        _check(
            lib.C_InitToken(ctypes.c_ulong(free_slot), so_pin, ctypes.c_ulong(len(so_pin)), padded),
            "C_InitToken",
        )
        # SoftHSM2 moves a freshly initialised token to a new slot id: find it by label.
        token_slot = None
        for slot, info in _token_slots(lib):
            if info.label == padded.rstrip(b" ") or info.label.rstrip(b" ") == padded.rstrip(b" "):
                token_slot = slot
        if token_slot is None:
            raise RuntimeError("the new token did not appear in the slot list")
        session = ctypes.c_ulong(0)
        _check(
            lib.C_OpenSession(
                ctypes.c_ulong(token_slot),
                ctypes.c_ulong(CKF_SERIAL_SESSION | CKF_RW_SESSION),
                None,
                None,
                ctypes.byref(session),
            ),
            "C_OpenSession",
        )
        _check(lib.C_Login(session, ctypes.c_ulong(CKU_SO), so_pin, ctypes.c_ulong(len(so_pin))), "C_Login")
        _check(lib.C_InitPIN(session, user_pin, ctypes.c_ulong(len(user_pin))), "C_InitPIN")
        lib.C_Logout(session)
        lib.C_CloseSession(session)
    finally:
        lib.C_Finalize(None)


def create_token(*, module_path: str, token_label: str, so_pin: str, user_pin: str, env: dict[str, str]) -> None:
    """Create the token in a child process; PINs go over a pipe, never on a command line."""
    result = subprocess.run(
        [sys.executable, "-m", "govsign.keystore.token_init", module_path, token_label],
        input=f"{so_pin}\n{user_pin}\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise HSMUnavailableError(f"Could not create the HSM token '{token_label}': {reason}.")


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: python -m govsign.keystore.token_init MODULE LABEL < pins", file=sys.stderr)
        return 2
    so_pin = sys.stdin.readline().rstrip("\n").encode("utf-8")
    user_pin = sys.stdin.readline().rstrip("\n").encode("utf-8")
    try:
        _init_token(sys.argv[1], sys.argv[2], so_pin, user_pin)
    except (OSError, RuntimeError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
