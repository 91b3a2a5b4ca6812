"""core/cli.py: the log configuration every part's command line shares."""

from __future__ import annotations

import logging

import pytest

from core.cli import QUIET_LOGGERS, configure_logging, redact_credentials


def message(msg: str, *args) -> str:
    record = logging.LogRecord("collector", logging.WARNING, __file__, 1, msg, args or None, None)
    assert redact_credentials(record) is True  # redacted, never dropped
    return record.getMessage()


@pytest.mark.parametrize(("line", "shown"), [
    ("GET https://api.flickr.com/services/rest/?method=x&api_key=0123abcd&page=2",
     "GET https://api.flickr.com/services/rest/?method=x&api_key=[redacted]&page=2"),
    ("GET /api/v1/streaming/hashtag?tag=x&access_token=tok-en.1",
     "GET /api/v1/streaming/hashtag?tag=x&access_token=[redacted]"),
    ("headers: {'Authorization': 'Bearer eyJhbGci.eyJzdWIi.sig'}",
     "headers: {'Authorization': 'Bearer [redacted]'}"),
    ("login failed: password=hunter2 for me.bsky.social",
     "login failed: password=[redacted] for me.bsky.social"),
    ("nothing to hide: 12 posts, key:value", "nothing to hide: 12 posts, key:value"),
])  # fmt: skip
def test_credentials_in_a_line_are_redacted(line, shown):
    assert message(line) == shown


def test_redaction_applies_to_formatted_arguments():
    assert message("HTTP Request: %s %s", "GET", "http://h/?api_key=s3cr3t") == (
        "HTTP Request: GET http://h/?api_key=[redacted]"
    )


def test_http_clients_stay_at_warning_even_verbose():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        configure_logging(verbose=True)
        assert all(logging.getLogger(n).getEffectiveLevel() == logging.WARNING
                   for n in QUIET_LOGGERS)  # fmt: skip
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert all(redact_credentials in h.filters for h in root.handlers)
    finally:
        for handler in root.handlers:
            handler.removeFilter(redact_credentials)
        root.handlers[:], root.level = handlers, level
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
