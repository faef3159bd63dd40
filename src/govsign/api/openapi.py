"""Write the OpenAPI document of the app: ``python -m govsign.api.openapi [PATH]``.

``openapi/openapi.json`` is generated with this; a test fails when the file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from govsign.api.app import create_app
from govsign.config import Settings

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "openapi" / "openapi.json"


def openapi_document() -> dict[str, Any]:
    # The document does not depend on settings; build the app without opening anything.
    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


def render() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
