"""Helpers for scripts/make_sample.py: a synthetic but source-shaped recording of one event.

world    authors, instances and the words they use
plan     when posts happen (bursts in talks, lulls in breaks) and what they are about
mastodon Mastodon Status payloads (update, status.update, delete, reblog wrappers, Bridgy mirrors)
bluesky  Jetstream v1 events (identity, commit create/delete) with UTF-8 byte-offset facets
flickr   flickr.photos.search photo objects
hostile  the XSS probes every sanitiser must neutralise
ids      deterministic identifiers: snowflakes, TIDs, CIDs, blurhashes, timestamps
"""
