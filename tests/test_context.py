"""Call context (provider, user, metadata) on every way in: client arguments, `recorder.context()`
across threads and asyncio tasks, `x-imagelog-*` headers and Portkey's metadata, against the
loopback OpenAI stand-in, with the precedence `store.capture.context` documents."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from store.queries.export import iter_records
from store.queries.filters import LogFilter
from tests.test_transport import API_KEY, generations

GENERATIONS_PATH = "/images/generations"


def client_for(recorder, openai_api, **context) -> OpenAI:
    return OpenAI(
        base_url=openai_api.v1, api_key=API_KEY, http_client=recorder.httpx_client(**context)
    )


def by_prompt(recorder) -> dict[str, dict]:
    return {row["prompt"]: row for row in generations(recorder)}


def test_client_arguments_give_every_call_its_provider_user_and_metadata(recorder, openai_api):
    client = client_for(
        recorder, openai_api, provider="openai", user="svc-ads", metadata={"team": "ads"}
    )

    client.images.generate(model="dall-e-3", prompt="from the client", size="1024x1024")

    [row] = generations(recorder)
    assert (row["provider"], row["user_id"]) == ("openai", "svc-ads")
    assert row["metadata_json"]["team"] == "ads"
    assert row["metadata_json"]["host"] == "127.0.0.1"  # imagelog's own keys stay beside
    assert row["cost_usd"] == pytest.approx(0.04)  # priced as the provider it was said to be


def test_context_block_holds_for_its_thread_only_and_nested_blocks_merge(recorder, openai_api):
    client = client_for(recorder, openai_api, user="client-user", metadata={"team": "base"})
    both_inside = threading.Barrier(2)

    def call(user: str, feature: str) -> None:
        with recorder.context(user=user, metadata={"feature": feature}):
            both_inside.wait(timeout=10)  # the two blocks are open at the same time
            with recorder.context(metadata={"step": "inner"}):
                client.images.generate(prompt=f"by {user}")

    threads = [threading.Thread(target=call, args=(u, f)) for u, f in (("ann", "a"), ("bob", "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    client.images.generate(prompt="outside")

    rows = by_prompt(recorder)
    assert rows["by ann"]["user_id"] == "ann"
    assert rows["by bob"]["user_id"] == "bob"
    assert {k: rows["by bob"]["metadata_json"][k] for k in ("team", "feature", "step")} == {
        "team": "base",
        "feature": "b",
        "step": "inner",
    }
    assert rows["outside"]["user_id"] == "client-user"
    assert "feature" not in rows["outside"]["metadata_json"]


def test_context_holds_in_each_asyncio_task(recorder, openai_api):
    async def main() -> None:
        async with AsyncOpenAI(
            base_url=openai_api.v1, api_key=API_KEY, http_client=recorder.async_httpx_client()
        ) as client:

            async def call(user: str) -> None:
                with recorder.context(user=user, metadata={"task": user}):
                    await asyncio.sleep(0.01)  # the other task runs inside its own block
                    await client.images.generate(prompt=f"task {user}")

            await asyncio.gather(call("t1"), call("t2"), call("t3"))

    asyncio.run(main())

    rows = by_prompt(recorder)
    for user in ("t1", "t2", "t3"):
        assert rows[f"task {user}"]["user_id"] == user
        assert rows[f"task {user}"]["metadata_json"]["task"] == user


def test_imagelog_headers_are_honoured_and_never_leave(recorder, openai_api):
    client = client_for(recorder, openai_api, provider="client-said", user="client-user")

    with recorder.context(user="block-user", metadata={"team": "block", "feature": "f"}):
        client.images.generate(
            model="dall-e-3",
            prompt="with headers",
            extra_headers={
                "X-Imagelog-User": "header-user",
                "x-imagelog-provider": "openai",
                "x-imagelog-metadata": json.dumps({"team": "header", "batch": 7}),
            },
        )
        client.models.list()  # not recorded, but its headers are stripped too

    [row] = generations(recorder)
    assert (row["provider"], row["user_id"]) == ("openai", "header-user")
    metadata = row["metadata_json"]
    assert (metadata["team"], metadata["feature"], metadata["batch"]) == ("header", "f", 7)
    assert "x-imagelog-user" not in row["request_json"]["headers"]
    for sent in openai_api.requests[-2:]:
        assert not [name for name in sent.headers if name.lower().startswith("x-imagelog-")]


def test_the_body_user_is_narrower_than_a_block_but_not_than_a_header(recorder, openai_api):
    client = client_for(recorder, openai_api)

    with recorder.context(user="block-user"):
        client.images.generate(prompt="body", user="body-user")
        client.images.generate(
            prompt="header", user="body-user", extra_headers={"x-imagelog-user": "header-user"}
        )

    rows = by_prompt(recorder)
    assert rows["body"]["user_id"] == "body-user"
    assert rows["header"]["user_id"] == "header-user"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ('["a", "list"]', "not a JSON object"),
        ("{not json", "not JSON"),
        ('{"x": NaN}', "not JSON"),
        (json.dumps({"pad": "x" * 9000}), "longer than 8192 bytes"),
        (json.dumps({f"k{i}": i for i in range(65)}), "more than 64 keys"),
        ('{"a": ' + "[" * 3000 + "]" * 3000 + "}", "not JSON"),
    ],
)
def test_a_hostile_metadata_header_is_ignored_and_said_why(recorder, openai_api, header, reason):
    client = client_for(recorder, openai_api, metadata={"team": "kept"})

    client.images.generate(prompt="hostile", extra_headers={"x-imagelog-metadata": header})

    [row] = generations(recorder)
    assert row["status"] == "ok"
    assert row["metadata_json"]["team"] == "kept"
    [error] = row["metadata_json"]["context_errors"]
    assert error.startswith("x-imagelog-metadata ignored: ") and reason in error
    assert "x-imagelog-metadata" not in openai_api.requests[-1].headers


def test_caller_metadata_cannot_replace_what_imagelog_observed(recorder, openai_api):
    client = client_for(recorder, openai_api, metadata={"host": "forged", "team": "ads"})

    client.images.generate(
        prompt="forged", extra_headers={"x-imagelog-metadata": '{"user_agent": "forged"}'}
    )

    [row] = generations(recorder)
    assert row["metadata_json"]["host"] == "127.0.0.1"
    assert row["metadata_json"]["user_agent"].startswith("OpenAI/Python")
    assert row["metadata_json"]["team"] == "ads"


def test_portkey_metadata_is_flattened_so_tag_and_user_filters_find_it(recorder, openai_api):
    client = OpenAI(
        base_url=openai_api.v1,
        api_key=API_KEY,
        default_headers={
            "x-portkey-provider": "openai",
            "x-portkey-metadata": json.dumps({"_user": "pk-user-7", "team": "ads", "env": "prod"}),
        },
        http_client=recorder.httpx_client(),
    )

    client.images.generate(model="dall-e-3", prompt="portkey metadata")

    [row] = generations(recorder)
    assert row["user_id"] == "pk-user-7"
    assert (row["metadata_json"]["team"], row["metadata_json"]["env"]) == ("ads", "prod")
    assert "_user" not in row["metadata_json"]
    [found] = iter_records(recorder.engine, LogFilter(tag="team=ads", user="pk-user-7"))
    assert found.id == row["id"]


def test_track_takes_the_blocks_context_under_its_own_arguments(recorder):
    with recorder.context(user="block-user", metadata={"team": "ads", "feature": "x"}):
        with recorder.track(provider="replicate", model="flux", prompt="tracked"):
            pass
        with recorder.track(
            provider="replicate", prompt="own", user="own-user", metadata={"feature": "own"}
        ):
            pass

    with recorder.context(provider="fal"), recorder.track(prompt="provider from the block"):
        pass
    with pytest.raises(TypeError, match="needs a provider"):
        recorder.track(prompt="no provider anywhere")

    rows = by_prompt(recorder)
    assert rows["provider from the block"]["provider"] == "fal"
    assert rows["tracked"]["user_id"] == "block-user"
    assert rows["tracked"]["metadata_json"] == {"team": "ads", "feature": "x"}
    assert rows["own"]["user_id"] == "own-user"
    assert rows["own"]["metadata_json"] == {"team": "ads", "feature": "own"}


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"metadata": ["not", "a", "mapping"]}, TypeError),
        ({"metadata": {"when": object()}}, ValueError),
        ({"metadata": {"x": float("nan")}}, ValueError),
        ({"user": 42}, TypeError),
    ],
)
def test_bad_context_arguments_raise_when_given(recorder, arguments, error):
    with pytest.raises(error):
        recorder.httpx_client(**arguments)
    with pytest.raises(error), recorder.context(**arguments):
        pass


def test_headers_are_removed_from_requests_the_sdk_does_not_make(recorder, openai_api):
    with recorder.httpx_client() as http:
        response = http.post(
            openai_api.v1 + GENERATIONS_PATH,
            json={"prompt": "raw httpx"},
            headers={"x-imagelog-user": "raw-user", "Authorization": f"Bearer {API_KEY}"},
        )

    assert response.status_code == 200
    assert "x-imagelog-user" not in openai_api.requests[-1].headers
    [row] = generations(recorder)
    assert row["user_id"] == "raw-user"
    assert isinstance(response, httpx.Response)


def test_a_thread_pool_worker_gets_the_block_only_when_it_is_carried(recorder, openai_api):
    client = client_for(recorder, openai_api)

    with recorder.context(user="pooled"), ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(client.images.generate, prompt="plain submit").result(timeout=30)
        carried = contextvars.copy_context()
        pool.submit(carried.run, client.images.generate, prompt="carried").result(timeout=30)

    rows = by_prompt(recorder)
    assert rows["plain submit"]["user_id"] is None
    assert rows["carried"]["user_id"] == "pooled"
