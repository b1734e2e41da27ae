"""Read an image's content credentials (its C2PA manifest) with the official c2pa-python
bindings, into the `images.c2pa_*` columns.

OpenAI and other providers sign what they generate: a manifest embedded in the file says who
signed it (the certificate's organisation), which software made the claim, what was done (a
`c2pa.created` action whose digital source type is `trainedAlgorithmicMedia` means "made by a
generative model") and, through its hashes, whether the bytes are still the ones signed.

The library's validation state is the verdict (`Credentials`): `Valid` for an intact manifest
whatever trust list its signer is in (its `signingCredential.untrusted` code is no failure of
the image), `Trusted` when the chain ends in an anchor of `IMAGELOG_C2PA_TRUST_ANCHORS` (a PEM
bundle), `Invalid` when a hash or signature does not match. An image without a manifest reads
`none`. The bytes are hostile: a manifest that cannot be parsed is `invalid` with the reason,
and no error of the reader ever reaches the save that called it.

Nothing here touches the network: remote manifests and OCSP are switched off, so a logged
image cannot make the reader fetch a URL it names (server-side fetches go through the network
guard only).
"""

from __future__ import annotations

import functools
import io
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from store.schema.enums import Credentials
from store.schema.models import utc_in_range

log = logging.getLogger(__name__)

#: A PEM bundle of root certificates to trust (say, the C2PA trust list's): signers under one
#: of them read `trusted` rather than `valid`.
TRUST_ANCHORS_ENV = "IMAGELOG_C2PA_TRUST_ANCHORS"
#: The digital source type a generative model's output declares (IPTC's vocabulary).
GENERATIVE_SOURCES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia")
#: Widths of the columns the texts go to (PostgreSQL enforces them), and how much of a
#: hostile manifest is kept: at most this many actions, each text cut to TEXT_LENGTH.
TEXT_LENGTH = 200
ERROR_LENGTH = 500
MAX_ACTIONS = 20
#: Pillow's format names as the media types c2pa-python reads.
MEDIA_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "avif": "image/avif",
    "tiff": "image/tiff",
}
_VERDICTS = {"trusted": Credentials.trusted, "valid": Credentials.valid}


@dataclass(frozen=True)
class ContentCredentials:
    """What an image's manifest says, in the `images.c2pa_*` columns' terms."""

    state: Credentials
    issuer: str | None = None
    generator: str | None = None
    signed_at: datetime | None = None
    actions: list[dict[str, str]] | None = None
    error: str | None = None

    def columns(self) -> dict[str, object]:
        """The `images` columns these fill (every one, so a re-read clears an old value)."""
        return {
            "c2pa_state": self.state.value,
            "c2pa_issuer": self.issuer,
            "c2pa_generator": self.generator,
            "c2pa_signed_at": self.signed_at,
            "c2pa_actions_json": self.actions,
            "c2pa_error": self.error,
        }


def read_credentials(data: bytes, image_format: str) -> ContentCredentials | None:
    """The content credentials of an image's original bytes (`image_format` as Pillow names
    it); None when c2pa cannot read that format at all. Never raises for bad input."""
    media_type = MEDIA_TYPES.get(image_format)
    if media_type is None:
        return None
    try:
        return _read(data, media_type)
    except Exception as exc:  # hostile bytes: whatever the reader throws is the image's fault
        log.debug("content credentials unreadable", exc_info=True)
        return ContentCredentials(Credentials.invalid, error=_cut(f"unreadable manifest: {exc}"))


def _read(data: bytes, media_type: str) -> ContentCredentials:
    import c2pa  # type: ignore[import-untyped]  # ships no types; loaded on first read

    reader = c2pa.Reader.try_create(media_type, io.BytesIO(data), context=_context(c2pa))
    if reader is None:
        return ContentCredentials(Credentials.none)
    try:
        state = str(reader.get_validation_state() or "").lower()
        manifest = reader.get_active_manifest() or {}
        results = reader.get_validation_results() or {}
    finally:
        reader.close()
    verdict = _VERDICTS.get(state, Credentials.invalid)
    signature = _mapping(manifest.get("signature_info"))
    return ContentCredentials(
        state=verdict,
        issuer=_text(signature.get("issuer")),
        generator=_generator(manifest),
        signed_at=_time(signature.get("time")),
        actions=_actions(manifest),
        error=None if verdict is not Credentials.invalid else _failures(results, state),
    )


def _context(c2pa: Any) -> Any:
    """The reader's settings: no network at all, and the trust anchors if any are given."""
    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    anchors = os.environ.get(TRUST_ANCHORS_ENV)
    if anchors:
        settings["trust"] = {"trust_anchors": _anchors(anchors)}
    return c2pa.Context.from_dict(settings)


@functools.cache
def _anchors(path: str) -> str:
    return Path(path).read_text()


def describe(
    state: str | None,
    issuer: str | None,
    generator: str | None,
    actions: list[dict[str, str]] | None,
) -> str:
    """One line for people: "signed by OpenAI, created by DALL·E 3 (a generative model), valid".

    "no content credentials" for an image without a manifest; "not read" when its bytes were
    never at hand (a URL that died before the download).
    """
    if state is None:
        return "not read"
    if state == Credentials.none.value:
        return "no content credentials"
    created = next((a for a in actions or [] if a.get("action") == "c2pa.created"), None)
    maker = (created or {}).get("software_agent") or generator
    generative = (created or {}).get("source") in GENERATIVE_SOURCES
    parts = [f"signed by {issuer}" if issuer else "signer unknown"]
    if maker:
        parts.append(f"created by {maker}" + (" (a generative model)" if generative else ""))
    elif generative:
        parts.append("created by a generative model")
    parts.append(state)
    return ", ".join(parts)


def is_flagged(state: str | None) -> bool:
    """Whether an image's credentials call for an auditor's eye: missing or failing."""
    return state in (Credentials.none.value, Credentials.invalid.value)


def _generator(manifest: dict[str, Any]) -> str | None:
    """The claim generator: v1's `claim_generator` text, else v2's first generator info."""
    if text := _text(manifest.get("claim_generator")):
        return text
    infos = manifest.get("claim_generator_info")
    info = _mapping(infos[0]) if isinstance(infos, list) and infos else {}
    name, version = _text(info.get("name")), _text(info.get("version"))
    if name and version:
        return _cut(f"{name} {version}", TEXT_LENGTH)
    return name


def _actions(manifest: dict[str, Any]) -> list[dict[str, str]] | None:
    """Each action of the manifest's actions assertions (v1 or v2): what, by which software,
    from which source, the source as its IPTC term (`trainedAlgorithmicMedia`)."""
    found: list[dict[str, str]] = []
    assertions = manifest.get("assertions")
    for assertion in assertions if isinstance(assertions, list) else []:
        assertion = _mapping(assertion)
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        listed = _mapping(assertion.get("data")).get("actions")
        for action in listed if isinstance(listed, list) else []:
            action = _mapping(action)
            agent = action.get("softwareAgent")
            entry = {
                "action": _text(action.get("action")),
                "software_agent": _text(_mapping(agent).get("name") if agent else None)
                or _text(agent),
                "source": _text(str(action.get("digitalSourceType") or "").rsplit("/", 1)[-1]),
            }
            found.append({key: value for key, value in entry.items() if value})
            if len(found) == MAX_ACTIONS:
                return found
    return found or None


def _failures(results: dict[str, Any], state: str) -> str:
    """Why a manifest is invalid: its failure codes (untrusted signers aside), or the state."""
    active = _mapping(results.get("activeManifest"))
    listed = active.get("failure")
    failures: list[Any] = listed if isinstance(listed, list) else []
    codes = [
        str(_mapping(entry).get("code"))
        for entry in failures
        if _mapping(entry).get("code") != "signingCredential.untrusted"
    ]
    return _cut("failed: " + ", ".join(dict.fromkeys(codes)) if codes else f"state {state!r}")


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return utc_in_range(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A manifest's text as a column takes it: a string, cut to TEXT_LENGTH; else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _cut(value.strip(), TEXT_LENGTH)


def _cut(text: str, width: int = ERROR_LENGTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
