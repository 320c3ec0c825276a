"""mailroom's domain: aggregates, their events and pure policies. Imports nothing of ours outside."""
