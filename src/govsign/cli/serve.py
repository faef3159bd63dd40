"""``govsign serve``: the HTTP service under uvicorn (uvloop + httptools; one HSM session per
worker process).

The app is named by its import string, so the CLI does not import ``govsign.api`` and every
worker process builds its own app (and its own PKCS#11 login) from the environment.
"""

from __future__ import annotations

from typing import Annotated

import typer

from govsign.config import load_settings
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
