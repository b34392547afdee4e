"""The client's tests use syncd's fixtures: a migrated database, settings, organisations."""

from tests.syncd.conftest import client, db_url, org_a, org_b, settings

__all__ = ["client", "db_url", "org_a", "org_b", "settings"]
