"""Large PDFs are signed file to file with bounded memory: a 20 MB document signs in a child
process whose peak RSS grows by less than the input's size plus 64 MB. Also: file input and
file output (seekable or write-only) give the same valid signatures as bytes."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.keystore.pkcs11 import PKCS11KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.signing import SigningCredential
from govsign.signing.pdf import PDFSignatureSpec, sign_pdf
from helpers.pdf import assert_valid, blank_pdf, qpdf_check

MB = 1024 * 1024
BIG_SIZE = 20 * MB

CHILD = """
import json, pickle, resource, sys
from govsign.keystore.pkcs11 import PKCS11KeyStore
from govsign.signing.pdf import PDFSignatureSpec, sign_pdf

module, pin, credential_file, source, target = sys.argv[1:]
with open(credential_file, "rb") as handle:
    credential = pickle.load(handle)
keystore = PKCS11KeyStore(module_path=module, token_label="govsign", pin=pin)
keystore.open()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(source, "rb") as pdf, open(target, "w+b") as output:
    result = sign_pdf(pdf, credential, keystore, PDFSignatureSpec(reason="Large document"), output=output)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
keystore.close()
print(json.dumps({"before_kib": before, "after_kib": after, "returned": result is not None}))
"""


def _big_pdf(path: Path, size: int) -> None:
    """A one-page PDF with an incompressible stream of ``size`` random bytes, written to path."""
    writer = PdfFileWriter()  # type: ignore[no-untyped-call]
    writer.insert_page(  # type: ignore[no-untyped-call]
        PageObject(contents=[], media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))))  # type: ignore[no-untyped-call]
    )
    blob = writer.add_object(generic.StreamObject({}, stream_data=os.urandom(size)))
    writer.root[generic.NameObject("/GovsignTestBlob")] = blob
    with path.open("wb") as handle:
        writer.write(handle)  # type: ignore[no-untyped-call]


def test_twenty_megabyte_pdf_signs_file_to_file_with_bounded_memory(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: PKCS11KeyStore,
    hierarchy: HierarchyResult,
    softhsm2_module: str,
    hsm_pin: str,
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "big.pdf", tmp_path / "big-signed.pdf"
    _big_pdf(source, BIG_SIZE)
    size = source.stat().st_size
    assert size >= BIG_SIZE
    credential_file = tmp_path / "credential.pickle"
    credential_file.write_bytes(pickle.dumps(credentials[KeyAlgorithm.EC_P256]))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, softhsm2_module, hsm_pin, str(credential_file), str(source), str(target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=dict(os.environ),
    )
    assert child.returncode == 0, child.stdout + child.stderr
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    assert measured["returned"] is False  # with an output file, nothing is returned
    growth = (measured["after_kib"] - measured["before_kib"]) * 1024
    assert growth < size + 64 * MB, f"peak RSS grew by {growth / MB:.1f} MB for a {size / MB:.1f} MB PDF"
    # Stricter than the requirement: no copy of the document is held (bytes in, bytes out would
    # add about twice its size).
    assert growth < size // 2, f"peak RSS grew by {growth / MB:.1f} MB for a {size / MB:.1f} MB PDF"

    assert target.stat().st_size > size
    with source.open("rb") as original, target.open("rb") as signed:
        assert signed.read(size) == original.read()  # an incremental update of the input
    signed_pdf = target.read_bytes()
    qpdf_check(signed_pdf, tmp_path)
    assert_valid(signed_pdf, hierarchy, 1)


class _WriteOnly(io.RawIOBase):
    """A stream that can only be written (like an HTTP response body)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self.chunks.append(chunk)
        return len(chunk)


def test_file_input_and_outputs_give_valid_signatures(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore, hierarchy: HierarchyResult, tmp_path: Path
) -> None:
    original = blank_pdf()
    credential = credentials[KeyAlgorithm.EC_P256]
    source = tmp_path / "in.pdf"
    source.write_bytes(original)

    with source.open("rb") as pdf, (tmp_path / "out.pdf").open("w+b") as output:
        assert sign_pdf(pdf, credential, store, PDFSignatureSpec(), output=output) is None
    to_file = (tmp_path / "out.pdf").read_bytes()
    assert to_file.startswith(original)
    assert_valid(to_file, hierarchy, 1)

    write_only = _WriteOnly()
    with source.open("rb") as pdf:
        assert sign_pdf(pdf, credential, store, PDFSignatureSpec(), output=cast(BinaryIO, write_only)) is None
    assert_valid(b"".join(write_only.chunks), hierarchy, 1)

    with source.open("rb") as pdf:
        from_file = sign_pdf(pdf, credential, store, PDFSignatureSpec())
    assert from_file.startswith(original)
    assert_valid(from_file, hierarchy, 1)


def test_non_seekable_or_non_pdf_file_is_refused(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore, tmp_path: Path
) -> None:
    credential = credentials[KeyAlgorithm.EC_P256]
    read_end, write_end = os.pipe()
    os.write(write_end, blank_pdf())
    os.close(write_end)
    pipe: BinaryIO
    with os.fdopen(read_end, "rb") as pipe, pytest.raises(InvalidInputError, match="seekable"):
        sign_pdf(pipe, credential, store, PDFSignatureSpec())
    other = tmp_path / "not.pdf"
    other.write_bytes(b"PK\x03\x04 a zip file")
    with other.open("rb") as handle, pytest.raises(InvalidInputError, match="not a PDF"):
        sign_pdf(handle, credential, store, PDFSignatureSpec())
