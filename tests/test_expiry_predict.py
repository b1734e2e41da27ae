"""predict_expiry on anonymised real URL shapes: the signed expiry, else the provider's lifetime,
else nothing. No network anywhere in this file."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from store.expiry import PROVIDER_LIFETIME, predict_expiry
from store.expiry.lifetimes import LIFETIMES_ENV, LifetimesError, parse_duration

CREATED = datetime(2024, 3, 5, 9, 14, 27, tzinfo=UTC)

OPENAI_DALLE = (
    "https://oaidalleapiprodscus.blob.core.windows.net/private/org-AbCdEfGh12345678/"
    "user-ZyXwVu98765432/img-Q1w2E3r4T5y6U7i8O9p0.png?st=2024-03-05T08%3A14%3A27Z"
    "&se=2024-03-05T10%3A14%3A27Z&sp=r&sv=2021-08-06&sr=b&rscd=inline&rsct=image/png"
    "&skoid=6aaadede-4fb3-4698-a8f6-684d7786b067&sktid=a48cca56-e6da-484e-a814-9c849652bcb3"
    "&skt=2024-03-04T22%3A50%3A51Z&ske=2024-03-05T22%3A50%3A51Z&sks=b&skv=2021-08-06"
    "&sig=AbC%2BdEfGhIjKlMnOpQrStUvWxYz0123456789/AbCd%3D"
)
# The same shape whose user-delegation key (ske) runs out before the SAS itself (se).
OPENAI_DALLE_KEY_FIRST = OPENAI_DALLE.replace(
    "ske=2024-03-05T22%3A50%3A51Z", "ske=2024-03-05T09%3A50%3A00Z"
)
AZURE_OPENAI = (
    "https://dalleproduse.blob.core.windows.net/private/images/1f2e3d4c-5b6a-4789-8a9b-"
    "0c1d2e3f4a5b/generated_00.png?se=2024-03-06T09%3A14%3A27Z&sig=XyZ%2B1234567890abc%3D"
    "&ske=2024-03-12T08%3A02%3A11Z&skoid=09ba021e-c417-441c-b203-c81e5dcd7b7f&sks=b"
    "&skt=2024-03-05T08%3A02%3A11Z&sktid=33e01921-4d64-4f8c-a055-5bdaffd5e33d&skv=2020-10-02"
    "&sp=r&spr=https&sr=b&sv=2020-10-02"
)
BFL = (
    "https://delivery-eu1.bfl.ai/results/7a/1234567890abcd/0abcdef1234567890abcdef123456789/"
    "sample.jpeg?se=2024-03-05T09%3A24%3A27Z&sp=r&sv=2024-11-04&sr=b&rsct=image/jpeg"
    "&sig=AbCdEfGhIjKlMnOp%2BqRsTuVwXyZ%3D"
)
S3_SIGV4 = (
    "https://gen-outputs.s3.us-west-2.amazonaws.com/images/0f1e2d3c.png"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLEEXAMPLE7Q%2F20240305%2Fus-west-2%2Fs3%2Faws4_request"
    "&X-Amz-Date=20240305T091427Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=6d2f6c1b0e4a9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a493827160"
)
S3_SIGV2 = (
    "https://gen-outputs.s3.amazonaws.com/images/0f1e2d3c.png?AWSAccessKeyId=AKIAEXAMPLE7Q"
    "&Expires=1709633667&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D"
)
GCS_V2 = (
    "https://storage.googleapis.com/gen-outputs/images/0f1e2d3c.png"
    "?GoogleAccessId=signer%40project.iam.gserviceaccount.com&Expires=1709633667"
    "&Signature=BCl7bV3%2Fu4KqQ0uFd9zF%2FwQ%3D%3D"
)
GCS_V4 = (
    "https://storage.googleapis.com/gen-outputs/images/0f1e2d3c.png"
    "?X-Goog-Algorithm=GOOG4-RSA-SHA256"
    "&X-Goog-Credential=signer%40project.iam.gserviceaccount.com%2F20240305%2Fauto%2Fstorage"
    "%2Fgoog4_request&X-Goog-Date=20240305T091427Z&X-Goog-Expires=900"
    "&X-Goog-SignedHeaders=host&X-Goog-Signature=3b1f0e7d9c2a4b5e6f708192a3b4c5d6e7f80912"
)
CLOUDFRONT_CANNED = (
    "https://d111111abcdef8.cloudfront.net/images/0f1e2d3c.png?Expires=1709633667"
    "&Signature=nitfHRCrtziwO2HwPfWw~yYDhUF5EwRunQA-j19DzZrvDh6hQ73lDx~-ar3UocvvRQVw6EkC~GdpGQyyO"
    "&Key-Pair-Id=K2JCJMDEHXQW5F"
)
CLOUDFRONT_POLICY = (
    "https://d111111abcdef8.cloudfront.net/images/0f1e2d3c.png?Policy="
    "eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIjoiaHR0cHM6Ly9kMTExMTExYWJjZGVmOC5jbG91ZGZyb250Lm5ldC9p"
    "bWFnZXMvKiIsIkNvbmRpdGlvbiI6eyJEYXRlTGVzc1RoYW4iOnsiQVdTOkVwb2NoVGltZSI6MTcwOTYzMzY2N30s"
    "IklwQWRkcmVzcyI6eyJBV1M6U291cmNlSXAiOiIxOTIuMC4yLjAvMjQifX19XX0_"
    "&Signature=nitfHRCrtziwO2HwPfWw~yYDhUF5EwRunQA-j19DzZrvDh6hQ73lDx~-ar3Uocvv"
    "&Key-Pair-Id=K2JCJMDEHXQW5F"
)
IDEOGRAM = (
    "https://ideogram.ai/api/images/ephemeral/AbCdEfGhIjKlMnOpQrSt.png?exp=1709716467"
    "&sig=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)
JWT = (
    "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiZ2VuXzAxSFEiLCAiZXhwIjogMTcwOTcyMDA2N30"
    ".Zm9vYmFyc2lnbmF0dXJl"
)
TOGETHER_IMGPROXY = (
    "https://api.together.ai/imgproxy/3YhbVw0Xk4y1s9lUxX0Hq0c1H1nqgM8XbZyw5yJXw9Y/format:jpeg/"
    "aHR0cHM6Ly90b2dldGhlci1haS1iZmwtaW1hZ2VzLXByb2QuczMudXMtd2VzdC0yLmFtYXpvbmF3cy5jb20vaW1hZ2"
    "VzLzBmMWUyZDNjNGI1YTY5Nzg4Nzk2YTViNGMzZDJlMWYwLmpwZWc_WC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1T"
    "SEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lBRVhBTVBMRUVYQU1QTEU3USUyRjIwMjQwMzA1JTJGdXMtd2VzdC0yJT"
    "JGczMlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI0MDMwNVQwOTE0MjdaJlgtQW16LUV4cGlyZXM9MzYwMCZY"
    "LUFtei1TaWduZWRIZWFkZXJzPWhvc3QmWC1BbXotU2lnbmF0dXJlPTZkMmY2YzFiMGU0YTlmOGU3ZDZjNWI0YTM5Mj"
    "gxNzA2ZjVlNGQzYzJiMWEwZjllOGQ3YzZiNWE0OTM4MjcxNjA"
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "provider", "expires_at", "source"),
    [
        pytest.param(
            OPENAI_DALLE, "openai", at("2024-03-05T10:14:27"), "azure-sas", id="openai-dalle-se"
        ),
        pytest.param(
            OPENAI_DALLE_KEY_FIRST,
            "openai",
            at("2024-03-05T09:50:00"),
            "azure-sas",
            id="azure-ske-first",
        ),
        pytest.param(
            AZURE_OPENAI, "azure-openai", at("2024-03-06T09:14:27"), "azure-sas", id="azure-openai"
        ),
        pytest.param(BFL, "bfl", at("2024-03-05T09:24:27"), "azure-sas", id="bfl-delivery"),
        pytest.param(S3_SIGV4, "together", at("2024-03-05T10:14:27"), "s3-sigv4", id="s3-sigv4"),
        pytest.param(S3_SIGV2, "custom", at("2024-03-05T10:14:27"), "s3-sigv2", id="s3-sigv2"),
        pytest.param(GCS_V2, "google", at("2024-03-05T10:14:27"), "gcs-v2", id="gcs-v2"),
        pytest.param(GCS_V4, "google", at("2024-03-05T09:29:27"), "gcs-v4", id="gcs-v4"),
        pytest.param(
            CLOUDFRONT_CANNED,
            "custom",
            at("2024-03-05T10:14:27"),
            "cloudfront",
            id="cloudfront-canned",
        ),
        pytest.param(
            CLOUDFRONT_POLICY,
            "custom",
            at("2024-03-05T10:14:27"),
            "cloudfront-policy",
            id="cloudfront-policy",
        ),
        pytest.param(
            IDEOGRAM, "ideogram", at("2024-03-06T09:14:27"), "exp-param", id="ideogram-exp"
        ),
        pytest.param(
            f"https://cdn.gen.example/out/1.png?_jwt={JWT}",
            "x",
            at("2024-03-06T10:14:27"),
            "jwt-exp",
            id="jwt-in-_jwt",
        ),
        pytest.param(
            f"https://cdn.gen.example/out/1.png?token={JWT}",
            "x",
            at("2024-03-06T10:14:27"),
            "jwt-exp",
            id="jwt-in-token",
        ),
        pytest.param(
            TOGETHER_IMGPROXY,
            "together",
            at("2024-03-05T10:14:27"),
            "imgproxy+s3-sigv4",
            id="together-imgproxy",
        ),
    ],
)
def test_signed_url_expiry_is_read_from_the_url(url, provider, expires_at, source):
    prediction = predict_expiry(url, provider, CREATED)

    assert prediction is not None
    assert (prediction.expires_at, prediction.source) == (expires_at, source)
    assert prediction.expires_at.tzinfo is not None
    assert prediction.is_signed


def test_a_signed_expiry_wins_over_the_provider_lifetime():
    # BFL's lifetime is 10 min; this URL's SAS says 30 min, and the host enforces the SAS.
    url = BFL.replace("se=2024-03-05T09%3A24%3A27Z", "se=2024-03-05T09%3A44%3A27Z")

    prediction = predict_expiry(url, "bfl", CREATED)

    assert prediction is not None
    assert (prediction.expires_at, prediction.source) == (at("2024-03-05T09:44:27"), "azure-sas")


@pytest.mark.parametrize(
    ("url", "provider", "lifetime"),
    [
        ("https://replicate.delivery/xezq/AbCdEf0123/out-0.webp", "replicate", timedelta(hours=1)),
        # A host match wins over whatever provider name a gateway recorded.
        ("https://pbxt.replicate.delivery/AbCdEf0123/out-0.png", "portkey", timedelta(hours=1)),
        ("https://delivery-us1.bfl.ai/results/ab/cd/sample.jpeg", "bfl", timedelta(minutes=10)),
        ("https://cdn.unlisted.example/out.png", "openai", timedelta(hours=1)),
        ("https://cdn.unlisted.example/out.png", "Azure-OpenAI", timedelta(hours=24)),
        ("https://cdn.unlisted.example/out.png", "together", timedelta(hours=1)),
        ("https://cdn.unlisted.example/out.png", "ideogram", timedelta(hours=24)),
    ],
)
def test_unsigned_url_gets_the_providers_known_lifetime_from_the_call_time(url, provider, lifetime):
    prediction = predict_expiry(url, provider, CREATED)

    assert prediction is not None
    assert prediction.expires_at == CREATED + lifetime
    assert prediction.source == PROVIDER_LIFETIME
    assert not prediction.is_signed


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://v3.fal.media/files/lion/AbCdEf.png", "fal"),  # lifetime is per account
        ("https://imgen.x.ai/xai-imgen/xai-tmp-imgen-1234.jpeg", "xai"),
        # An Expires= or exp= without any signature is enforced by nobody.
        ("https://cdn.unlisted.example/out.png?Expires=1709633667", "unlisted"),
        ("https://cdn.unlisted.example/out.png?exp=1709633667", "unlisted"),
        # A SAS whose se is not a time, and a JWT that is not one.
        ("https://cdn.unlisted.example/out.png?se=tomorrow&sig=abc", "unlisted"),
        ("https://cdn.unlisted.example/out.png?token=abc.def.ghi", "unlisted"),
    ],
)
def test_unknown_expiry_is_none_never_a_guess(url, provider):
    assert predict_expiry(url, provider, CREATED) is None


def test_a_naive_call_time_is_taken_as_utc():
    prediction = predict_expiry(
        "https://replicate.delivery/x/out-0.webp", "replicate", CREATED.replace(tzinfo=None)
    )

    assert prediction is not None
    assert prediction.expires_at == CREATED + timedelta(hours=1)


def test_a_users_lifetimes_file_extends_and_overrides_the_table(tmp_path, monkeypatch):
    table = tmp_path / "lifetimes.toml"
    table.write_text(
        '[fal]\nlifetime = "7d"\nhosts = ["*.fal.media"]\n\n'
        '[replicate]\nlifetime = "30m"\nhosts = ["replicate.delivery"]\n'
    )
    monkeypatch.setenv(LIFETIMES_ENV, str(table))

    fal = predict_expiry("https://v3.fal.media/files/lion/AbCdEf.png", "fal", CREATED)
    replicate = predict_expiry("https://replicate.delivery/x/out-0.webp", "replicate", CREATED)
    bfl = predict_expiry("https://delivery-eu1.bfl.ai/r/sample.jpeg", "bfl", CREATED)

    assert fal is not None and fal.expires_at == CREATED + timedelta(days=7)
    assert replicate is not None and replicate.expires_at == CREATED + timedelta(minutes=30)
    assert bfl is not None and bfl.expires_at == CREATED + timedelta(minutes=10)  # untouched


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[fal]\nlifetime = "soon"\n', "[fal]: not a duration: 'soon'"),
        ("[fal]\nhosts = []\n", "[fal]: lifetime is missing"),
        ('[fal\nlifetime = "1h"\n', "not valid TOML"),
        ('[fal]\nlifetime = "1h"\nhosts = "fal.media"\n', "[fal]: expected a list of strings"),
    ],
)
def test_a_bad_lifetimes_file_fails_with_a_message_naming_it(
    tmp_path, monkeypatch, content, message
):
    table = tmp_path / "bad.toml"
    table.write_text(content)
    monkeypatch.setenv(LIFETIMES_ENV, str(table))

    with pytest.raises(LifetimesError) as raised:
        predict_expiry("https://v3.fal.media/files/x.png", "fal", CREATED)

    assert str(table) in str(raised.value)
    assert message in str(raised.value)


def test_a_missing_lifetimes_file_is_an_error_not_a_silent_default(tmp_path, monkeypatch):
    monkeypatch.setenv(LIFETIMES_ENV, str(tmp_path / "nowhere.toml"))

    with pytest.raises(LifetimesError, match="cannot read"):
        predict_expiry("https://replicate.delivery/x/out-0.webp", "replicate", CREATED)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("24h", 86400), ("1.5h", 5400), ("7d", 604800), (3600, 3600)],
)
def test_durations_read_with_their_unit(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0", "-5m", "1w", True, "h"])
def test_nonsense_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def _jwt_with(claims: str) -> str:
    header = base64.urlsafe_b64encode(b'{"alg": "HS256"}').decode().rstrip("=")
    body = base64.urlsafe_b64encode(claims.encode()).decode().rstrip("=")
    return f"{header}.{body}.c2lnbmF0dXJl"


def test_a_jwt_exp_with_a_fraction_is_read():
    token = _jwt_with('{"exp": 1709720067.25}')
    url = f"https://cdn.gen.example/out/1.png?token={token}"

    prediction = predict_expiry(url, "x", CREATED)

    assert prediction is not None and prediction.source == "jwt-exp"
    assert prediction.expires_at == at("2024-03-06T10:14:27.250000")


@pytest.mark.parametrize("exp", ['"1709720067"', "true", "1e400", "null"])
def test_a_jwt_exp_that_is_not_a_number_gives_no_signed_prediction(exp):
    token = _jwt_with('{"exp": ' + exp + "}")
    url = f"https://cdn.gen.example/out/1.png?token={token}"

    prediction = predict_expiry(url, "x", CREATED)

    assert prediction is None or prediction.source != "jwt-exp"


def test_an_azure_sas_start_time_is_kept_as_not_before():
    prediction = predict_expiry(OPENAI_DALLE, "openai", CREATED)

    assert prediction is not None
    assert prediction.not_before == at("2024-03-05T08:14:27")
