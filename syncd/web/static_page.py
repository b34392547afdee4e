"""A page syncd serves from a folder of its package (the wallet, the dashboard): every file of
the folder with a known suffix, nothing else (no path outside it, no listing), its HTML under
the page's Content-Security-Policy."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from syncd.web.errors import not_found


class StaticPage:
    def __init__(self, folder: Path, csp: str, types: Mapping[str, str]) -> None:
        self.folder = folder
        self.csp = csp
        self.types = dict(types)

    @functools.cached_property
    def files(self) -> dict[str, Path]:
        """Every file of the page by its URL path below the page's root."""
        if not self.folder.is_dir():
            return {}
        return {
            p.relative_to(self.folder).as_posix(): p
            for p in self.folder.rglob("*")
            if p.is_file() and p.suffix in self.types
        }

    def response(self, name: str) -> web.Response:
        """The file ``name`` (a URL path below the root); 404 ``file`` for anything else."""
        path = self.files.get(name)
        if path is None:
            raise not_found("file")
        kind = self.types[path.suffix]
        answer = web.Response(body=path.read_bytes(), content_type=kind)
        if kind == "text/html":
            answer.headers["Content-Security-Policy"] = self.csp
        return answer
