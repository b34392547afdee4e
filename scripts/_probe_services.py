"""Tell scripts/setup whether a service or registry answers: prints ok, auth, or down (why).

``postgres URL`` and ``rabbitmq URL`` try one connection; ``registry URL`` fetches one page of a
package index (pip's, with pip's certificate and proxy settings from the environment) within a
short timeout, so setup can name an unreachable registry before pip retries for minutes and ends
in a misleading "No matching distribution". Library logging is switched off: while RabbitMQ boots,
aio-pika/aiormq would otherwise print a traceback for every refused attempt; the one-line answer
already says what happened.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys
import urllib.error
import urllib.request

REGISTRY_TIMEOUT = 10.0


async def _postgres(url: str) -> str:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
        return "auth"
    except Exception as exc:
        return f"down ({type(exc).__name__}: {exc})"
    await conn.close()
    return "ok"


async def _rabbitmq(url: str) -> str:
    import aio_pika

    try:
        conn = await asyncio.wait_for(aio_pika.connect(url), 10)
    except Exception as exc:
        return f"down ({type(exc).__name__}: {exc})"
    await conn.close()
    return "ok"


def _registry(url: str) -> str:
    """ok when ``url`` (a simple index) answers; pip's own cert file wins over the system's."""
    cafile = os.environ.get("PIP_CERT") or None
    context = ssl.create_default_context(cafile=cafile)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url.rstrip("/") + "/pip/", timeout=REGISTRY_TIMEOUT) as answer:
            answer.read(1)
    except urllib.error.HTTPError as exc:
        return f"down (HTTP {exc.code} from {url})"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"down ({type(reason).__name__}: {reason})"
    return "ok"


def main() -> int:
    logging.disable(logging.CRITICAL)
    kind, url = sys.argv[1], sys.argv[2]
    if kind == "registry":
        result = _registry(url)
    else:
        result = asyncio.run(_postgres(url) if kind == "postgres" else _rabbitmq(url))
    print(result)
    return 0 if result == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
