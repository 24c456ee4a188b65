"""ReportRepository on both engines: the clients the records of processing name as recipients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.store.auth_models import Client
from gateway.store.reports import ClientRecipient, ReportRepository

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _client(client_id: str, created_at: datetime, *, purposes: list[str],
            revoked_at: datetime | None = None) -> Client:
    return Client(id=client_id, name=f"name of {client_id}", secret_hash="s" * 64,
                  scopes=["consent:read", "profile:read"], purposes=purposes,
                  created_at=created_at, secret_rotated_at=None, revoked_at=revoked_at)


def test_recipients_are_the_clients_not_revoked_oldest_first(db):
    with db.write() as s:
        s.add_all([
            _client("cl_new", T0 + timedelta(days=2), purposes=["analytics"]),
            _client("cl_revoked", T0 + timedelta(days=1), purposes=["ads"],
                    revoked_at=T0 + timedelta(days=3)),
            _client("cl_old", T0, purposes=["personalization", "ads"]),
            _client("cl_none", T0 + timedelta(days=4), purposes=[]),
        ])
    with db.read() as s:
        recipients = ReportRepository(s).client_recipients()
    scopes = ("consent:read", "profile:read")
    assert recipients == [
        ClientRecipient("cl_old", "name of cl_old", scopes, ("personalization", "ads")),
        ClientRecipient("cl_new", "name of cl_new", scopes, ("analytics",)),
        ClientRecipient("cl_none", "name of cl_none", scopes, ()),
    ]
    assert not any(hasattr(r, "secret_hash") for r in recipients)


def test_no_clients_no_recipients(db):
    with db.read() as s:
        assert ReportRepository(s).client_recipients() == []
