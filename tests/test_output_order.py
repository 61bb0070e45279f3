"""A run's stdout and stderr lines keep the order the script wrote them in, stored and live, however busy the
gateway's event loop is (in local mode the TUI draws on it); and the frames the supervisor sends them in."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway_daemon.bootstrap import open_engine
from gateway_daemon.config import load_config
from gateway_daemon.core import Repository, Service
from gateway_daemon.execution.process import FRAME, MAX_LINE, Frames
from gateway_daemon.execution.sandbox import Sandbox

from gitutil import new_repo

LINES = 200
# One line to stdout, one to stderr, flushed, LINES times.  The short pause gives the supervisor time to read
# a line before the next one: two pipes hold no order between them, so lines written within the same few
# microseconds to both can only be told apart by whoever reads them in time.
ALTERNATE = f'''\
import sys, time
pause = float(sys.argv[1].split("=", 1)[1])
for i in range({LINES}):
    print(f"out {{i}}", flush=True)
    time.sleep(pause)
    print(f"err {{i}}", file=sys.stderr, flush=True)
    time.sleep(pause)
'''
EXPECTED = [line for i in range(LINES) for line in (("stdout", f"out {i}"), ("stderr", f"err {i}"))]


@pytest.fixture(params=["none", "bwrap"])
async def engine(request, tmp_path):
    if request.param == "bwrap" and Sandbox("auto").problem():
        pytest.skip("bubblewrap is not installed or cannot make namespaces here")
    new_repo(tmp_path / "origin", {"alternate.py": ALTERNATE})
    config_file = tmp_path / "gateway.conf"
    config_file.write_text(f"[execution]\nsandbox = {request.param}\n")
    config = load_config(str(config_file), environ={"GATEWAY_APPLICATION_DATA_DIR": str(tmp_path / "data")})
    engine = open_engine(config, announce=lambda text: None)
    await engine.create(Repository(name="origin", url=str(tmp_path / "origin"), reference="main"))
    await engine.create(Service(name="alternate", type="python-script", repository="origin",
                                filename="alternate.py"))
    yield engine
    await engine.close()


async def _busy(done: asyncio.Event) -> None:
    """What a TUI drawing does to the event loop: blocks it for a while, again and again."""
    while not done.is_set():
        time.sleep(0.05)
        await asyncio.sleep(0)


def _script_lines(lines) -> list[tuple[str, str]]:
    return [(line.stream, line.text) for line in lines if line.stream in ("stdout", "stderr")]


async def test_stdout_and_stderr_keep_the_scripts_order_while_the_event_loop_is_busy(engine):
    done = asyncio.Event()
    busy = asyncio.create_task(_busy(done))
    try:
        live, run = [], None
        async for event in engine.run_service("alternate", {"pause": "0.005"}):
            live.extend(_script_lines(event.lines))
            run = event.run if event.kind == "status" else run
    finally:
        done.set()
        await busy
    assert run is not None and run.status == "succeeded", run
    assert live == EXPECTED
    assert _script_lines(await engine.run_output(run.id)) == EXPECTED


def _frame(stream: int, data: bytes) -> bytes:
    return FRAME.pack(stream, len(data)) + data


def test_frames_split_anywhere_come_out_as_lines_in_frame_order():
    stream = (_frame(1, b"a1\na") + _frame(1, b"2\n") + _frame(2, b"e1\n") + _frame(1, b"a3\n")
              + _frame(2, b"e2 no newline"))
    for size in (1, 2, 5, 7, len(stream)):
        frames = Frames()
        batches = []
        for at in range(0, len(stream), size):
            batches += frames.feed(stream[at:at + size])
        batches += frames.end()
        flat = [(name, text) for name, texts in batches for text in texts]
        assert flat == [("stdout", "a1"), ("stdout", "a2"), ("stderr", "e1"), ("stdout", "a3"),
                        ("stderr", "e2 no newline")], size
    # consecutive frames of one stream read at once are one batch
    assert Frames().feed(_frame(1, b"x\n") + _frame(1, b"y\n") + _frame(2, b"z\n")) == [
        ("stdout", ["x", "y"]), ("stderr", ["z"])]


def test_frames_keep_each_streams_long_lines_and_control_characters_apart():
    frames = Frames()
    batches = frames.feed(_frame(1, b"x" * (MAX_LINE + 10)) + _frame(2, b"\x1b[31mred\x1b[0m\n")
                          + _frame(1, b"rest of the cut line\nnext\n"))
    assert batches == [("stdout", ["x" * MAX_LINE + " [line cut at 16 KiB]"]), ("stderr", ["red"]),
                       ("stdout", ["next"])]


def test_bytes_that_are_not_frames_are_shown_as_stderr_and_never_kept_waiting_for():
    frames = Frames()
    batches = frames.feed(_frame(1, b"fine\n") + b"\x07garbage that is no frame\n")
    batches += frames.feed(b"more\n")
    assert batches == [("stdout", ["fine"]), ("stderr", ["garbage that is no frame"]), ("stderr", ["more"])]
    huge = Frames()  # a length beyond any frame the supervisor sends is not waited for
    assert huge.feed(FRAME.pack(1, 1 << 30) + b"tail\n") == [("stderr", ["@tail"])]
