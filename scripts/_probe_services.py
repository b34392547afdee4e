"""Tell scripts/setup whether a service answers: prints ok, auth, or down (with the error)."""

from __future__ import annotations

import asyncio
import sys


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


def main() -> int:
    kind, url = sys.argv[1], sys.argv[2]
    result = asyncio.run(_postgres(url) if kind == "postgres" else _rabbitmq(url))
    print(result)
    return 0 if result == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
