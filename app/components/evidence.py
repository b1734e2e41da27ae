"""What an image's content credentials say and which images of the log look like it: the two
sections the Detail page shows under each image.

A manifest's texts (issuer, generator, actions) are the image's own claims, so they are shown
as plain text; an image whose credentials are missing or fail validation gets a warning an
auditor cannot miss.
"""

from __future__ import annotations

import streamlit as st
from components import data, image_cards
from components.text import plain

from store.media.credentials import describe, is_flagged
from store.queries import ImageDetail
from store.schema.enums import Credentials
from store.schema.lookalike import DEFAULT_MAX_DISTANCE

#: Look-alikes shown under an image, nearest first, and how many are looked up (more: "12+").
SIMILAR_SHOWN = 6
SIMILAR_LIMIT = 12


def credentials(image: ImageDetail) -> None:
    """One line in words ("signed by OpenAI, created by DALL·E 3, valid"), a warning when they
    are missing or fail, and the manifest's details."""
    state = image.c2pa_state.value if image.c2pa_state is not None else None
    line = "Content credentials: " + describe(
        state, image.c2pa_issuer, image.c2pa_generator, image.c2pa_actions_json
    )
    if state == Credentials.invalid.value:
        st.error(plain(line), icon=":material/gpp_bad:")
        st.caption(f"Why: {plain(image.c2pa_error or 'the manifest does not validate')}")
    elif state == Credentials.none.value:
        st.warning(plain(line), icon=":material/gpp_maybe:")
    elif state is None:
        st.caption(plain(line) + " (the image's bytes were never at hand)")
    else:
        st.success(plain(line), icon=":material/verified_user:")
    if is_flagged(state) or state is None:
        return
    facts = [
        f"Issuer: {image.c2pa_issuer or '—'}",
        f"Claim generator: {image.c2pa_generator or '—'}",
        "Signed at: "
        + (
            f"{image.c2pa_signed_at:%Y-%m-%d %H:%M:%S} UTC"
            if image.c2pa_signed_at
            else "no trusted time"
        ),
    ]
    for action in image.c2pa_actions_json or []:
        facts.append(
            "Action: "
            + " · ".join(
                str(action[key]) for key in ("action", "software_agent", "source") if key in action
            )
        )
    st.text("\n".join(facts))


def similar(image: ImageDetail) -> None:
    """The images of the whole log whose perceptual hash is within DEFAULT_MAX_DISTANCE bits
    of this one's, each with its distance, thumbnail and a link to its call."""
    if not image.phash:
        st.caption("Similar images: no perceptual hash (no thumbnail was made).")
        return
    found = data.similar(
        image.phash, (image.generation_id, image.position), DEFAULT_MAX_DISTANCE, SIMILAR_LIMIT
    )
    if not found:
        st.caption(
            f"Similar images: none in the log within {DEFAULT_MAX_DISTANCE} bits "
            f"(hash {image.phash})."
        )
        return
    count = f"{len(found)}+" if len(found) == SIMILAR_LIMIT else str(len(found))
    st.caption(
        f"Similar images across the log ({count} within {DEFAULT_MAX_DISTANCE} bits of "
        f"hash {image.phash}; 0 is the same picture)"
    )
    for column, each in zip(st.columns(SIMILAR_SHOWN), found[:SIMILAR_SHOWN], strict=False):
        with column:
            if each.thumbnail:
                st.image(image_cards.data_uri(each.thumbnail), width="stretch")
            st.caption(
                f"distance {each.distance} · image {each.position + 1} · "
                f"{plain(each.provider)} · {each.created_at:%Y-%m-%d %H:%M}"
            )
            st.page_link(
                image_cards.DETAIL_PAGE,
                label="Open",
                icon=":material/open_in_new:",
                query_params={"log": each.generation_id},
            )
    if len(found) > SIMILAR_SHOWN:
        st.caption("… and more: `imagelog similar` lists every cluster of the log")
