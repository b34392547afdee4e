"""The ``tessera`` client against a real syncd (in-process, on a real TCP port) and Postgres."""

from __future__ import annotations

import io
from pathlib import Path
from tempfile import TemporaryDirectory

from shared.bundle import BundleReader
from shared.ticket import public_key_from_b64, verify_ticket
from syncd.settings import SyncdSettings
from tessera_cli.__main__ import cli as tessera_cli
from tests.support.cli import run, tessera_client


async def test_tessera_end_to_end(settings: SyncdSettings, db_url: str, tmp_path: Path) -> None:
    async with tessera_client(settings, db_url) as tessera:
        out = (
            await tessera(
                "events",
                "create",
                "Gala",
                "--zone",
                "Main",
                "--zone",
                "VIP",
                "--timezone",
                "Europe/Paris",
            )
        ).stdout
        assert '"event_id": 1' in out
        lst = tmp_path / "list.csv"
        lst.write_text("external_ref,holder_name,zones,group\nE1,Eve,VIP,\nE2,Dan,,FAM\n")
        result = await tessera("push", "1", str(lst), "--dry-run")
        assert '"added": 2' in result.stdout and "upload" in result.stderr
        await tessera("push", "1", str(lst))
        bad = tmp_path / "bad.csv"
        bad.write_text("external_ref,zones\nE3,Moon\n")
        result = await tessera("push", "1", str(bad), ok=False)
        assert "invalid_list" in result.stderr and "row 1, zones: unknown zone" in result.stderr
        rows = (await tessera("tickets", "list", "1")).stdout.splitlines()
        assert len(rows) == 2 and rows[0].split("\t")[1:] == ["E1", "valid", "Eve"]
        family = (await tessera("tickets", "list", "1", "--group", "FAM")).stdout.splitlines()
        assert [r.split("\t")[1] for r in family] == ["E2"]
        tid = rows[0].split("\t")[0]
        assert "blocked" in (await tessera("tickets", "block", "1", tid)).stdout
        assert "valid" in (await tessera("tickets", "unblock", "1", tid)).stdout
        await tessera("tickets", "reissue", "1", tid)
        text = (await tessera("tickets", "qr", "1", tid)).stdout.strip()
        png = tmp_path / "t.png"
        await tessera("tickets", "qr", "1", tid, "--format", "png", "-o", str(png))
        assert png.read_bytes()[:4] == b"\x89PNG"
        old_kid = (await tessera("keys", "list", "1")).stdout.split("\t")[0]
        await tessera("keys", "rotate", "1")
        assert "2 ticket(s) reissued" in (await tessera("keys", "retire", "1", old_kid)).stdout
        await tessera("export", "1", "-o", str(tmp_path / "t.csv"))
        assert (tmp_path / "t.csv").read_text().count("T1:") == 2
        await tessera("sheet", "1", "-o", str(tmp_path / "s.html"))
        assert "<svg" in (tmp_path / "s.html").read_text()
        await tessera("bundle", "1", "-o", str(tmp_path / "b.bundle"), "--names")
        data = (tmp_path / "b.bundle").read_bytes()
        peek = BundleReader(io.BytesIO(data), {})
        ring = {bytes.fromhex(k.kid): public_key_from_b64(k.public_key) for k in peek.header.keys}
        reader = BundleReader(io.BytesIO(data), ring)
        assert {t.holder for t in reader.tickets()} == {"Eve", "Dan"}
        reader.finish()
        assert verify_ticket((await tessera("tickets", "qr", "1", tid)).stdout.strip(), ring)
        assert text.startswith("T1:")
        new = (await tessera("tokens", "create", "ro", "--role", "viewer")).stdout.strip()
        assert new.startswith("tsr_") and new != tessera.token
        assert "admin" in (await tessera("tokens", "list")).stdout
        assert '"role": "admin"' in (await tessera("whoami")).stdout
        result = await tessera("events", "show", "99", ok=False)
        assert "404" in result.stderr
    unreachable = {**tessera.env, "TESSERA_CLI_URL": "http://127.0.0.1:1"}
    result = await run(tessera_cli, ["events", "list"], unreachable)
    assert result.exit_code == 1 and "cannot reach syncd" in result.stderr
    result = await run(tessera_cli, ["events", "list"], {})
    assert result.exit_code == 1 and "TESSERA_CLI_TOKEN" in result.stderr


async def test_rotating_event_and_wallet_link_from_the_cli(
    settings: SyncdSettings, db_url: str
) -> None:
    """The organiser's steps of issue 17: a rotating event, a wallet link, the claims shown."""
    async with tessera_client(settings, db_url) as tessera:
        out = (await tessera("events", "create", "Gala", "--rotating")).stdout
        assert '"rotating": true' in out and '"rotation_period": 10' in out
        await tessera("events", "create", "Bad", "--rotation-period", "1", ok=False)
        out = (await tessera("events", "update", "1", "--rotation-period", "20")).stdout
        assert '"rotation_period": 20' in out and '"rotating": true' in out
        out = (await tessera("events", "update", "1", "--no-rotating")).stdout
        assert '"rotating": false' in out
        with TemporaryDirectory() as tmp:
            lst = Path(tmp) / "list.csv"
            lst.write_text("external_ref,holder_name\nE1,Eve\n")
            await tessera("push", "1", str(lst))
        ticket_id = (await tessera("tickets", "list", "1")).stdout.split("\t")[0]
        url = (await tessera("tickets", "wallet-link", "1", ticket_id)).stdout.strip()
        assert url.startswith(str(tessera.server.make_url("/wallet/#claim=tsw_")))
        shown = (await tessera("tickets", "show", "1", ticket_id)).stdout
        assert '"claims": 0' in shown and '"holder_bound": false' in shown
        await tessera("tickets", "wallet-link", "1", "999999", ok=False)
