"""Run the HTTP service under uvicorn (uvloop + httptools; one HSM session per worker process).

The app is named by its import string, so the CLI does not import ``govsign.api`` and every
worker process builds its own app (and its own PKCS#11 login) from the environment.
"""

from __future__ import annotations

import uvicorn

from govsign.config import Settings

APP_FACTORY = "govsign.api.app:create_app_from_environment"


def run_server(settings: Settings, *, host: str, port: int, workers: int) -> None:
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
