"""/metrics: the sidecar's counters in the Prometheus text exposition format (0.0.4), summed over
its worker processes (census.py)."""

from __future__ import annotations

from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def prometheus_text(stats: dict[str, Any], redis_ok: bool) -> str:
    """`stats` is the /stats document: the sidecar's figures summed over its workers."""

    def per_event(name: str) -> list[tuple[str, int]]:
        return [(_event(slug), int(value)) for slug, value in stats[name].items()]

    families = [
        ("afa_live_up", "gauge", "1 while the sidecar serves.", [("", 1)]),
        ("afa_live_redis_up", "gauge", "1 when Redis answers a PING.", [("", int(redis_ok))]),
        ("afa_live_workers", "gauge", "Live worker processes of this sidecar.",
         [("", stats["workers"])]),
        ("afa_live_connections", "gauge", "Open live streams, all workers.",
         [("", stats["connections"])]),
        ("afa_live_viewers", "gauge", "Open live streams per event, all workers.",
         per_event("viewers")),
        ("afa_live_reader_running", "gauge", "1 while a worker's Redis reader of the event runs.",
         per_event("readers")),
        ("afa_live_entries_read_total", "counter", "Stream entries read from Redis per event.",
         per_event("entries_read")),
        ("afa_live_posts_sent_total", "counter", "Changes written to clients.",
         [("", stats["posts_sent"])]),
        ("afa_live_slow_dropped_total", "counter", "Clients dropped as too slow to keep up.",
         [("", stats["slow_dropped"])]),
        ("afa_live_rejected_total", "counter", "Connections refused, by reason.",
         [('{reason="full"}', stats["rejected"]),
          ('{reason="per_address"}', stats["rejected_per_address"])]),
        ("afa_live_resets_total", "counter", "Clients told to reload (cursor older than the tail).",
         [("", stats["resets"])]),
        ("afa_live_reader_errors_total", "counter", "Failed XREADs (Redis away).",
         [("", stats["reader_errors"])]),
    ]  # fmt: skip
    lines = []
    for name, kind, help_text, samples in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{labels} {value}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def _event(slug: str) -> str:
    escaped = slug.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{event="{escaped}"}}'
