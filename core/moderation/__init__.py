"""Organizer moderation, in one place: the dashboard (admin/moderate.py) and the command line
(`python -m collector hide …`, defined in `commands`) both call it; the collector's save path
keeps only its gate (collector/gate.py), which asks `rules` for the event's precompiled Gate.

    rules      what a rule matches, the Gate that decides a post's status, account keys
    queries    the moderation tables read: the queue, rules, decisions, the audit log, reasons
    content    content/<event>/moderation.yaml: read (with file:line errors) and synced
    statuses   items' statuses recomputed from the decisions, with the live changes that makes
    decisions  the Moderator: every decision one audited transaction, then published
    commands   the CLI's moderation commands, added to `python -m collector`

Statuses of an item (`items.status`): `visible` (on pages and the live tail), `moderated` (hidden
by an organizer's decision, a blocked account or a hide rule), `held` (waiting in the approval
queue), `deleted` (retracted at the source) and `hidden` (the author's own choice, e.g. Bluesky's
"!no-unauthenticated": moderation never shows those). Only `visible` items reach
`core.archive.visible_items`, so sitegen needs nothing else. The tables are created by
`m003_moderation` in core/archive.py.

This package's __init__ imports nothing, so reading a rule (the collector's gate) does not load
the decisions' Redis code.
"""
