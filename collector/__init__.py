"""The collector: sources → normalise → sanitise → archive (SQLite, the truth) → live tail (Redis)."""
