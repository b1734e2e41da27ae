"""The gateway's settings: flags, environment and TOML file say the same things, in that order of
precedence, and a bad setting is refused with a message that names it. Plus how a request picks
its upstream, which only ever chooses among configured ones."""

from __future__ import annotations

import pytest

from store.gateway.config import ConfigError, GatewayConfig, load_config
from store.gateway.routing import UnknownRoute, Upstreams, forwarded_headers, returned_headers


def test_defaults_are_openai_and_portkeys_public_gateway():
    config = load_config(environ={})

    assert config == GatewayConfig()
    assert (config.upstream, config.portkey_upstream) == (
        "https://api.openai.com",
        "https://api.portkey.ai",
    )
    assert config.host == "127.0.0.1"


def test_file_environment_and_flags_say_the_same_things_flags_first(tmp_path):
    file = tmp_path / "gateway.toml"
    file.write_text(
        'upstream = "https://file.example"\nport = 9001\ntimeout = 30\n'
        '[routes]\nazure = "https://res.openai.azure.com/"\n'
    )
    environ = {
        "IMAGELOG_GATEWAY_CONFIG": str(file),
        "IMAGELOG_GATEWAY_PORT": "9002",
        "IMAGELOG_GATEWAY_ROUTES": "corp=https://llm-proxy.corp/v1,azure=https://b.openai.azure.com",
        "IMAGELOG_GATEWAY_MAX_BODY_BYTES": "1000",
    }

    config = load_config({"timeout": 5.0, "upstream": None}, environ=environ)

    assert config.upstream == "https://file.example"  # only the file says it
    assert config.port == 9002  # the environment over the file
    assert config.timeout == 5.0  # the flag over the file
    assert config.max_body_bytes == 1000
    assert config.routes == {
        "corp": "https://llm-proxy.corp/v1",
        "azure": "https://b.openai.azure.com",
    }


def test_route_flags_are_name_equals_url():
    config = load_config({"routes": ["azure=https://res.openai.azure.com"]}, environ={})

    assert config.routes == {"azure": "https://res.openai.azure.com"}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"upstream": "ftp://files.example"}, "is not an http(s) URL"),
        ({"upstream": "https://user:sk-secret@api.example"}, "no credentials"),
        ({"portkey_upstream": "https://api.portkey.ai/?key=x"}, "no credentials, query"),
        ({"routes": ["azure"]}, "is not NAME=URL"),
        ({"routes": ["Bad Name=https://x.example"]}, "route name 'Bad Name'"),
        ({"port": 70000}, "is not a port"),
        ({"max_body_bytes": -1}, "is not a whole number"),
        ({"timeout": 0}, "is not a number of seconds > 0"),
        ({"listen": "0.0.0.0"}, "unknown setting(s) listen"),
    ],
)
def test_a_bad_setting_is_refused_with_a_message_that_names_it(flags, message):
    with pytest.raises(ConfigError) as refused:
        load_config(flags, environ={})

    assert message in str(refused.value)
    assert "sk-secret" not in str(refused.value)


def test_a_bad_environment_variable_is_named(tmp_path):
    with pytest.raises(ConfigError, match="IMAGELOG_GATEWAY_PORT"):
        load_config(environ={"IMAGELOG_GATEWAY_PORT": "eighty"})


def test_an_unreadable_or_invalid_file_is_named(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("upstream = ")

    with pytest.raises(ConfigError, match=r"broken\.toml is not valid TOML"):
        load_config(file=broken, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(file=tmp_path / "missing.toml", environ={})


# --- choosing the upstream -----------------------------------------------------------------------

UPSTREAMS = Upstreams.from_config(
    GatewayConfig(
        upstream="https://api.openai.com",
        portkey_upstream="https://api.portkey.ai",
        routes={"azure": "https://res.openai.azure.com/openai"},
    )
)


@pytest.mark.parametrize(
    ("path", "query", "headers", "name", "url"),
    [
        (
            b"/v1/images/generations",
            b"",
            [],
            "default",
            "https://api.openai.com/v1/images/generations",
        ),
        (
            b"/v1/images/generations",
            b"",
            [(b"x-portkey-virtual-key", b"vk")],
            "portkey",
            "https://api.portkey.ai/v1/images/generations",
        ),
        (
            b"/routes/azure/deployments/d/images/generations",
            b"api-version=2024-02-01",
            [(b"x-portkey-api-key", b"pk")],  # the path's route wins over the Portkey headers
            "route azure",
            "https://res.openai.azure.com/openai/deployments/d/images/generations"
            "?api-version=2024-02-01",
        ),
        (
            b"/deployments/d/images/edits",
            b"",
            [(b"x-imagelog-route", b"azure")],
            "route azure",
            "https://res.openai.azure.com/openai/deployments/d/images/edits",
        ),
        (b"//evil.example/x", b"", [], "default", "https://api.openai.com//evil.example/x"),
        (b"/@evil.example/x", b"", [], "default", "https://api.openai.com/@evil.example/x"),
    ],
)
def test_the_request_picks_among_configured_upstreams_only(path, query, headers, name, url):
    target = UPSTREAMS.target(path, query, headers)

    assert (target.name, str(target.url)) == (name, url)
    assert target.url.host in {"api.openai.com", "api.portkey.ai", "res.openai.azure.com"}


def test_an_unknown_route_names_the_configured_ones():
    with pytest.raises(UnknownRoute, match=r"no route named 'other' .*configured routes: azure"):
        UPSTREAMS.target(b"/routes/other/v1/images/generations", b"", [])


def test_keys_go_on_and_hop_by_hop_headers_stop_both_ways():
    sent = [
        (b"host", b"gateway:8790"),
        (b"authorization", b"Bearer sk-key"),
        (b"connection", b"keep-alive, x-hop"),
        (b"x-hop", b"1"),
        (b"te", b"trailers"),
        (b"content-length", b"12"),
        (b"expect", b"100-continue"),
        (b"x-imagelog-route", b"azure"),
        (b"x-portkey-api-key", b"pk"),
    ]
    received = [
        (b"Content-Encoding", b"gzip"),
        (b"Content-Length", b"12"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Connection", b"close"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]

    assert forwarded_headers(sent) == [
        (b"authorization", b"Bearer sk-key"),
        (b"x-portkey-api-key", b"pk"),
    ]
    assert returned_headers(received) == [
        (b"Content-Encoding", b"gzip"),
        (b"Content-Length", b"12"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]
