"""The change-feed page a gate parses is assembled from changes encoded once for all gates."""

from shared.protocol import Change, ChangesPage, CheckinChange, TicketChange
from syncd.feed.read import FeedPage


def test_an_assembled_page_is_the_page_a_gate_parses() -> None:
    changes = [
        Change(
            seq=7,
            kind="checkin.in",
            checkin=CheckinChange(
                ticket_id=2**64 - 1,
                gate_id=3,
                gate_name='North "A" \\ Tür\n\u2028',
                direction="in",
                at=1763856000.123456,
            ),
        ),
        Change(
            seq=8,
            kind="ticket.revoked",
            ticket=TicketChange(ticket_id=5, nonce=1, status="revoked", zone=0, holder="Zoë"),
        ),
    ]
    page = FeedPage("8", [c.model_dump_json().encode() for c in changes], more=True)
    assert ChangesPage.model_validate_json(page.json()) == ChangesPage(
        cursor="8", changes=changes, more=True
    )
    empty = ChangesPage.model_validate_json(FeedPage("x", [], snapshot_required=True).json())
    assert empty == ChangesPage(cursor="x", snapshot_required=True)
