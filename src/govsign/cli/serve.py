"""``govsign serve``: the HTTP service under uvicorn (uvloop + httptools; one HSM session per
worker process).

The app is named by its import string, so the CLI does not import ``govsign.api`` and every
worker process builds its own app (and its own PKCS#11 login) from the environment.

Before the workers start, ``PROMETHEUS_MULTIPROC_DIR`` is pointed at a directory of this server's
own under the data dir (``metrics/<machine>-<host>-<port>``, mode 0700, emptied first), so that the
workers' metrics add up to one view at ``/metrics`` (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Annotated

import typer

from govsign.config import Settings, load_settings
from govsign.services.bootstrap import Services

APP_FACTORY = "govsign.api.app:create_app_from_environment"


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (one HSM session each).")] = 1,
) -> None:
    """Run the HTTP service."""
    settings = load_settings()
    # Fail fast, with one sentence, before any worker starts.
    services = Services.open(settings)
    try:
        services.server_key()
    finally:
        services.close()
    prepare_metrics_directory(settings, host, port)
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        access_log=False,
    )


def metrics_directory(settings: Settings, host: str, port: int) -> Path:
    """This server's multiprocess metrics directory under the data dir:
    ``metrics/<machine>-<host>-<port>``, so servers sharing a data dir never share it."""
    return settings.data_dir / "metrics" / f"{socket.gethostname()}-{host}-{port}".replace("/", "_")


def prepare_metrics_directory(settings: Settings, host: str, port: int) -> Path:
    """Empty (or create) this server's multiprocess metrics directory and name it in the
    environment the workers inherit; the files of an earlier run would add old counts."""
    directory = metrics_directory(settings, host, port)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    directory.parent.chmod(0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory
