"""Review (store.review) and the verdict filter, on SQLite and PostgreSQL.

Calls arrive through `store.capture.writer.insert_calls`, as every real call does; verdicts
through `give_verdict`; everything is read back through the public functions.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from store.capture.writer import insert_calls
from store.queries import (
    Cursor,
    LogFilter,
    count_logs,
    image_ids,
    iter_records,
    list_gallery,
    list_logs,
    overview,
)
from store.queries import hints as plan_probes
from store.queries.reviewed import flagged_share_by_model
from store.review import (
    NoSuchImage,
    ReviewError,
    configured_reasons,
    count_unreviewed,
    give_verdict,
    list_images,
    next_unreviewed,
    recent_changes,
    trail,
)
from store.review.reasons import REASONS_ENV
from store.schema.models import IMAGES, REVIEWS
from store.schema.records import CallRecord, ImageRecord

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FLAG_REASON = "violence or gore"  # one of store/data/reasons.toml's


def call_id(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


def image(state: str, n: int = 0) -> ImageRecord:
    return ImageRecord(url=f"https://img.test/{state}/{n}.png", url_state=state, thumbnail=b"w")


CALLS = [
    CallRecord(
        id=call_id("fox"),
        created_at=T0,
        provider="openai",
        model="dall-e-3",
        prompt="a red fox",
        images=[image("live")],
    ),
    CallRecord(
        id=call_id("cat"),
        created_at=T0 + timedelta(hours=1),
        provider="openai",
        model="gpt-image-1",
        prompt="a sleepy cat",
        images=[image("expired", 0), image("live", 1)],
    ),
    CallRecord(
        id=call_id("refused"),
        created_at=T0 + timedelta(hours=2),
        provider="azure",
        model="dall-e-3",
        prompt="a refused request",
        status="error",
    ),
    CallRecord(
        id=call_id("lake"),
        created_at=T0 + timedelta(hours=3),
        provider="replicate",
        model="flux-schnell",
        prompt="a mountain lake",
        images=[ImageRecord(data=b"raw", thumbnail=b"w")],
    ),
]
NAMES = {call_id(name): name for name in ("fox", "cat", "refused", "lake")}
FOX, CAT, LAKE = call_id("fox"), call_id("cat"), call_id("lake")


@pytest.fixture
def logged(engine):
    insert_calls(engine, CALLS)
    return engine


@pytest.fixture
def judged(logged):
    """fox approved; cat's first image flagged, its second unreviewed; lake needs another look."""
    give_verdict(logged, FOX, 0, "approved", "alice")
    give_verdict(logged, CAT, 0, "flagged", "bob", reason=FLAG_REASON)
    give_verdict(logged, LAKE, 0, "needs_another_look", "alice", note="hands look odd")
    return logged


def current_verdicts(engine) -> dict[tuple[str, int], str | None]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(IMAGES.c.generation_id, IMAGES.c.position, IMAGES.c.verdict)
        )
        return {(NAMES[g], position): verdict for g, position, verdict in rows}


def review_rows(engine) -> list[dict]:
    with engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(select(REVIEWS).order_by(REVIEWS.c.id)).mappings()
        ]


# --- giving verdicts and the trail -----------------------------------------------------------


def test_a_verdict_is_a_review_row_and_the_images_current_verdict(logged):
    change = give_verdict(logged, CAT, 1, "approved", "  alice  ", note="fine")

    [row] = review_rows(logged)
    assert (row["generation_id"], row["position"], row["verdict"]) == (CAT, 1, "approved")
    assert (row["reviewer"], row["note"], row["reason"]) == ("alice", "fine", None)
    assert row["created_at"] == change.created_at and change.created_at.tzinfo is not None
    assert current_verdicts(logged)[("cat", 1)] == "approved"
    assert current_verdicts(logged)[("cat", 0)] is None  # the call's other image is untouched
    assert (change.from_verdict, change.to_verdict, change.id) == (None, "approved", row["id"])


def test_changing_a_verdict_appends_and_the_trail_says_from_what_to_what(logged):
    give_verdict(logged, CAT, 0, "approved", "alice")
    give_verdict(logged, CAT, 0, "flagged", "bob", reason=FLAG_REASON, note="blood on the sofa")
    give_verdict(logged, CAT, 0, "needs_another_look", "carol")

    changes = trail(logged, CAT, 0)

    assert [(c.from_verdict, c.to_verdict, c.reviewer) for c in changes] == [
        (None, "approved", "alice"),
        ("approved", "flagged", "bob"),
        ("flagged", "needs_another_look", "carol"),
    ]
    assert changes[1].reason == FLAG_REASON and changes[1].note == "blood on the sofa"
    assert [c.created_at for c in changes] == sorted(c.created_at for c in changes)
    assert len(review_rows(logged)) == 3
    assert current_verdicts(logged)[("cat", 0)] == "needs_another_look"  # in step with the trail
    assert (
        "bob: approved -> flagged (violence or gore) — blood on the sofa" in changes[1].describe()
    )


def test_giving_verdicts_never_updates_or_deletes_a_review(logged):
    give_verdict(logged, FOX, 0, "approved", "alice")
    before = review_rows(logged)
    sent: list[str] = []
    event.listen(logged, "before_cursor_execute", lambda *args: sent.append(args[2]))

    give_verdict(logged, FOX, 0, "flagged", "bob", reason=FLAG_REASON)
    give_verdict(logged, FOX, 0, "approved", "alice")

    written = [statement.split()[:3] for statement in sent if not statement.startswith("SELECT")]
    assert ["UPDATE", "images", "SET"] in written
    assert all("reviews" not in words for words in written if words[0] in ("UPDATE", "DELETE"))
    assert review_rows(logged)[: len(before)] == before
    assert len(review_rows(logged)) == 3


def test_the_trail_of_a_call_lists_each_image_in_order(judged):
    give_verdict(judged, CAT, 1, "approved", "alice")
    give_verdict(judged, CAT, 0, "approved", "carol")

    changes = trail(judged, CAT)

    assert [(c.position, c.from_verdict, c.to_verdict) for c in changes] == [
        (0, None, "flagged"),
        (0, "flagged", "approved"),
        (1, None, "approved"),
    ]
    assert trail(judged, FOX, 3) == [] and trail(judged, call_id("refused")) == []


def test_recent_changes_are_newest_first_with_the_verdict_each_replaced(judged):
    give_verdict(judged, FOX, 0, "flagged", "carol", reason=FLAG_REASON)

    recent = recent_changes(judged, limit=3)

    assert [(NAMES[c.generation_id], c.from_verdict, c.to_verdict) for c in recent] == [
        ("fox", "approved", "flagged"),
        ("lake", None, "needs_another_look"),
        ("cat", None, "flagged"),
    ]


@pytest.mark.parametrize(
    ("verdict", "reason", "message"),
    [
        ("flagged", None, "needs one of the configured reasons, not no reason"),
        ("flagged", "looks bad", "not the reason 'looks bad'"),
        ("approved", FLAG_REASON, "only a flagged image takes a reason"),
        ("fine", None, "verdict: Input should be 'approved', 'flagged' or 'needs_another_look'"),
    ],
)
def test_a_verdict_that_cannot_be_given_is_refused_and_nothing_is_written(
    logged, verdict, reason, message
):
    with pytest.raises(ReviewError, match=message.replace("(", r"\(").replace(")", r"\)")):
        give_verdict(logged, FOX, 0, verdict, "alice", reason=reason)

    assert review_rows(logged) == []
    assert current_verdicts(logged)[("fox", 0)] is None


@pytest.mark.parametrize("reviewer", ["", "   ", "x" * 201])
def test_a_verdict_needs_a_reviewer_name_that_fits(logged, reviewer):
    with pytest.raises(ReviewError, match="reviewer"):
        give_verdict(logged, FOX, 0, "approved", reviewer)

    assert review_rows(logged) == []


def test_a_verdict_on_an_image_the_log_does_not_have_is_refused(logged):
    with pytest.raises(NoSuchImage, match="no image 1 in call"):
        give_verdict(logged, FOX, 1, "approved", "alice")
    with pytest.raises(NoSuchImage):
        give_verdict(logged, "f" * 32, 0, "approved", "alice")

    assert review_rows(logged) == []


# --- the reasons ---------------------------------------------------------------------------------


def test_the_shipped_reasons_are_offered(monkeypatch):
    monkeypatch.delenv(REASONS_ENV, raising=False)

    reasons = configured_reasons()

    assert FLAG_REASON in reasons and "does not match the prompt" in reasons
    assert len(set(reasons)) == len(reasons)


def test_a_team_reasons_file_adds_its_reasons_and_they_can_flag(logged, tmp_path, monkeypatch):
    own = tmp_path / "reasons.toml"
    own.write_text('reasons = ["shows our competitor\'s logo", "violence or gore"]\n')
    monkeypatch.setenv(REASONS_ENV, str(own))

    reasons = configured_reasons()
    give_verdict(logged, FOX, 0, "flagged", "alice", reason="shows our competitor's logo")

    assert reasons[-1] == "shows our competitor's logo" and reasons[0] == "sexual content"
    assert reasons.count("violence or gore") == 1
    assert current_verdicts(logged)[("fox", 0)] == "flagged"


def test_a_team_reasons_file_with_replace_is_the_whole_list(logged, tmp_path, monkeypatch):
    own = tmp_path / "reasons.toml"
    own.write_text('replace = true\nreasons = ["off brand", "legal review"]\n')
    monkeypatch.setenv(REASONS_ENV, str(own))

    assert configured_reasons() == ("off brand", "legal review")
    with pytest.raises(ReviewError, match="choose from: off brand, legal review"):
        give_verdict(logged, FOX, 0, "flagged", "alice", reason=FLAG_REASON)


def test_a_broken_team_reasons_file_is_ignored_with_an_error(tmp_path, monkeypatch, caplog):
    own = tmp_path / "reasons.toml"
    own.write_text("reasons = 'not a list'\n")
    monkeypatch.setenv(REASONS_ENV, str(own))

    with caplog.at_level(logging.ERROR):
        reasons = configured_reasons()

    assert FLAG_REASON in reasons
    assert f"{REASONS_ENV} is ignored" in caplog.text and "expected reasons = " in caplog.text


# --- the verdict filter on every read ------------------------------------------------------


VERDICT_VIEWS = [
    (("approved",), ["fox"], [("fox", 0)]),
    (("flagged",), ["cat"], [("cat", 0)]),
    (("unreviewed",), ["cat"], [("cat", 1)]),
    (("needs_another_look", "approved"), ["lake", "fox"], [("lake", 0), ("fox", 0)]),
    (("unreviewed", "flagged"), ["cat"], [("cat", 0), ("cat", 1)]),
]


@pytest.mark.parametrize("few", [True, False], ids=["few-matching", "many-matching"])
@pytest.mark.parametrize(("verdicts", "calls", "images"), VERDICT_VIEWS)
def test_the_verdict_filter_narrows_every_read(judged, monkeypatch, few, verdicts, calls, images):
    if not few:  # every probe counts as "many": the filter is tested call by call
        monkeypatch.setattr(plan_probes, "SELECTIVE_BELOW", 1)
    flt = LogFilter(verdicts=verdicts)

    gallery = list_gallery(judged, flt).rows

    assert [NAMES[i] for i in list_logs(judged, flt).rows["id"]] == calls
    assert count_logs(judged, flt) == (len(calls), False)
    assert [record.id for record in iter_records(judged, flt)] == [call_id(c) for c in calls]
    assert (
        list(zip(map(NAMES.get, gallery["generation_id"]), gallery["position"], strict=True))
        == images
    )
    assert image_ids(judged, flt) == list(gallery["image_id"])


def test_a_url_state_and_a_verdict_ask_for_one_image_with_both(judged):
    # cat's expired image is flagged and its live one unreviewed: no image is both.
    flt = LogFilter(url_states=("expired",), verdicts=("unreviewed",))

    assert list_logs(judged, flt).rows.empty
    assert list_gallery(judged, flt).rows.empty
    both = LogFilter(url_states=("live",), verdicts=("unreviewed",))
    assert [NAMES[i] for i in list_logs(judged, both).rows["id"]] == ["cat"]


def test_logs_rows_and_gallery_cards_carry_their_verdicts(judged):
    rows = list_logs(judged, LogFilter()).rows.set_index("id")["verdicts"]
    cards = list_gallery(judged, LogFilter()).rows

    assert rows[CAT] == ["flagged", "unreviewed"]
    assert rows[FOX] == ["approved"] and rows[LAKE] == ["needs_another_look"]
    assert rows[call_id("refused")] == []  # no image, nothing to judge
    shown = [verdict if isinstance(verdict, str) else None for verdict in cards["verdict"]]
    assert shown == ["needs_another_look", "flagged", None, "approved"]


def test_analytics_image_shares_follow_the_verdict_filter(judged):
    everything = overview(judged, LogFilter()).summary
    flagged = overview(judged, LogFilter(verdicts=("flagged",))).summary

    assert everything.expired_share == pytest.approx(1 / 3)  # 3 hosted images, 1 expired
    assert flagged.calls == 1 and flagged.expired_share == 1.0  # cat's flagged image only


def test_flagged_share_by_model_counts_the_reviewed_images_of_the_view(judged):
    give_verdict(judged, CAT, 1, "approved", "alice")

    shares = flagged_share_by_model(judged, LogFilter())
    openai_only = flagged_share_by_model(judged, LogFilter(providers=("openai",)))

    by_model = shares.set_index("model")
    assert list(shares["model"]) == ["gpt-image-1", "dall-e-3", "flux-schnell"]
    assert by_model.loc["gpt-image-1", ["reviewed", "flagged", "approved"]].tolist() == [2, 1, 1]
    assert by_model.loc["gpt-image-1", "flagged_share"] == 0.5
    assert by_model.loc["flux-schnell", "needs_another_look"] == 1
    assert by_model.loc["flux-schnell", "flagged_share"] == 0.0
    assert list(openai_only["model"]) == ["gpt-image-1", "dall-e-3"]
    assert flagged_share_by_model(judged, LogFilter(verdicts=("unreviewed",))).empty


# --- the walk and the list -----------------------------------------------------------------


def walk(engine, flt: LogFilter, judge=lambda where: None) -> list[tuple[str, int]]:
    """Every stop of the walk from the newest image, `judge` called at each."""
    stops, where = [], next_unreviewed(engine, flt)
    while where is not None:
        stops.append((NAMES[where.id], where.position))
        judge(where)
        where = next_unreviewed(engine, flt, after=where)
    return stops


def test_the_walk_visits_each_unreviewed_image_newest_first(logged):
    assert walk(logged, LogFilter()) == [("lake", 0), ("cat", 0), ("cat", 1), ("fox", 0)]


def test_the_walk_goes_past_judged_and_skipped_images_alike(logged):
    judged_on_the_way = []

    def approve_cats(where: Cursor) -> None:
        if NAMES[where.id] == "cat":
            give_verdict(logged, where.id, where.position, "approved", "alice")
            judged_on_the_way.append(where.position)

    assert walk(logged, LogFilter(), approve_cats) == [
        ("lake", 0),
        ("cat", 0),
        ("cat", 1),
        ("fox", 0),
    ]
    assert judged_on_the_way == [0, 1]
    # A new walk offers only what is still unreviewed: the skipped ones.
    assert walk(logged, LogFilter()) == [("lake", 0), ("fox", 0)]


def test_the_walk_follows_the_filters_but_always_walks_unreviewed_images(judged):
    # Even with a verdict filter set, the walk is of the view's unreviewed images.
    assert walk(judged, LogFilter(providers=("openai",), verdicts=("approved",))) == [("cat", 1)]
    assert walk(judged, LogFilter(providers=("replicate",))) == []


def test_count_unreviewed_counts_images_and_stops_at_its_cap(logged):
    assert count_unreviewed(logged, LogFilter()) == (4, False)
    assert count_unreviewed(logged, LogFilter(providers=("openai",))) == (3, False)
    assert count_unreviewed(logged, LogFilter(), cap=2) == (2, True)
    give_verdict(logged, CAT, 0, "approved", "alice")
    assert count_unreviewed(logged, LogFilter(url_states=("expired", "live"))) == (2, False)


def test_list_images_gives_each_images_verdict_and_its_last_change(judged):
    give_verdict(judged, CAT, 0, "approved", "carol", note="on second look, fine")

    rows, more = list_images(judged, LogFilter(providers=("openai",)))
    first, more_after_one = list_images(judged, LogFilter(), limit=1)

    assert [(NAMES[r.generation_id], r.position, r.verdict) for r in rows] == [
        ("cat", 0, "approved"),
        ("cat", 1, None),
        ("fox", 0, "approved"),
    ]
    assert (rows[0].reviewer, rows[0].note, rows[0].reason) == (
        "carol",
        "on second look, fine",
        None,
    )
    assert rows[1].reviewer is None and rows[1].reviewed_at is None
    assert not more
    assert [NAMES[r.generation_id] for r in first] == ["lake"] and more_after_one
