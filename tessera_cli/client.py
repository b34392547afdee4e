"""A thin httpx client for the syncd API.

Errors, drawn once::

    CliError            anything the user must see; the CLI prints it and exits 1
    └── ApiFailureError      syncd answered 4xx/5xx; carries the status, code and row problems

Transport errors (no server, TLS, timeouts) are translated to ``CliError`` at this boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tessera_cli.settings import CliSettings


class CliError(Exception):
    """A failure to report to the user (one line, no traceback)."""


class ApiFailureError(CliError):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.code = str(body.get("error", "error"))
        self.problems: list[dict[str, Any]] = body.get("problems", [])
        super().__init__(f"syncd refused ({status} {self.code}): {body.get('message', '')}")


class Api:
    def __init__(self, settings: CliSettings, transport: httpx.BaseTransport | None = None) -> None:
        if settings.token is None:
            raise CliError("set TESSERA_CLI_TOKEN to an API token (syncd create-token)")
        self._http = httpx.Client(
            base_url=settings.url.rstrip("/"),
            timeout=settings.timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"},
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    @staticmethod
    def _check(resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 400:
            resp.read()
            try:
                body = resp.json()
            except ValueError:
                body = {"message": resp.text[:200]}
            raise ApiFailureError(resp.status_code, body if isinstance(body, dict) else {})
        return resp

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._check(self._http.request(method, path, **kw))
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach syncd at {self._http.base_url}: {exc}") from exc

    def json(self, method: str, path: str, **kw: Any) -> Any:
        return self.request(method, path, **kw).json()

    def upload(
        self, path: str, chunks: Iterable[bytes], content_type: str, params: dict[str, str]
    ) -> Any:
        return self.json(
            "POST", path, content=chunks, params=params, headers={"Content-Type": content_type}
        )

    @contextmanager
    def stream(self, path: str, params: dict[str, str] | None = None) -> Iterator[httpx.Response]:
        try:
            with self._http.stream("GET", path, params=params) as resp:
                yield self._check(resp)
        except httpx.HTTPError as exc:
            raise CliError(f"download from syncd failed: {exc}") from exc
