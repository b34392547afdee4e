"""The gate daemon: scans, decides offline, records durably, syncs when it can."""
