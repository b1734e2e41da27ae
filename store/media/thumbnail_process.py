"""Make thumbnails in a separate low-priority process, so the program that records calls keeps
its cores.

Decoding a 1024x1024 PNG and encoding its WebP takes tens of milliseconds of CPU a picture. On
threads of the recording program that work competes with the caller for the cores (and, between
Pillow's calls, for the GIL): the caller's p99 grew by 16 ms. So `make_thumbnail` runs in one
child process (`python -m store.media.thumbnail_process`), started on first use at
`NICENESS` (the kernel gives the caller's threads the cores first) and fed through its pipes.
What is I/O stays with the parent's thumbnail worker threads: the downloads (network guard,
deadline, per-host limits) and the row updates. Only an image's bytes go over the pipe, and
its facts and thumbnail come back.

The child decodes up to `CHILD_THREADS` images at once (Pillow frees the GIL while it decodes
and encodes) within its own `DECODE_BUDGET`, and checks every image as `make_thumbnail` does
(pixel limit from the header, allowed formats). It ends when its input closes: on `close()`,
or when the parent ends, however it ends. A child that cannot be started is replaced by
thumbnailing in this process (logged once); a child that dies fails the images it held with an
`ImageError` (their rows say so, and `imagelog thumbnails` tries them again) and is started
afresh for the next one.

Frames both ways are a header (job number, payload length) and the payload: an image's bytes
one way, a pickle of its `ImageFacts` or `ImageError` back. Only the parent unpickles, and only
what its own child wrote.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from store.media.thumbnails import ImageError, ImageFacts, make_thumbnail

log = logging.getLogger(__name__)

#: How much lower the child's priority is than its parent's (Unix nice; 19 is the lowest).
NICENESS = 10
#: Images the child thumbnails at once: one a core, as the thread pool of old did.
CHILD_THREADS = max(1, min(4, os.cpu_count() or 1))
#: Job number and payload length of a frame.
_HEADER = struct.Struct("!QQ")
#: The folder `store` is imported from, for a child of a program that found it on sys.path.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class ThumbnailProcess:
    """`make(data)` is `make_thumbnail(data)`, computed in the child process; thread-safe.

    The child is started by the first `make` and after one that died; `close()` stops it.
    """

    def __init__(self, niceness: int = NICENESS) -> None:
        self.niceness = niceness
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._in_process = False  # the child could not be started: thumbnail here instead

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        child = self._child
        return child.process.pid if child is not None and child.alive else None

    def make(self, data: bytes) -> ImageFacts:
        """The facts and thumbnail of `data`; raises ImageError as `make_thumbnail` does, and
        when the child died before answering."""
        if self._in_process:
            return make_thumbnail(data)
        with self._lock:
            if self._child is not None and not self._child.alive and not self._child.answered:
                self._fall_back(f"it ended at once, exit status {self._child.process.poll()}")
            elif self._child is None or not self._child.alive:
                try:
                    self._child = _Child.start(self.niceness)
                except OSError as exc:
                    self._fall_back(str(exc))
            child = self._child
        if self._in_process or child is None:
            return make_thumbnail(data)
        answer = child.ask(data).result()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _fall_back(self, reason: str) -> None:
        log.warning("no thumbnail process (%s): thumbnails are made in this process", reason)
        self._in_process = True

    def close(self, timeout: float | None = None) -> None:
        """Close the child's input and wait up to `timeout` for it to finish what it holds and
        end; a child still running then is killed."""
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.stop(timeout)


class _Child:
    """One running child: its pipes, the answers it owes, and the thread that reads them."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.alive = True
        self.answered = 0  # a child that ends before its first answer cannot run here at all
        self._send_lock = threading.Lock()  # one frame at a time on the pipe
        self._owed_lock = threading.Lock()  # the answers owed, and whether more can be asked
        self._owed: dict[int, Future[ImageFacts | BaseException]] = {}
        self._next_job = 0
        self._reader = threading.Thread(
            target=self._read_answers, name="imagelog-thumb-answers", daemon=True
        )
        self._reader.start()

    @classmethod
    def start(cls, niceness: int) -> _Child:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, (_PACKAGE_ROOT, environment.get("PYTHONPATH")))
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "store.media.thumbnail_process", str(niceness)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
        )
        return cls(process)

    def ask(self, data: bytes) -> Future[ImageFacts | BaseException]:
        """Send one image; the future is its answer (an ImageError once the child is gone)."""
        future: Future[ImageFacts | BaseException] = Future()
        with self._owed_lock:
            if not self.alive:
                future.set_result(self._gone())
                return future
            job = self._next_job = self._next_job + 1
            self._owed[job] = future
        with self._send_lock:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(_HEADER.pack(job, len(data)))
                self.process.stdin.write(data)
                self.process.stdin.flush()
            except (OSError, ValueError):  # the child has gone: the reader settles what it owed
                pass
        return future

    def stop(self, timeout: float | None) -> None:
        with self._owed_lock:
            self.alive = False
        with self._send_lock:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
            except OSError:
                pass  # the child has gone already
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout)

    def _read_answers(self) -> None:
        assert self.process.stdout is not None
        stream = self.process.stdout
        try:
            while (header := _read_exactly(stream, _HEADER.size)) is not None:
                job, length = _HEADER.unpack(header)
                payload = _read_exactly(stream, length)
                if payload is None:
                    break
                with self._owed_lock:
                    future = self._owed.pop(job)
                self.answered += 1
                future.set_result(pickle.loads(payload))
        finally:
            with self._owed_lock:
                self.alive = False
                owed, self._owed = self._owed, {}
            self.process.wait()
            stream.close()
            for future in owed.values():
                future.set_result(self._gone())

    def _gone(self) -> ImageError:
        return ImageError(
            f"the thumbnail process ended (exit status {self.process.poll()}) "
            "before this image was done"
        )


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    """`size` bytes from `stream`; None at its end (a frame cut short counts as the end)."""
    data = stream.read(size) if size else b""
    return data if len(data) == size else None


# --- the child --------------------------------------------------------------------------------


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """Answer every image frame on `requests` with its facts' frame on `answers`, a few at a
    time, until `requests` ends; then finish what is in hand."""
    write_lock = threading.Lock()

    def answer(job: int, data: bytes) -> None:
        try:
            result: ImageFacts | BaseException = make_thumbnail(data)
        except ImageError as exc:
            result = exc
        except Exception as exc:  # told to the parent, which logs the job as failed
            result = RuntimeError(f"thumbnail failed: {type(exc).__name__}: {exc}")
        payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        with write_lock:
            answers.write(_HEADER.pack(job, len(payload)))
            answers.write(payload)
            answers.flush()

    with ThreadPoolExecutor(CHILD_THREADS, thread_name_prefix="thumbnail") as pool:
        while (header := _read_exactly(requests, _HEADER.size)) is not None:
            job, length = _HEADER.unpack(header)
            if (data := _read_exactly(requests, length)) is None:
                break
            pool.submit(answer, job, data)


def main(argv: list[str]) -> None:
    """The child: lower its priority, keep its answers off any stray print, and serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if hasattr(os, "nice"):
        os.nice(int(argv[0]) if argv else NICENESS)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a print() lands in stderr, not a frame
    # A broken pipe: the parent has gone, and nobody waits for the answers.
    with answers, contextlib.suppress(BrokenPipeError):
        serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main(sys.argv[1:])
