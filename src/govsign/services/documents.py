"""Documents in transit: a request body kept in memory when small and spilled to a private
file when large (hashed as it arrives), and a signed result to stream back."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1024 * 1024
#: Request bodies up to this size are kept in memory, larger ones in a temporary file.
MEMORY_LIMIT = 1024 * 1024


@dataclass
class SpooledDocument:
    """A request body with its SHA-256 (other digests are computed on demand from the body).

    :meth:`receive` keeps a body of up to 1 MiB in memory and spills a larger one to a private
    temporary file as it arrives, so memory stays bounded for large documents while the common
    small ones cost no file operations. :meth:`create` makes an (empty) file-backed document."""

    path: Path | None = None
    """The temporary file, when the body is (or is to be) kept in a file."""
    size: int = 0
    """Bytes received."""
    _digests: dict[str, bytes] = field(default_factory=dict)
    """Hashes of the content by algorithm, computed once on demand (or given)."""
    _directory: Path | None = None
    """Where the temporary file is made when the body spills (created private, 0700)."""
    _parts: list[bytes] = field(default_factory=list)
    """The chunks received so far, while the body fits in memory."""
    _data: bytes | None = None
    """The whole body, when it stayed in memory and was closed."""
    _handle: BinaryIO | None = None
    """The temporary file open for writing, once the body grew past the memory limit."""

    @classmethod
    def create(cls, directory: Path | None = None) -> SpooledDocument:
        fd, name = tempfile.mkstemp(prefix="govsign-doc-", dir=directory)
        os.close(fd)
        return cls(path=Path(name))

    @classmethod
    def of(cls, content: bytes) -> SpooledDocument:
        """A document already received whole (in memory), with its SHA-256."""
        document = cls()
        document.write(content)
        document.close()
        document.remember("sha256", hashlib.sha256(content).digest())
        return document

    @classmethod
    def receive(cls, directory: Path | None = None) -> SpooledDocument:
        """An empty document to :meth:`write` a body into, then :meth:`close`."""
        return cls(_directory=directory)

    def write(self, chunk: bytes) -> None:
        if self._handle is None and self.path is None and self.size + len(chunk) <= MEMORY_LIMIT:
            self._parts.append(chunk)
        else:
            if self._handle is None:
                if self.path is None:
                    if self._directory is not None:
                        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    fd, name = tempfile.mkstemp(prefix="govsign-doc-", dir=self._directory)
                    self.path = Path(name)
                    self._handle = os.fdopen(fd, "wb")
                else:
                    self._handle = self.path.open("ab")
                self._handle.writelines(self._parts)
                self._parts = []
            self._handle.write(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        """The body is complete."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        elif self.path is None:
            self._data = b"".join(self._parts)
            self._parts = []

    @property
    def in_memory(self) -> bytes | None:
        """The body, when it is kept in memory."""
        return self._data

    def digest(self, algorithm: str) -> bytes:
        if algorithm not in self._digests:
            if self._data is not None:
                self._digests[algorithm] = hashlib.new(algorithm, self._data).digest()
            else:
                hasher = hashlib.new(algorithm)
                with self.open() as handle:
                    while chunk := handle.read(_CHUNK):
                        hasher.update(chunk)
                self._digests[algorithm] = hasher.digest()
        return self._digests[algorithm]

    def remember(self, algorithm: str, digest: bytes) -> None:
        self._digests[algorithm] = digest

    def read_all(self) -> bytes:
        if self._data is not None:
            return self._data
        assert self.path is not None
        return self.path.read_bytes()

    def open(self) -> BinaryIO:
        if self._data is not None:
            return BytesIO(self._data)
        assert self.path is not None
        return self.path.open("rb")

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._data = None
        self._parts = []


@dataclass(frozen=True, kw_only=True)
class SignedFile:
    """A signed document, in memory (small ones) or in a temporary file to be streamed back and
    deleted."""

    path: Path | None
    """The signed document on disk (large documents), or None."""
    document_sha256: str
    """SHA-256 (hex) of the document as received."""
    signed_sha256: str
    """SHA-256 (hex) of the signed document."""
    credential: str
    """Serial of the signing certificate."""
    level: str
    """The signature level made (B-B, B-T, B-LT, B-LTA)."""
    data: bytes | None = None
    """The signed document, when it is kept in memory (then ``path`` is None)."""
    signature_algorithm: str | None = None
    """How the key signed: rsa-pkcs1v15, rsa-pss or ecdsa."""

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        assert self.path is not None
        try:
            with self.path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    yield chunk
        finally:
            self.path.unlink(missing_ok=True)
