"""A real S3-compatible server on 127.0.0.1: moto's server mode (the S3 API over HTTP, as
`moto_server` runs it), with a count of the requests it answered by method, so a test can see
that a repeated image was uploaded once.

Clients reach it as they reach any S3-compatible store: `AWS_ENDPOINT_URL` and the AWS_*
credential variables (`environment()`), or an `endpoint_url` storage option.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

#: Credentials of the stand-in: moto accepts any; the secret is checked to never reach the log.
ACCESS_KEY_ID = "AKIAIMAGELOGTEST0001"
SECRET_ACCESS_KEY = "imagelog-test-secret-5d41402abc4b2a76b9719d911017c592"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class S3StandIn:
    """`with S3StandIn() as s3:` serves on a free port of 127.0.0.1 until the block ends."""

    def __init__(self) -> None:
        self.methods: Counter[str] = Counter()
        self._lock = threading.Lock()
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1", 0, self._counting(app), threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def environment(self) -> dict[str, str]:
        """The variables an S3 client of this machine reads: credentials, region, endpoint."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        """A bucket of its own for one test: tests never see each other's objects."""
        name = f"imagelog-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def get(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def reset_counts(self) -> None:
        with self._lock:
            self.methods.clear()

    def __enter__(self) -> S3StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _counting(
        self, app: Callable[[Environ, StartResponse], Iterable[bytes]]
    ) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
        def counted(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            with self._lock:
                self.methods[environ["REQUEST_METHOD"]] += 1
            return app(environ, start_response)

        return counted
