from datetime import UTC, datetime, timedelta, timezone

from core.items import Author, Item, Media, format_time, item_from_dict, item_to_dict, parse_time


def test_round_trip_through_json_dict():
    item = Item(
        uri="https://example.social/users/a/statuses/1",
        source="mastodon",
        origin="example.social",
        local_id="1",
        url="https://example.social/@a/1",
        created_at=datetime(2026, 10, 24, 7, 5, 1, 123000, tzinfo=UTC),
        author=Author(
            id="https://example.social/users/a", handle="@a@example.social", name="Ä 日本"
        ),
        html="<p>hi</p>",
        tags=("northwind26",),
        media=(Media("image", "https://x/y.jpg", alt="a cat"),),
        edited_at=datetime(2026, 10, 24, 7, 6, tzinfo=UTC),
    )
    assert item_from_dict(item_to_dict(item)) == item


def test_times_are_utc_with_z():
    cet = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 10, 25, 10, 0, tzinfo=cet)) == "2026-10-25T09:00:00.000Z"
    assert parse_time("2026-10-25T09:00:00.000Z") == datetime(2026, 10, 25, 9, tzinfo=UTC)
    assert parse_time("2026-10-25T09:00:00") == datetime(2026, 10, 25, 9, tzinfo=UTC)


def test_to_dict_covers_every_field():
    """item_to_dict is written out by hand for speed: it must not forget a field."""
    import dataclasses

    item = Item(
        uri="u",
        source="s",
        origin="o",
        local_id="1",
        url="",
        created_at=datetime(2026, 1, 1),
        author=Author(id="a"),
        media=(Media("image", "https://x"),),
        extra={"k": 1},
    )
    data = item_to_dict(item)
    assert set(data) == {f.name for f in dataclasses.fields(Item)}
    assert set(data["author"]) == {f.name for f in dataclasses.fields(Author)}
    assert set(data["media"][0]) == {f.name for f in dataclasses.fields(Media)}
    assert data["extra"] == {"k": 1}
