"""The review workflow in the dashboard under Streamlit's AppTest, on SQLite and PostgreSQL: the
Review page's walk, the reviewer's name, verdict chips and the Verdict filter on every page,
the Detail page's buttons and trail, and the flagged share on Analytics.

The log is tests/test_app.py's five known calls (four with an image, newest first: bfl
unknown, replicate live, openai base64, openai expired; and an openai error without one).
"""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from store.capture.writer import insert_calls
from store.review import give_verdict, trail
from store.schema.models import utcnow
from tests.test_app import (
    APP_DIR,
    B64_ID,
    EXPIRED_ID,
    LIVE_ID,
    TRICKY_PROMPT,
    UNKNOWN_ID,
    known_calls,
    no_exception,
    open_page,
    shown_rows,
    shown_thumbnails,
)

sys.path.insert(0, str(APP_DIR))  # the pages' own imports: `components`, as `streamlit run` has

from components import reviewer

REASON = "violence or gore"


@pytest.fixture
def log(empty_log) -> Engine:
    insert_calls(empty_log, known_calls())
    return empty_log


def reviewing(
    *, name: str | None = "Alice", user: dict | None = None, **query_params: str | list[str]
) -> AppTest:
    """The Review page, for a reviewer who gave `name` earlier in the session (or none)."""
    app = AppTest.from_file(str(APP_DIR / "main.py"), default_timeout=60)
    if name is not None:
        app.session_state[reviewer.NAME] = name
    if user is not None:
        app.user = user
    for key, value in query_params.items():
        app.query_params[key] = value
    app.switch_page("views/review.py")
    return app.run()


def progress_text(app: AppTest) -> str:
    [bar] = app.get("progress")
    return bar.proto.text


def shown_call(app: AppTest) -> str:
    """The call id the page shows (its caption ends with it; ids are hex, never escaped)."""
    captions = [caption.value for caption in app.caption if " · call " in caption.value]
    return captions[0].rsplit(" ", 1)[1]


def button(app: AppTest, label: str):
    return next(b for b in app.button if b.label == label)


def test_the_reviewer_is_asked_for_a_name_once_per_session(log):
    app = reviewing(name=None)

    no_exception(app)
    assert app.get("progress") == []  # nothing to judge before the name is known
    app.text_input(key=reviewer.TYPED).input("  Alice Martin ")
    button(app, "Start reviewing").click().run()

    no_exception(app)
    assert shown_call(app) == UNKNOWN_ID
    assert any("Reviewing as Alice Martin" in caption.value for caption in app.caption)
    app.switch_page("views/logs.py").run()
    app.switch_page("views/review.py").run()
    assert [t for t in app.text_input if t.key == reviewer.TYPED] == []  # not asked again


def test_an_empty_name_is_not_taken(log):
    app = reviewing(name=None)

    button(app, "Start reviewing").click().run()

    no_exception(app)
    assert "type your name first" in app.warning[0].value
    assert app.get("progress") == []


def test_approve_records_the_verdict_and_moves_to_the_next_image(log):
    app = reviewing()
    assert shown_call(app) == UNKNOWN_ID
    assert progress_text(app).startswith("**1 of 4** unreviewed images")

    button(app, "Approve").click().run()

    no_exception(app)
    [change] = trail(log, UNKNOWN_ID)
    assert (change.to_verdict, change.reviewer, change.from_verdict) == ("approved", "Alice", None)
    assert shown_call(app) == LIVE_ID
    assert progress_text(app).startswith("**2 of 4** unreviewed images")
    assert "1 judged, 0 skipped" in progress_text(app)


def test_flag_waits_for_a_reason_and_records_it_with_the_note(log):
    app = reviewing()
    assert button(app, "Flag").disabled

    app.selectbox(key=f"review-{_key(app)}-reason").select(REASON).run()
    app.text_input(key=f"review-{_key(app)}-note").input("blood on the kite").run()
    button(app, "Flag").click().run()

    no_exception(app)
    [change] = trail(log, UNKNOWN_ID)
    assert (change.to_verdict, change.reason, change.note) == (
        "flagged",
        REASON,
        "blood on the kite",
    )
    assert shown_call(app) == LIVE_ID


def test_needs_another_look_is_a_verdict_too(log):
    app = reviewing()

    button(app, "Needs another look").click().run()

    no_exception(app)
    assert [c.to_verdict for c in trail(log, UNKNOWN_ID)] == ["needs_another_look"]


def test_skip_moves_on_without_a_verdict_and_a_new_walk_offers_the_skipped_again(log):
    app = reviewing()

    button(app, "Skip").click().run()

    no_exception(app)
    assert trail(log, UNKNOWN_ID) == []
    assert shown_call(app) == LIVE_ID
    assert progress_text(app).startswith("**2 of 4**") and "0 judged, 1 skipped" in progress_text(
        app
    )
    for _ in range(3):  # approve the three others
        button(app, "Approve").click().run()
    assert (
        "at its end (3 judged and 1 skipped in this walk), but 1 image of this view is"
        in app.info[0].value
    )
    button(app, "Walk again from the newest").click().run()
    assert shown_call(app) == UNKNOWN_ID
    assert progress_text(app).startswith("**1 of 1**")


def test_the_walk_is_of_the_sidebar_filters_and_ends_with_them(log):
    app = reviewing(provider="openai")

    assert shown_call(app) == B64_ID  # the error call has no image to judge
    assert progress_text(app).startswith("**1 of 2**")
    button(app, "Approve").click().run()
    assert shown_call(app) == EXPIRED_ID
    button(app, "Approve").click().run()

    no_exception(app)
    assert "Every image of this view has a verdict (2 judged and 0 skipped" in app.success[0].value
    assert app.get("progress") == []
    assert [b for b in app.button if b.label == "Walk again from the newest"] == []


def test_the_image_is_the_cached_thumbnail_and_the_prompt_plain_text(log):
    app = reviewing(provider="openai", url_state="expired")

    no_exception(app)
    assert shown_call(app) == EXPIRED_ID
    assert [code.value for code in app.code][:2] == [
        TRICKY_PROMPT,
        "A red fox stands in deep snow.",
    ]
    urls = [url for element in app.get("image") for url in element.value]
    assert urls and all(url.startswith("data:image/webp;base64,") for url in urls)
    assert any("openai · dall\\-e\\-3" in header.value for header in app.subheader)


def test_a_finished_walk_offers_the_images_recorded_since_it_began(log):
    app = reviewing(provider="replicate")
    button(app, "Approve").click().run()
    assert app.success  # every replicate image judged
    later = known_calls()[3].model_copy(update={"id": "9" * 32, "created_at": utcnow()})
    insert_calls(log, [later])

    button(app, "Refresh").click().run()

    no_exception(app)
    assert "still unreviewed: skipped, or recorded since the walk began" in app.info[0].value
    button(app, "Walk again from the newest").click().run()
    assert shown_call(app) == "9" * 32


def test_a_logged_in_user_reviews_under_their_own_name(log):
    app = reviewing(name=None, user={"is_logged_in": True, "name": "Dana Scully"})

    no_exception(app)
    assert any("Reviewing as Dana Scully (logged in)" in c.value for c in app.caption)
    button(app, "Approve").click().run()
    assert [c.reviewer for c in trail(log, UNKNOWN_ID)] == ["Dana Scully"]


def test_a_user_that_is_not_logged_in_is_asked_for_a_name(log):
    # AppTest's default user has an email but no login: no identity to sign with.
    app = reviewing(name=None, user={"is_logged_in": False, "email": "test@example.com"})

    no_exception(app)
    assert [t.key for t in app.main.text_input] == [reviewer.TYPED]


# --- verdicts on the other pages ---------------------------------------------------------------


@pytest.fixture
def judged(log) -> Engine:
    give_verdict(log, EXPIRED_ID, 0, "flagged", "bob", reason=REASON, note="not for the ads")
    give_verdict(log, LIVE_ID, 0, "approved", "alice")
    return log


def test_logs_rows_show_verdict_chips_and_the_filter_narrows_them(judged):
    app = open_page("logs")
    verdicts = dict(zip(shown_rows(app)["created_at"], shown_rows(app)["verdicts"], strict=True))
    assert sorted(map(tuple, verdicts.values())) == [
        (),
        ("approved",),
        ("flagged",),
        ("unreviewed",),
        ("unreviewed",),
    ]

    app.sidebar.pills(key="verdict").set_value(["flagged", "approved"]).run()

    no_exception(app)
    assert sorted(map(tuple, shown_rows(app)["verdicts"])) == [("approved",), ("flagged",)]


def test_unreviewed_in_a_link_keeps_the_calls_with_an_image_to_judge(judged):
    app = open_page("logs", verdict="unreviewed")

    no_exception(app)
    assert len(shown_rows(app)) == 2  # b64 and unknown; the error call has no image


def test_gallery_cards_carry_verdict_chips_and_follow_the_filter(judged):
    app = open_page("gallery", verdict="flagged")

    no_exception(app)
    assert len(shown_thumbnails(app)) == 1
    chips = [m.proto.body for m in app.get("markdown") if ":material/flag:" in m.proto.body]
    assert len(chips) == 1 and "flagged" in chips[0]


def test_detail_shows_the_verdict_the_trail_and_gives_a_verdict(judged):
    app = AppTest.from_file(str(APP_DIR / "main.py"), default_timeout=60)
    app.session_state[reviewer.NAME] = "carol"
    app.query_params["log"] = EXPIRED_ID
    app.switch_page("views/detail.py")
    app.run()

    no_exception(app)
    trail_table = next(t.value for t in app.dataframe if "Reviewer" in t.value.columns)
    assert trail_table[["Reviewer", "From", "To", "Reason", "Note"]].values.tolist() == [
        ["bob", "unreviewed", "flagged", REASON, "not for the ads"]
    ]
    button(app, "Approve").click().run()

    no_exception(app)
    assert [(c.from_verdict, c.to_verdict, c.reviewer) for c in trail(judged, EXPIRED_ID)] == [
        (None, "flagged", "bob"),
        ("flagged", "approved", "carol"),
    ]
    trail_table = next(t.value for t in app.dataframe if "Reviewer" in t.value.columns)
    assert list(trail_table["To"]) == ["flagged", "approved"]


def test_detail_without_a_reviewer_shows_the_trail_and_asks_for_a_name_to_judge(judged):
    app = open_page("detail", log=LIVE_ID)

    no_exception(app)
    assert [b for b in app.button if b.label == "Approve"] == []
    assert any(t.key == reviewer.TYPED for t in app.text_input)
    assert any("Reviewer" in t.value.columns for t in app.dataframe)


def test_analytics_shows_the_flagged_share_by_model_and_follows_the_verdict_filter(judged):
    app = open_page("analytics")

    no_exception(app)
    shares = next(t.value for t in app.dataframe if "flagged_share" in t.value.columns)
    assert shares[["model", "reviewed", "flagged", "flagged_share"]].values.tolist() == [
        ["dall-e-3", 1, 1, 1.0],
        ["flux-schnell", 1, 0, 0.0],
    ]
    assert any("2 reviewed images in this view, 1 flagged (50.0%)" in c.value for c in app.caption)

    app.sidebar.pills(key="verdict").set_value(["unreviewed"]).run()

    no_exception(app)
    assert {m.label: m.value for m in app.metric}["Calls"] == "2"
    assert any("No image in this view has a verdict yet" in c.value for c in app.caption)


def test_an_unknown_verdict_in_a_link_is_named(judged):
    app = open_page("logs", verdict=["flagged", "nosuch"])

    no_exception(app)
    assert any("- verdict: 'nosuch'" in warning.value for warning in app.sidebar.warning)
    assert sorted(map(tuple, shown_rows(app)["verdicts"])) == [("flagged",)]


def _key(app: AppTest) -> str:
    """The Review page's widget key part for the image it shows."""
    [skip] = [b for b in app.button if b.label == "Skip"]
    return skip.key.removeprefix("review-skip-")
