"""Realistic demo logs: what two weeks of a team's image-generation calls look like in the log.

The dashboard needs something to show before anyone records a call, and the 1M-row benchmarks
need volume, so this module makes calls with the shapes real ones have: the providers and
models people use (through OpenAI, Azure, a Portkey gateway, Together, Replicate, BFL,
Stability, Google, xAI), their real latencies and error bodies, URLs signed the way each host
signs them, and thumbnails drawn with Pillow (no network). Images are drawn once into a small
pool and reused, so a million rows cost a few hundred drawings, not a million.

URL states follow what the recorder and checker would have left: a URL whose signature is still
valid was fetched at creation (live, checked then); one whose signature lapsed before the last
simulated sweep (LAST_SWEEP_AGO) is expired (predicted, from its signed expiry); one that
lapsed since is still marked live, as a log imported from elsewhere would have it, and the
first read's lapse sweep marks it expired (predicted). Unsigned URLs past their host's known
lifetime are expired (a probe found them gone: 404). Costs are left to the pricing module.
"""

from __future__ import annotations

import base64
import functools
import itertools
import random
import string
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from io import BytesIO
from typing import Any
from urllib.parse import quote

from PIL import Image, ImageDraw
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from sqlalchemy import Engine

from store.capture.writer import insert_calls
from store.expiry.prediction import SIGNATURE_EXPIRED
from store.media.lookalike import perceptual_hash
from store.media.thumbnails import ImageFacts, make_thumbnail
from store.schema.enums import Credentials
from store.schema.models import Status, UrlState, phash_bands, utcnow
from store.schema.progress import Progress, no_progress
from store.schema.records import CallRecord, ImageRecord
from store.transfer.storing import count_calls

DEMO_DAYS = 14
DEMO_ORG = "org-Xk3q8JrL2mVn9pTz4wYb6cDe"
#: `source` of every demo call, so demo rows can be told apart (and deleted) by SQL.
DEMO_SOURCE = "demo"
#: Records per `insert_calls` transaction: big enough to amortise the round trips.
BATCH_SIZE = 10_000
#: The simulated URL checker runs every SWEEP_EVERY and last ran LAST_SWEEP_AGO: signed URLs
#: that lapsed since then are left for `check --due`.
SWEEP_EVERY = timedelta(hours=6)
LAST_SWEEP_AGO = timedelta(hours=4)
#: Share of calls in the last hour, so the live URLs (fetched moments ago) are there to see.
LAST_HOUR_SHARE = 0.02
ERROR_SHARE = 0.07
#: The IPTC digital source type of a generative model's output, as C2PA actions give it.
TRAINED_SOURCE = "trainedAlgorithmicMedia"
#: Pool size: variants drawn per (width, height, format), between these bounds, by count.
MIN_VARIANTS, MAX_VARIANTS, CALLS_PER_VARIANT = 2, 12, 5_000


# --- the catalogue: who is called, how, and how it answers ----------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """One provider + model as the demo calls it."""

    provider: str
    model: str
    weight: float  # share of calls
    sizes: tuple[str, ...]
    latency_s: Latencies  # by quality: typical (low, high)
    delivery: str  # a key of URL_MAKERS, or "b64"
    image_format: str  # PNG / JPEG / WEBP, as the provider returns it
    errors: str  # a key of ERROR_MAKERS
    max_n: int = 1
    revised_prompt: bool = False
    token_usage: bool = False
    gateway: str | None = None
    openai_api: bool = True  # an OpenAI-shaped images API (else the provider's own SDK)
    extra_params: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    @property
    def qualities(self) -> tuple[str | None, ...]:
        return tuple(self.latency_s)


_SQUARE_WIDE_TALL_DALLE3 = ("1024x1024", "1792x1024", "1024x1792")
_SQUARE_WIDE_TALL_GPT = ("1024x1024", "1536x1024", "1024x1536")
_SQUARE_WIDE_TALL_FLUX = ("1024x1024", "1344x768", "768x1344")
_SQUARE_WIDE_TALL_IMAGEN = ("1024x1024", "1408x768", "768x1408")
#: Seconds by quality (None: any); Mapping is invariant in its key, hence the annotation.
Latencies = Mapping[str | None, tuple[float, float]]
_GPT_IMAGE_LATENCY: Latencies = {"low": (8, 15), "medium": (15, 30), "high": (30, 60)}
_GPT_IMAGE_MINI_LATENCY: Latencies = {"low": (4, 8), "medium": (7, 15), "high": (15, 30)}
_DALLE3_LATENCY: Latencies = {"standard": (10, 16), "hd": (14, 22)}

CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec("openai", "dall-e-3", 0.14, _SQUARE_WIDE_TALL_DALLE3, _DALLE3_LATENCY,
              "openai-blob", "PNG", "openai", revised_prompt=True,
              extra_params={"style": ("vivid", "natural")}),
    ModelSpec("openai", "dall-e-2", 0.05, ("256x256", "512x512", "1024x1024"), {None: (3, 7)},
              "openai-blob", "PNG", "openai", max_n=4),
    ModelSpec("openai", "gpt-image-1", 0.13, _SQUARE_WIDE_TALL_GPT, _GPT_IMAGE_LATENCY,
              "b64", "PNG", "openai", token_usage=True),
    ModelSpec("openai", "gpt-image-1-mini", 0.08, _SQUARE_WIDE_TALL_GPT, _GPT_IMAGE_MINI_LATENCY,
              "b64", "PNG", "openai", token_usage=True),
    ModelSpec("openai", "dall-e-3", 0.05, _SQUARE_WIDE_TALL_DALLE3, _DALLE3_LATENCY,
              "openai-blob", "PNG", "openai", revised_prompt=True, gateway="portkey"),
    ModelSpec("openai", "gpt-image-1", 0.05, _SQUARE_WIDE_TALL_GPT, _GPT_IMAGE_LATENCY,
              "b64", "PNG", "openai", token_usage=True, gateway="portkey"),
    ModelSpec("azure-openai", "dall-e-3", 0.06, _SQUARE_WIDE_TALL_DALLE3, _DALLE3_LATENCY,
              "azure-blob", "PNG", "azure", revised_prompt=True),
    ModelSpec("azure-openai", "gpt-image-1", 0.04, _SQUARE_WIDE_TALL_GPT, _GPT_IMAGE_LATENCY,
              "b64", "PNG", "azure", token_usage=True),
    ModelSpec("together", "black-forest-labs/FLUX.1-schnell", 0.07, _SQUARE_WIDE_TALL_FLUX,
              {None: (1, 2)}, "s3", "JPEG", "together", max_n=4,
              extra_params={"steps": (4,)}),
    ModelSpec("together", "black-forest-labs/FLUX.1-dev", 0.03, _SQUARE_WIDE_TALL_FLUX,
              {None: (3, 7)}, "s3", "JPEG", "together", extra_params={"steps": (28,)}),
    ModelSpec("replicate", "black-forest-labs/flux-schnell", 0.06, _SQUARE_WIDE_TALL_FLUX,
              {None: (1, 2)}, "replicate", "WEBP", "replicate", max_n=4, openai_api=False),
    ModelSpec("replicate", "black-forest-labs/flux-dev", 0.03, _SQUARE_WIDE_TALL_FLUX,
              {None: (3, 6)}, "replicate", "WEBP", "replicate", openai_api=False),
    ModelSpec("replicate", "stability-ai/stable-diffusion-3.5-large", 0.02,
              _SQUARE_WIDE_TALL_FLUX, {None: (5, 9)}, "replicate", "WEBP", "replicate",
              openai_api=False),
    ModelSpec("bfl", "flux-pro-1.1", 0.03, _SQUARE_WIDE_TALL_FLUX, {None: (4, 8)},
              "bfl", "JPEG", "bfl", openai_api=False),
    ModelSpec("bfl", "flux-pro-1.1-ultra", 0.02, ("2048x2048", "2752x1536", "1536x2752"),
              {None: (8, 15)}, "bfl", "JPEG", "bfl", openai_api=False),
    ModelSpec("stability", "sd3.5-large", 0.02, ("1024x1024", "1344x768", "768x1344"),
              {None: (4, 8)}, "b64", "PNG", "stability", openai_api=False),
    ModelSpec("stability", "sd3.5-large-turbo", 0.01, ("1024x1024",), {None: (1.5, 3)},
              "b64", "PNG", "stability", openai_api=False),
    ModelSpec("stability", "stable-image-ultra", 0.01, ("1024x1024", "1344x768"),
              {None: (6, 10)}, "b64", "PNG", "stability", openai_api=False),
    ModelSpec("stability", "stable-image-core", 0.01, ("1024x1024",), {None: (2, 4)},
              "b64", "PNG", "stability", openai_api=False),
    ModelSpec("google", "imagen-4.0-generate-001", 0.03, _SQUARE_WIDE_TALL_IMAGEN,
              {None: (5, 10)}, "b64", "PNG", "google", max_n=4, openai_api=False),
    ModelSpec("google", "imagen-4.0-fast-generate-001", 0.02, _SQUARE_WIDE_TALL_IMAGEN,
              {None: (2, 4)}, "b64", "PNG", "google", max_n=4, openai_api=False),
    ModelSpec("google", "imagen-4.0-ultra-generate-001", 0.01, _SQUARE_WIDE_TALL_IMAGEN,
              {None: (8, 14)}, "b64", "PNG", "google", openai_api=False),
    ModelSpec("xai", "grok-imagine-image", 0.02, ("1024x768",), {None: (4, 8)}, "xai", "JPEG",
              "openai", max_n=4),
)  # fmt: skip

#: gpt-image output tokens by quality and size (OpenAI's published table).
GPT_IMAGE_OUTPUT_TOKENS = {
    ("low", "1024x1024"): 272, ("low", "1024x1536"): 408, ("low", "1536x1024"): 400,
    ("medium", "1024x1024"): 1056, ("medium", "1024x1536"): 1584, ("medium", "1536x1024"): 1568,
    ("high", "1024x1024"): 4160, ("high", "1024x1536"): 6240, ("high", "1536x1024"): 6208,
}  # fmt: skip

# --- who calls, and what they ask for ---------------------------------------------------------

TEAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # team: (users, features)
    "marketing": (("ana.silva", "tom.becker", "priya.nair", "li.wei"),
                  ("ad-variants", "social-posts", "campaign-hero")),
    "ecommerce": (("jonas.meyer", "sara.costa", "omar.haddad"),
                  ("product-photos", "lifestyle-shots", "catalog-backgrounds")),
    "design": (("emma.jones", "kenji.ito", "lucia.romero"),
               ("moodboards", "concept-art", "icon-drafts")),
    "content": (("noah.smith", "fatima.zahra", "ivan.petrov"),
                ("blog-hero", "newsletter", "storyboard")),
    "product": (("mia.fischer", "david.kim"), ("avatar-gen", "onboarding-art")),
    "support-bot": (("svc-support-bot",), ("reply-illustrations",)),
}  # fmt: skip
ENVIRONMENTS = (("production", 0.72), ("staging", 0.2), ("development", 0.08))

PROMPT_TEMPLATES = (
    "{subject} {action} in {setting}, {style}, {light}",
    "{style} of {subject} {action}, {setting} in the background",
    "product photo of {product} on {surface}, {light}, {camera}",
    "{product} floating above {surface}, minimalist studio shot, {light}",
    "hero banner for a blog post about {topic}: {subject} {action}, {style}",
    "flat vector icon of {product}, {palette} palette, white background",
    "a cozy {setting} at {time_of_day}, {style}, {light}",
    "portrait of {subject}, {camera}, {light}, shallow depth of field",
    "isometric illustration of {setting} with {subject} {action}, {palette} colors",
    "storyboard frame: {subject} {action} in {setting}, {time_of_day}, {style}",
    "seamless pattern of tiny {product}s, {palette} palette",
    'a poster that reads "{headline}" with {subject} {action}, {style}',
)
PROMPT_WORDS: dict[str, tuple[str, ...]] = {
    "subject": ("a red fox", "an astronaut", "a golden retriever puppy", "an elderly fisherman",
                "a robot barista", "two kids", "a paper-craft whale", "a lighthouse keeper",
                "a cyclist", "a snow leopard", "a street musician", "a tiny dragon",
                "a chef", "a hot-air balloon", "a koi fish", "a vintage car"),
    "action": ("reading a map", "drinking coffee", "watching the sunrise", "running through rain",
               "playing a violin", "building a sandcastle", "looking through a telescope",
               "painting a mural", "dancing", "sleeping on a windowsill", "flying a kite"),
    "setting": ("a neon-lit Tokyo alley", "a misty pine forest", "a sunlit Tuscan kitchen",
                "a floating island", "a Scandinavian living room", "a desert canyon",
                "an underwater city", "a rooftop garden", "a snowy mountain village",
                "a busy farmers market", "a retro diner", "a greenhouse full of ferns"),
    "style": ("watercolor illustration", "cinematic photograph", "studio Ghibli-inspired anime",
              "3D render", "oil painting", "pixel art", "minimalist line art", "claymation style",
              "35mm film photo", "vaporwave poster", "children's book illustration"),
    "light": ("golden hour light", "soft overcast light", "dramatic rim lighting",
              "neon glow", "candlelight", "harsh midday sun", "blue hour"),
    "camera": ("shot on an 85mm lens", "macro shot", "wide-angle shot", "overhead flat lay",
               "tilt-shift photo"),
    "product": ("ceramic coffee mug", "running shoe", "wireless earbud", "glass perfume bottle",
                "leather backpack", "smart watch", "scented candle", "skateboard deck",
                "water bottle", "desk lamp"),
    "surface": ("a marble countertop", "wet black sand", "a pastel pink backdrop",
                "a wooden workbench", "moss and stones", "a mirrored plinth"),
    "topic": ("remote work", "sustainable fashion", "home cooking", "personal finance",
              "mindfulness", "urban gardening", "AI in healthcare"),
    "palette": ("teal and orange", "pastel", "monochrome blue", "earthy", "bold primary"),
    "time_of_day": ("dawn", "noon", "dusk", "midnight"),
    "headline": ("Summer Sale", "Now Open", "Think Different Today", "Fresh Every Morning",
                 "Join the Beta"),
}  # fmt: skip
#: Prompts behind the content-policy rejections.
FLAGGED_PROMPTS = (
    "photorealistic image of a famous pop star holding our energy drink",
    "gory battle scene with severed limbs, hyper-detailed",
    "a real news photo of the president being arrested",
    "the logo of a well-known sports brand on our sneakers",
    "realistic photo of a bloody car crash for a safety campaign",
)
REVISED_PROMPT_ENDINGS = (
    "The composition is balanced, with rich textures and a sense of depth.",
    "Fine details are visible, and the colors are vibrant yet natural.",
    "The atmosphere is calm and inviting, captured with careful attention to light.",
    "Every element is rendered crisply, with a subtle film grain.",
)


# --- signed URLs, the way each host signs them -----------------------------------------------


def _stamp(moment: datetime) -> str:
    """An ISO time as a SAS query value carries it: seconds, `Z`, colons percent-encoded."""
    return moment.strftime("%Y-%m-%dT%H%%3A%M%%3A%SZ")


def _signature(rng: random.Random) -> str:
    return quote(base64.b64encode(rng.getrandbits(256).to_bytes(32, "big")).decode(), safe="")


def _azure_sas(
    rng: random.Random,
    start: datetime,
    expiry: datetime,
    key_expiry: datetime,
    version: str,
    content_type: str,
) -> str:
    """An Azure blob user-delegation SAS query, as OpenAI and BFL hand them out.

    Written out rather than urlencoded: a million URLs through urlencode cost minutes.
    """
    key_start = start - timedelta(hours=rng.randint(1, 20))
    return (
        f"st={_stamp(start - timedelta(minutes=5))}&se={_stamp(expiry)}&sp=r&sv={version}&sr=b"
        f"&rscd=inline&rsct={content_type.replace('/', '%2F')}"
        "&skoid=6aaadede-4fb3-4231-a8a6-63ade1d0f2a2&sktid=a48cca56-e6da-484e-a814-9c849652bcb3"
        f"&skt={_stamp(key_start)}&ske={_stamp(key_expiry)}&sks=b&skv={version}"
        f"&sig={_signature(rng)}"
    )


def _openai_blob(
    rng: random.Random, record_id: str, created: datetime, position: int
) -> tuple[str, datetime]:
    """OpenAI's dall-e URLs: a private blob signed for 60 minutes (key valid for a day)."""
    expiry = created.replace(microsecond=0) + timedelta(hours=1)
    key_expiry = expiry + timedelta(hours=rng.randint(12, 23))
    query = _azure_sas(rng, created, expiry, key_expiry, "2024-08-04", "image/png")
    path = f"private/{DEMO_ORG}/user-{record_id[:24]}/img-{record_id[8:32]}{position}.png"
    return f"https://oaidalleapiprodscus.blob.core.windows.net/{path}?{query}", expiry


def _azure_blob(
    rng: random.Random, record_id: str, created: datetime, position: int
) -> tuple[str, datetime]:
    """Azure OpenAI dall-e-3 results: a blob signed for 24 hours."""
    expiry = created.replace(microsecond=0) + timedelta(hours=24)
    query = _azure_sas(rng, created, expiry, expiry + timedelta(days=6), "2020-10-02", "image/png")
    return (
        f"https://dalleprodsec.blob.core.windows.net/private/images/{_uuid(record_id)}/"
        f"generated_{position:02d}.png?{query}",
        expiry,
    )


def _bfl(
    rng: random.Random, record_id: str, created: datetime, position: int
) -> tuple[str, datetime]:
    """BFL delivery URLs: an Azure SAS valid for 10 minutes."""
    expiry = created.replace(microsecond=0) + timedelta(minutes=10)
    query = _azure_sas(rng, created, expiry, expiry + timedelta(days=1), "2021-08-06", "image/jpeg")
    region = "eu1" if rng.random() < 0.6 else "us1"
    return (
        f"https://delivery-{region}.bfl.ai/results/{record_id[:2]}/{record_id[2:16]}/"
        f"{record_id[16:]}/sample.jpeg?{query}",
        expiry,
    )


def _s3(
    rng: random.Random, record_id: str, created: datetime, position: int
) -> tuple[str, datetime]:
    """S3 SigV4 presigned GET: X-Amz-Date plus X-Amz-Expires (one hour)."""
    signed = created.replace(microsecond=0)
    date = signed.strftime("%Y%m%d")
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F{date}%2Fus-west-2%2Fs3%2Faws4_request"
        f"&X-Amz-Date={signed.strftime('%Y%m%dT%H%M%SZ')}&X-Amz-Expires=3600"
        f"&X-Amz-SignedHeaders=host&X-Amz-Signature={rng.getrandbits(256):064x}"
    )
    return (
        f"https://together-ai-images.s3.us-west-2.amazonaws.com/images/{record_id}-{position}.jpg"
        f"?{query}",
        signed + timedelta(seconds=3600),
    )


def _replicate(
    rng: random.Random, record_id: str, created: datetime, position: int
) -> tuple[str, datetime]:
    """replicate.delivery: unsigned; Replicate deletes outputs after an hour."""
    token = base64.b32encode(bytes.fromhex(record_id)).decode().rstrip("=").lower()
    return (
        f"https://replicate.delivery/xezq/{token}/out-{position}.webp",
        created + timedelta(hours=1),
    )


def _xai(rng: random.Random, record_id: str, created: datetime, position: int) -> tuple[str, None]:
    """xAI image URLs: unsigned and with no published lifetime."""
    return f"https://imgen.x.ai/xai-imgen/xai-tmp-imgen-{_uuid(record_id)}-{position}.jpeg", None


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


UrlMaker = Callable[[random.Random, str, datetime, int], tuple[str, datetime | None]]
URL_MAKERS: dict[str, UrlMaker] = {
    "openai-blob": _openai_blob,
    "azure-blob": _azure_blob,
    "bfl": _bfl,
    "s3": _s3,
    "replicate": _replicate,
    "xai": _xai,
}
#: Deliveries whose expiry is in the URL's signature (`check --due` decides them offline).
SIGNED_DELIVERIES = frozenset({"openai-blob", "azure-blob", "bfl", "s3"})


# --- error bodies, as each provider writes them ----------------------------------------------


@dataclass(frozen=True)
class DemoError:
    http_status: int | None
    code: str
    message: str
    body: dict[str, Any] | None


def _openai_error(kind: str, spec: ModelSpec, rng: random.Random) -> DemoError:
    if kind == "policy":
        if spec.model.startswith("gpt-image"):
            code = "moderation_blocked"
            message = (
                "Your request was rejected by the safety system. If you believe this is an "
                "error, contact us at help.openai.com and include the request ID "
                f"req_{rng.getrandbits(128):032x}."
            )
        else:
            code = "content_policy_violation"
            message = (
                "Your request was rejected as a result of our safety system. Your prompt may "
                "contain text that is not allowed by our safety system."
            )
        return _openai_shaped(400, code, message, "invalid_request_error")
    if kind == "rate":
        limit = rng.choice((5, 7, 15, 50))
        message = (
            f"Rate limit exceeded for images per minute in organization {DEMO_ORG}. "
            f"Limit: {limit}/1min. Current: {limit + rng.randint(1, 4)}/1min. Please try again "
            "in 12s. Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        return _openai_shaped(429, "rate_limit_exceeded", message, "requests")
    return _openai_shaped(
        500,
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    )


def _openai_shaped(status: int, code: str, message: str, error_type: str) -> DemoError:
    body = {"error": {"code": code, "message": message, "param": None, "type": error_type}}
    return DemoError(status, code, message, body)


def _azure_error(kind: str, spec: ModelSpec, rng: random.Random) -> DemoError:
    if kind == "policy":
        message = "Your task failed as a result of our safety system."
        body = {
            "error": {
                "code": "contentFilter",
                "message": message,
                "inner_error": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_results": {
                        "hate": {"filtered": False, "severity": "safe"},
                        "self_harm": {"filtered": False, "severity": "safe"},
                        "sexual": {"filtered": False, "severity": "safe"},
                        "violence": {"filtered": True, "severity": "medium"},
                    },
                },
            }
        }
        return DemoError(400, "contentFilter", message, body)
    if kind == "rate":
        message = (
            "Requests to the Images_Generations_Create Operation under Azure OpenAI API version "
            "2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. "
            f"Please retry after {rng.randint(6, 60)} seconds."
        )
        return DemoError(429, "429", message, {"error": {"code": "429", "message": message}})
    message = "Backend returned unexpected response. Please contact Microsoft for help."
    body = {"error": {"code": "InternalServerError", "message": message}}
    return DemoError(500, "InternalServerError", message, body)


def _together_error(kind: str, spec: ModelSpec, rng: random.Random) -> DemoError:
    if kind == "policy":
        message = "Input prompt was flagged by the safety checker. Please revise your prompt."
        error_type = "invalid_request_error"
        status = 400
    elif kind == "rate":
        message = (
            f"You have reached the rate limit specific to this model {spec.model}. The maximum "
            "rate limit for this model is 6.0 queries per minute."
        )
        error_type = "model_rate_limit"
        status = 429
    else:
        message = "Internal server error"
        error_type = "server_error"
        status = 500
    body = {"id": f"{rng.getrandbits(64):016x}", "error": {"message": message, "type": error_type}}
    return DemoError(status, error_type, message, body)


def _replicate_error(kind: str, spec: ModelSpec, rng: random.Random) -> DemoError:
    if kind == "policy":
        # The prediction fails after it was accepted: no HTTP error, the SDK raises ModelError.
        message = "NSFW content detected. Try running it again, or try a different prompt."
        return DemoError(None, "ModelError", message, {"status": "failed", "error": message})
    if kind == "rate":
        detail = f"Request was throttled. Your rate limit resets in ~{rng.randint(2, 30)}s."
        body = {"title": "Request was throttled.", "detail": detail, "status": 429}
        return DemoError(429, "throttled", detail, body)
    detail = "Internal server error. Please try again."
    return DemoError(500, "internal_error", detail, {"title": "Internal Server Error",
                                                     "detail": detail, "status": 500})  # fmt: skip


def _bfl_error(kind: str, spec: ModelSpec, rng: random.Random) -> DemoError:
    if kind == "policy":
        message = "Request Moderated: the prompt was flagged by content moderation."
        return DemoError(None, "Request Moderated", message, {"status": "Request Moderated"})
    if kind == "rate":
        message = "You have exceeded the number of active tasks (24). Please wait and retry."
        return DemoError(429, "too_many_active_tasks", message, {"detail": message})
    message = "Internal Server Error"
    return DemoError(500, "internal_error", message, {"detail": message})


def _stability_error(kind: str, spec: ModelSpec, rng: random.Random) -> DemoError:
    name, status, message = {
        "policy": (
            "content_moderation",
            403,
            "Your request was flagged by our content moderation system, as a result your "
            "request was denied and you were not charged.",
        ),
        "rate": (
            "rate_limit_exceeded",
            429,
            "You have exceeded the rate limit of 150 requests within a 10 second period.",
        ),
        "server": ("internal_error", 500, "An unexpected server error occurred."),
    }[kind]
    body = {"id": f"{rng.getrandbits(128):032x}", "name": name, "errors": [message]}
    return DemoError(status, name, message, body)


def _google_error(kind: str, spec: ModelSpec, rng: random.Random) -> DemoError:
    status, code, message = {
        "policy": (
            400,
            "INVALID_ARGUMENT",
            "Image generation failed with the following error: The prompt could not be "
            "submitted. This prompt contains sensitive words that violate Google's Responsible "
            "AI practices. Try rephrasing the prompt.",
        ),
        "rate": (
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_"
            f"model with base model: {spec.model}. Please submit a quota increase request.",
        ),
        "server": (500, "INTERNAL", "Internal error encountered."),
    }[kind]
    return DemoError(
        status, code, message, {"error": {"code": status, "message": message, "status": code}}
    )


ERROR_MAKERS: dict[str, Callable[[str, ModelSpec, random.Random], DemoError]] = {
    "openai": _openai_error,
    "azure": _azure_error,
    "together": _together_error,
    "replicate": _replicate_error,
    "bfl": _bfl_error,
    "stability": _stability_error,
    "google": _google_error,
}
#: Error kinds and their shares among errors: policy rejections, rate limits, server errors.
ERROR_KINDS = (("policy", 0.45), ("rate", 0.35), ("server", 0.2))


# --- images: a pool of drawings, reused --------------------------------------------------------


class ImagePool:
    """Up to `variants` drawings per (width, height, format), each picked at random per image.

    The cost is bounded by the number of keys, not rows. A drawing depends only on the seed,
    its key and its index, so it is made once per process (`_drawing` is cached): loading the
    demo again, or in another database, draws nothing new.
    """

    def __init__(self, seed: int, variants: int) -> None:
        self._rng = random.Random(f"{seed}:pool")
        self._seed = seed
        self._variants = variants
        self._used: set[tuple[int, int, str, int]] = set()

    def facts(self, width: int, height: int, image_format: str) -> ImageFacts:
        index = self._rng.randrange(self._variants)
        self._used.add((width, height, image_format, index))
        return _drawing(self._seed, width, height, image_format, index)

    def __len__(self) -> int:
        """How many distinct drawings the images so far share."""
        return len(self._used)


def _credentials(spec: ModelSpec, record_id: str) -> dict[str, Any]:
    """What the recorder would have read of a manifest: OpenAI signs its images (one call in
    fifty arrives altered on the way, chosen by its id so the demo's random draws stay as
    they were), the other providers sign none."""
    if not spec.provider.endswith("openai"):
        return {"c2pa_state": Credentials.none.value}
    altered = int(record_id[:4], 16) % 50 == 0
    return {
        "c2pa_state": (Credentials.invalid if altered else Credentials.valid).value,
        "c2pa_issuer": "OpenAI",
        "c2pa_generator": "OpenAI API",
        "c2pa_actions_json": [
            {"action": "c2pa.created", "software_agent": spec.model, "source": TRAINED_SOURCE}
        ],
        "c2pa_error": "failed: assertion.dataHash.mismatch" if altered else None,
    }


@functools.lru_cache(maxsize=1024)
def _lookalike_columns(thumbnail: bytes) -> dict[str, Any]:
    """The perceptual hash of a drawing's thumbnail and its bands (the pool repeats drawings,
    so the demo's Gallery has look-alikes to group)."""
    phash = perceptual_hash(thumbnail)
    return {"phash": phash, **phash_bands(phash)}


@functools.lru_cache(maxsize=1024)
def _drawing(seed: int, width: int, height: int, image_format: str, index: int) -> ImageFacts:
    """The facts (and thumbnail, made by `make_thumbnail` as the recorder would) of a drawing."""
    rng = random.Random(f"{seed}:{width}x{height}:{image_format}:{index}")
    return make_thumbnail(draw_image(rng, width, height, image_format))


def draw_image(rng: random.Random, width: int, height: int, image_format: str) -> bytes:
    """A sky-to-ground gradient with a few shapes: cheap, and distinct as a thumbnail."""
    top, bottom = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
    strip = Image.new("RGB", (1, 256))
    strip.putdata(
        [
            tuple(t + (b - t) * y // 255 for t, b in zip(top, bottom, strict=True))
            for y in range(256)
        ]
    )
    image = strip.resize((width, height), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 7)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randint(min(width, height) // 12, min(width, height) // 3)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.polygon([(x, y), (x + r, y + r // 2), (x - r // 2, y + r)], fill=colour)
    out = BytesIO()
    if image_format == "PNG":
        image.save(out, "PNG", compress_level=1)
    elif image_format == "WEBP":
        image.save(out, "WEBP", quality=80, method=0)  # method 0: the fastest encoder
    else:
        image.save(out, image_format, quality=85)
    return out.getvalue()


# --- the calls ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoResult:
    """What `load_demo` wrote, and how fast."""

    generated: int  # calls made up
    inserted: int  # calls new to the log (a rerun with the same seed inserts none)
    images: int
    pool_images: int  # distinct drawings behind all the thumbnails
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        return (
            f"demo: {self.inserted} new calls ({self.generated} generated, {self.images} images, "
            f"{self.pool_images} drawings) in {self.seconds:.1f} s "
            f"= {self.rows_per_second:,.0f} calls/s"
        )


class DemoGenerator:
    """Makes demo CallRecords, deterministic for a seed and a `now`."""

    def __init__(self, *, seed: int, now: datetime, variants: int) -> None:
        self.rng = random.Random(seed)
        # Ids from their own stream: the other draws depend on `now` (a call's time decides
        # whether its URL is live), and a rerun with the same seed must make the same ids.
        self._id_rng = random.Random(f"{seed}:ids")
        self.now = now
        self.pool = ImagePool(seed, variants)
        self._spec_weights = list(itertools.accumulate(spec.weight for spec in CATALOGUE))
        self._users = [(team, user) for team, (users, _) in TEAMS.items() for user in users]
        self._env_names = [name for name, _ in ENVIRONMENTS]
        self._env_weights = [share for _, share in ENVIRONMENTS]

    def records(self, count: int) -> Iterator[CallRecord]:
        for _ in range(count):
            yield self.record()

    def record(self) -> CallRecord:
        rng = self.rng
        spec = rng.choices(CATALOGUE, cum_weights=self._spec_weights)[0]
        record_id = f"{self._id_rng.getrandbits(128):032x}"
        created = self._created_at()
        quality = rng.choice(spec.qualities)
        size = rng.choice(spec.sizes)
        n = rng.randint(1, spec.max_n) if spec.max_n > 1 and rng.random() < 0.3 else 1
        error = self._error(spec) if rng.random() < ERROR_SHARE else None
        prompt = rng.choice(FLAGGED_PROMPTS) if error and error[0] == "policy" else self._prompt()
        params = self._params(spec, size, quality, n)
        team, user = rng.choice(self._users)
        features = TEAMS[team][1]
        metadata: dict[str, Any] = {
            "team": team,
            "feature": rng.choice(features),
            "environment": rng.choices(self._env_names, self._env_weights)[0],
        }
        if spec.gateway:
            metadata["gateway"] = spec.gateway
        request = {"model": spec.model, "prompt": prompt, **params}
        fields: dict[str, Any] = {
            **_CALL_DEFAULTS,
            "id": record_id,
            "created_at": created,
            "provider": spec.provider,
            "model": spec.model,
            "operation": "generate",
            "prompt": prompt,
            "params": params,
            "user": f"{user}@acme.example" if not user.startswith("svc-") else user,
            "metadata": metadata,
            "request": request,
            "source": DEMO_SOURCE,
            "request_id": self._request_id(spec),
            "trace_id": _uuid(f"{rng.getrandbits(128):032x}") if spec.gateway else None,
        }
        if error:
            demo_error = error[1]
            fields.update(
                status=Status.error,
                error=f"{demo_error.code}: {demo_error.message}",
                http_status=demo_error.http_status,
                latency_ms=self._error_latency(spec, error[0], quality),
                response=demo_error.body,
                images=[],
            )
        else:
            latency_ms = self._latency(spec, quality)
            images = self._images(spec, record_id, created, size, n, latency_ms)
            revised = self._revised(prompt) if spec.revised_prompt else None
            fields.update(
                status=Status.ok,
                http_status=200,
                latency_ms=latency_ms,
                revised_prompt=revised,
                usage=self._usage(prompt, quality, size, n) if spec.token_usage else None,
                response=self._response(created, images, revised),
                images=images,
            )
        # Built without validation: every value above is already of the validated type, and
        # validating a million demo rows would cost more than writing them.
        return CallRecord.model_construct(**fields)

    def _created_at(self) -> datetime:
        """Busier on working hours and weekdays; a small burst in the last hour."""
        rng = self.rng
        if rng.random() < LAST_HOUR_SHARE:
            return self.now - timedelta(seconds=rng.uniform(5, 3600))
        while True:
            moment = self.now - timedelta(seconds=rng.uniform(0, DEMO_DAYS * 86_400))
            weight = _HOUR_WEIGHTS[moment.hour] * (0.45 if moment.weekday() >= 5 else 1.0)
            if rng.random() < weight:
                return moment

    def _prompt(self) -> str:
        rng = self.rng
        template, slots = rng.choice(_TEMPLATE_SLOTS)
        return template.format(**{slot: rng.choice(PROMPT_WORDS[slot]) for slot in slots})

    def _revised(self, prompt: str) -> str:
        return f"{prompt[0].upper()}{prompt[1:]}. {self.rng.choice(REVISED_PROMPT_ENDINGS)}"

    def _params(self, spec: ModelSpec, size: str, quality: str | None, n: int) -> dict[str, Any]:
        params: dict[str, Any] = {"size": size, "n": n}
        if quality is not None:
            params["quality"] = quality
        for name, choices in spec.extra_params.items():
            params[name] = self.rng.choice(choices)
        if spec.delivery != "b64" and spec.openai_api:
            params["response_format"] = "url"
        if spec.provider in ("replicate", "bfl", "together"):
            params["seed"] = self.rng.randrange(2**31)
        return params

    def _request_id(self, spec: ModelSpec) -> str | None:
        rng = self.rng
        if spec.provider in ("openai", "xai"):
            return f"req_{rng.getrandbits(128):032x}"
        if spec.provider in ("azure-openai", "bfl"):
            return _uuid(f"{rng.getrandbits(128):032x}")
        if spec.provider == "replicate":
            return base64.b32encode(rng.getrandbits(130).to_bytes(17, "big")).decode()[:26].lower()
        if spec.provider == "together":
            return f"{rng.getrandbits(64):016x}-IAD"
        return None

    def _error(self, spec: ModelSpec) -> tuple[str, DemoError]:
        kind = self.rng.choices([k for k, _ in ERROR_KINDS], [w for _, w in ERROR_KINDS])[0]
        return kind, ERROR_MAKERS[spec.errors](kind, spec, self.rng)

    def _latency(self, spec: ModelSpec, quality: str | None) -> float:
        low, high = spec.latency_s[quality]
        # Mostly inside the typical range, with the long tail real services have.
        seconds = self.rng.uniform(low, high)
        if self.rng.random() < 0.05:
            seconds *= self.rng.uniform(1.3, 2.5)
        return round(seconds * 1000, 1)

    def _error_latency(self, spec: ModelSpec, kind: str, quality: str | None) -> float:
        if kind == "server":  # fails after working on it for a while
            return round(self._latency(spec, quality) * self.rng.uniform(0.3, 1.0), 1)
        return round(self.rng.uniform(0.15, 1.2) * 1000, 1)

    def _usage(self, prompt: str, quality: str | None, size: str, n: int) -> dict[str, Any]:
        text_tokens = max(1, len(prompt) // 4)
        output = GPT_IMAGE_OUTPUT_TOKENS[(quality or "medium", size)] * n
        return {
            "input_tokens": text_tokens,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": text_tokens},
            "output_tokens": output,
            "total_tokens": text_tokens + output,
        }

    def _response(
        self, created: datetime, images: list[ImageRecord], revised: str | None
    ) -> dict[str, Any]:
        data: list[dict[str, Any]] = []
        for image in images:
            item: dict[str, Any] = {"url": image.url} if image.url else {"b64_json": "<omitted>"}
            if revised:
                item["revised_prompt"] = revised
            data.append(item)
        return {"created": int(created.timestamp()), "data": data}

    def _images(
        self,
        spec: ModelSpec,
        record_id: str,
        created: datetime,
        size: str,
        n: int,
        latency_ms: float,
    ) -> list[ImageRecord]:
        width, height = (int(side) for side in size.split("x"))
        fetched_at = created + timedelta(milliseconds=latency_ms + self.rng.uniform(200, 1500))
        images = []
        for position in range(n):
            facts = self.pool.facts(width, height, spec.image_format)
            # A demo call is not judged yet (`_IMAGE_DEFAULTS` holds no list of its own).
            image: dict[str, Any] = {**_IMAGE_DEFAULTS, **facts.columns(), "reviews": []}
            image.update(_lookalike_columns(facts.thumbnail), **_credentials(spec, record_id))
            if spec.delivery != "b64":
                url, expires_at = URL_MAKERS[spec.delivery](self.rng, record_id, created, position)
                image.update(
                    url=url,
                    expires_at=expires_at,
                    **self._url_state(spec.delivery, expires_at, fetched_at),
                )
            else:
                image.update(url_state=UrlState.none.value)
            images.append(ImageRecord.model_construct(**image))
        return images

    def _url_state(
        self, delivery: str, expires_at: datetime | None, fetched_at: datetime
    ) -> dict[str, Any]:
        """The URL columns the recorder's fetch and the simulated sweeps left on this URL."""
        live = {
            "url_state": UrlState.live.value,
            "last_checked_at": fetched_at,
            "last_http_status": 200,
        }
        if expires_at is None or expires_at > self.now:
            return live
        last_sweep = self.now - LAST_SWEEP_AGO
        if delivery in SIGNED_DELIVERIES:
            if expires_at > last_sweep:
                return live  # lapsed since the last sweep: the next read sweeps it
            # The first sweep after the lapse saw the signed expiry pass: a prediction.
            swept_at = last_sweep - ((last_sweep - expires_at) // SWEEP_EVERY) * SWEEP_EVERY
            return {
                "url_state": UrlState.expired.value,
                "last_checked_at": swept_at,
                "last_error_code": SIGNATURE_EXPIRED,
            }
        # A probe soon after the host's known lifetime found it gone.
        probed_at = min(self.now, expires_at + timedelta(minutes=self.rng.uniform(1, 30)))
        return {
            "url_state": UrlState.expired.value,
            "last_checked_at": probed_at,
            "last_http_status": 404,
        }


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Every field's plain default: `model_construct` given all fields skips its slow path."""
    return {
        name: None if info.default is PydanticUndefined else info.default
        for name, info in model.model_fields.items()
    }


_CALL_DEFAULTS = _defaults(CallRecord)
_IMAGE_DEFAULTS = _defaults(ImageRecord)
_TEMPLATE_SLOTS = tuple(
    (template, tuple(slot for _, slot, _, _ in string.Formatter().parse(template) if slot))
    for template in PROMPT_TEMPLATES
)

#: Relative traffic by UTC hour: a European and an American working day overlapping.
_HOUR_WEIGHTS = (
    0.25, 0.2, 0.15, 0.12, 0.12, 0.15, 0.3, 0.55, 0.8, 0.95, 1.0, 1.0,
    0.95, 1.0, 1.0, 0.95, 0.9, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.3,
)  # fmt: skip


def pool_variants(count: int) -> int:
    """Drawings per (width, height, format) for `count` calls: a few hundred in all at most."""
    return max(MIN_VARIANTS, min(MAX_VARIANTS, count // CALLS_PER_VARIANT))


def load_demo(
    engine: Engine,
    count: int = 2_000,
    seed: int = 0,
    *,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    on_progress: Progress | None = None,
) -> DemoResult:
    """Write `count` demo calls spread over the last DEMO_DAYS days (before `now`).

    The same seed and `now` give the same calls (and ids: a rerun inserts nothing new).
    Progress counts the calls written.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    started = time.perf_counter()
    generator = DemoGenerator(seed=seed, now=now or utcnow(), variants=pool_variants(count))
    before = count_calls(engine)
    images = 0
    batch: list[CallRecord] = []
    written = 0
    report = on_progress or no_progress
    report(written, count)
    for record in generator.records(count):
        batch.append(record)
        images += len(record.images)
        if len(batch) >= batch_size:
            written += insert_calls(engine, batch)
            report(written, count)
            batch = []
    written += insert_calls(engine, batch)
    report(written, count)
    return DemoResult(
        generated=count,
        inserted=count_calls(engine) - before,
        images=images,
        pool_images=len(generator.pool),
        seconds=time.perf_counter() - started,
    )
