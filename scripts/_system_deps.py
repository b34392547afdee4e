"""Which Debian packages the installed Python packages need: derived, not kept by hand.

scripts/setup runs this with the venv's python after pip. It asks every shared object in the venv,
and playwright's bundled ``node`` (the driver every page test talks to), which libraries the dynamic
linker cannot find (``ldd``), and maps each to its Debian package with playwright's own table of
Debian 12 packages (``lib2package`` in its bundled ``nativeDeps``). A fresh Debian 12 lacks
``libatomic.so.1``, which that node needs: before this, the display tests failed there and passed on
machines that happened to have ``libatomic1``.

Output: the packages to install, one per line, on stdout; who needs what on stderr. Exit status 2
names a library no table maps (install its package by hand, and say so in an issue). Libraries
loaded at run time with ctypes (pyzbar's ``libzbar.so.0``) are invisible to ldd: scripts/setup
names those itself, next to the package that loads them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

_NOT_FOUND = re.compile(r"^\s*(\S+) => not found", re.MULTILINE)
_LIB2PACKAGE = re.compile(r'"(lib[^"\s]*\.so[^"\s]*)": "([^"\s]+)"')
_PLATFORM = re.compile(r'"([a-z]+[0-9.]+-(?:x64|arm64))": \{')


def elf_files(root: Path) -> list[Path]:
    """Shared objects and executables under ``root`` that ldd can inspect."""
    found = [p for p in root.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    return found + [p for p in root.rglob("driver/node") if p.is_file()]


def missing_libraries(files: Iterable[Path]) -> dict[str, list[str]]:
    """Library name -> the files that need it and that the dynamic linker cannot resolve."""
    needs: dict[str, list[str]] = {}
    for path in files:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
        for lib in _NOT_FOUND.findall(out):
            needs.setdefault(lib, []).append(str(path))
    return needs


def debian_table(bundle_text: str, platform: str = "debian12-x64") -> dict[str, str]:
    """Playwright's library -> package table; ``platform``'s own entries win over the others'."""
    table: dict[str, str] = {}
    own: dict[str, str] = {}
    current = ""
    for line in bundle_text.splitlines():
        if m := _PLATFORM.search(line):
            current = m[1]
        if m := _LIB2PACKAGE.search(line):
            (own if current == platform else table).setdefault(m[1], m[2])
    return table | own


def playwright_bundle() -> str:
    """The text of playwright's bundled JavaScript that holds its nativeDeps tables."""
    import playwright

    package = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    candidates = [package / "coreBundle.js", package / "server" / "registry" / "nativeDeps.js"]
    return "\n".join(p.read_text(encoding="utf-8") for p in candidates if p.exists())


def main() -> int:
    venv = Path(sys.prefix)
    needs = missing_libraries(elf_files(venv / "lib"))
    table = debian_table(playwright_bundle()) if needs else {}
    unmapped = sorted(lib for lib in needs if lib not in table)
    for lib, users in sorted(needs.items()):
        package = table.get(lib, "?")
        print(
            f"{lib} ({package}) needed by {Path(users[0]).name} and {len(users) - 1} more"
            if len(users) > 1
            else f"{lib} ({package}) needed by {users[0]}",
            file=sys.stderr,
        )
    if unmapped:
        print(f"no Debian package known for: {', '.join(unmapped)}", file=sys.stderr)
        return 2
    print("\n".join(sorted({table[lib] for lib in needs})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
