"""The gate protocol's models: strict on what gates send, tolerant of what a newer syncd adds."""

import pytest
from pydantic import ValidationError

from shared.protocol import ChangesPage, PushRequest, PushResponse

CHECKIN = {
    "seq": 1,
    "scan_id": "a" * 32,
    "ticket_id": 7,
    "direction": "in",
    "outcome": "admit",
    "scanned_at": 1.0,
}


def test_syncd_refuses_fields_a_gate_should_not_send() -> None:
    PushRequest.model_validate({"sent_at": 1.0, "checkins": [CHECKIN]})
    with pytest.raises(ValidationError, match="extra"):
        PushRequest.model_validate({"sent_at": 1.0, "checkins": [CHECKIN], "admin": True})
    with pytest.raises(ValidationError, match="extra"):
        PushRequest.model_validate({"sent_at": 1.0, "checkins": [{**CHECKIN, "zone": 3}]})


def test_a_gate_ignores_fields_a_newer_syncd_adds() -> None:
    answer = PushResponse.model_validate(
        {"acked_seq": 4, "stored": 1, "server_time": 2.0, "skew": 0.5, "added_later": [1]}
    )
    assert answer.acked_seq == 4 and answer.committed_at is None
    page = ChangesPage.model_validate(
        {
            "cursor": "c",
            "changes": [
                {
                    "seq": 1,
                    "kind": "ticket.added",
                    "later": 1,
                    "ticket": {
                        "ticket_id": 1,
                        "nonce": 2,
                        "status": "valid",
                        "zone": 0,
                        "later": "x",
                    },
                }
            ],
        }
    )
    assert page.changes[0].ticket is not None and page.changes[0].ticket.nonce == 2
    with pytest.raises(ValidationError):  # tolerant of additions, not of missing fields
        PushResponse.model_validate({"acked_seq": 4, "stored": 1, "skew": 0.5})
