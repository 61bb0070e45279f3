"""How fast the terminal UI answers.

    .venv/bin/python bench/tui.py [-n 5] [--services 10000]

1. Time to the first screen: `gateway` started in a real terminal (tmux) on an
   empty data dir until its footer is drawn, against a minimal Textual app
   started the same way (the floor any Textual program pays). Medians of N.
2. Filtering: with 10,000 services in the engine (memory store), the time from
   a keystroke in the `/` filter until the table is redrawn with the matches,
   against the same keystroke with 10 services. Medians over many keystrokes.

3. Opening a form: on Services, the time from the `n` key until the first frame
   of the New service form goes to the terminal with its first field focused (the
   field a name typed at once goes to), against a minimal Textual app pushing a
   screen with a header, one input and a footer on a key, measured the same way in
   the same run; and beside it the time until the form has settled (every field
   built, its lists read and drawn). Medians of N opens each, interleaved.

Targets: first screen under 1 s and within 1.5× the minimal app's; filter under 50 ms; a form open under
100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway_daemon.bootstrap import open_engine  # noqa: E402
from gateway_daemon.config import load_config  # noqa: E402
from gateway_daemon.core import Repository, Service  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from gitutil import new_repo  # noqa: E402

BIN = Path(sys.executable).parent
MINIMAL_APP = '''\
from textual.app import App
from textual.widgets import Footer, Header
class Minimal(App):
    BINDINGS = [("q", "quit", "Quit")]
    def compose(self):
        yield Header()
        yield Footer()
Minimal().run()
'''


def origin(data_dir: Path) -> Path:
    """A git repository beside `data_dir` for the services to name (a repository is checked when created)."""
    repo = data_dir.parent / f"{data_dir.name}-origin"
    new_repo(repo, {"main.py": 'print("hello")\n'})
    return repo


def first_paint(command: list[str], marker: str, env: dict[str, str], cwd: Path) -> float:
    """Seconds from starting `command` in a fresh tmux window until `marker` is on the screen."""
    socket = f"gw-bench-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    started = time.perf_counter()
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "36", "-s", "b", "-c", str(cwd),
                    " ".join(command) + "; sleep 30"], env=env, check=True)
    try:
        while True:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True).stdout
            if marker in screen:
                return time.perf_counter() - started
            if time.perf_counter() - started > 30:
                raise SystemExit(f"{command[0]} never drew {marker!r}:\n{screen}")
            time.sleep(0.005)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def bench_first_screen(n: int, root: Path) -> None:
    if shutil.which("tmux") is None:
        print("first screen: skipped, tmux is not installed")
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(HOME=str(root / "home"), TERM="xterm-256color")
    (root / "home").mkdir(exist_ok=True)
    minimal = root / "minimal.py"
    minimal.write_text(MINIMAL_APP)
    # Python keeps a module's compiled code beside it after the first import; with PYTHONDONTWRITEBYTECODE (set
    # on some machines) the gateway's own modules would be compiled again at every start while Textual's, compiled
    # when pip installed it, would not. Both start from compiled code here, as after a first start.
    for package in ("gateway_tui", "gateway_daemon"):
        compileall.compile_dir(ROOT / package, quiet=1)
    gateway_times, minimal_times = [], []
    for i in range(n):  # interleaved, each gateway start on an empty data dir
        run_env = {**env, "GATEWAY_APPLICATION_DATA_DIR": str(root / f"data{i}")}
        gateway_times.append(first_paint([str(BIN / "gateway")], "q Quit", run_env, root))
        minimal_times.append(first_paint([sys.executable, str(minimal)], "q Quit", env, root))
    g, m = statistics.median(gateway_times), statistics.median(minimal_times)
    print(f"first screen (median of {n}, empty data dir, 120x36 under tmux)")
    print(f"  gateway           {g * 1000:8.1f} ms   (target < 1000 ms)")
    print(f"  minimal Textual   {m * 1000:8.1f} ms")
    print(f"  ratio {g / m:.2f} (target ≤ 1.5), the gateway's own share {(g - m) * 1000:.1f} ms")


async def filter_times(count: int, data_dir: Path, keystrokes: str) -> list[float]:
    from textual.widgets import Input

    from gateway_tui.app import GatewayApp
    from gateway_tui.widgets.resource_table import ResourceTable

    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(data_dir),
                                        "GATEWAY_STORE_BACKEND": "memory"})
    engine = open_engine(config, announce=lambda _text: None)
    app = GatewayApp(engine, "bench")
    times: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await engine.create(Repository(name="apps", url=str(origin(data_dir))))
        kinds = ["python-script", "ansible-playbook", "executable", "opentofu-plan"]
        for i in range(count):
            await engine.create(Service(name=f"svc-{i:05d}-{kinds[i % 4].split('-')[0]}", type=kinds[i % 4],
                                        repository="apps", filename="main.py", description=f"service number {i}"))
        screen = app.screen
        await screen.reload()
        table = screen.query_one(ResourceTable)
        assert table.row_count == count, (table.row_count, count)
        await pilot.press("slash")
        field = screen.query_one("#filter", Input)
        loop = asyncio.get_running_loop()
        for round_ in range(3):
            for key in keystrokes + "\b" * len(keystrokes):
                started = time.perf_counter()
                if key == "\b":
                    field.action_delete_left()
                else:
                    field.insert_text_at_cursor(key)  # what a keystroke does to the field
                while table.filter_text != field.value:  # Input.Changed reached the screen
                    await asyncio.sleep(0)
                painted = loop.create_future()
                app.call_after_refresh(lambda: painted.done() or painted.set_result(None))
                await painted  # the screen after the change has been drawn
                if key != "\b":
                    times.append(time.perf_counter() - started)
                if count > 10 and field.value == keystrokes:
                    assert 0 < table.row_count < count, table.row_count  # the filter really narrowed it
    await engine.close()
    return times


def bench_filter(services: int, root: Path) -> None:
    keystrokes = "svc-01 py"  # narrows 10,000 → 1,000 → 250
    small = asyncio.run(filter_times(10, root / "small", keystrokes))
    large = asyncio.run(filter_times(services, root / "large", keystrokes))
    s, l_ = statistics.median(small), statistics.median(large)
    print(f"filter keystroke → table redrawn (median of {len(large)} keystrokes)")
    print(f"  {services:>6} services {l_ * 1000:8.1f} ms   p90 {statistics.quantiles(large, n=10)[-1] * 1000:.1f} ms"
          f"   (target < 50 ms)")
    print(f"  {10:>6} services {s * 1000:8.1f} ms")
    print(f"  ratio {l_ / s:.2f}, added by the {services} rows {(l_ - s) * 1000:.1f} ms")


MINIMAL_FORM_APP = '''
class MinimalForm(Screen):
    BINDINGS = [("escape", "app.pop_screen", "Back")]
    def compose(self):
        yield Header()
        yield Label("New thing")
        yield Input(id="name")
        yield Footer()
class MinimalHome(App):
    BINDINGS = [("n", "new", "New"), ("q", "quit", "Quit")]
    def compose(self):
        yield Header()
        yield Label("home")
        yield Footer()
    def action_new(self):
        self.push_screen(MinimalForm())
'''


async def open_times(app, key: str, opened, rounds: int) -> list[tuple[float, float]]:
    """(drawn, settled) seconds from `key` reaching the app, `rounds` times (esc closes the screen in between):
    drawn, until the first frame of the screen it opens goes to the terminal with `opened(app)` true; settled,
    until that screen has nothing left to do (every field built, its lists read, laid out and drawn: Textual's
    call_after_refresh). The key goes in as the terminal sends it, with no pilot waiting."""
    from textual import events

    loop = asyncio.get_running_loop()
    times: list[tuple[float, float]] = []
    frames: list[float] = []
    display = app._display

    def shown(screen, renderable) -> None:  # every frame the app sends to the terminal
        if renderable is not None and screen is app.screen and opened(app):
            frames.append(time.perf_counter())
        display(screen, renderable)

    app._display = shown
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.5)
        for _ in range(rounds):
            frames.clear()
            started = time.perf_counter()
            event = events.Key(key, key)
            event.set_sender(app)
            app._driver.send_message(event)
            while not frames:
                if time.perf_counter() - started > 30:
                    raise SystemExit(f"{key!r} never opened its screen: {app.screen!r}")
                await asyncio.sleep(0.001)
            settled = loop.create_future()
            app.call_after_refresh(lambda: settled.done() or settled.set_result(None))
            await settled
            times.append((frames[0] - started, time.perf_counter() - started))
            await pilot.press("escape")
            await pilot.pause(0.2)
    return times


async def gateway_form_times(data_dir: Path, rounds: int) -> list[tuple[float, float]]:
    from gateway_tui.app import GatewayApp
    from gateway_tui.screens.services import ServiceFormScreen

    config = load_config(None, environ={"GATEWAY_APPLICATION_DATA_DIR": str(data_dir)})
    engine = open_engine(config, announce=lambda _text: None)
    await engine.create(Repository(name="apps", url=str(origin(data_dir))))
    app = GatewayApp(engine, "bench")
    app.own_process = True  # as `gateway` runs it

    def opened(app) -> bool:
        focused = app.focused
        return isinstance(app.screen, ServiceFormScreen) and focused is not None and focused.id == "name"

    try:
        return await open_times(app, "n", opened, rounds)
    finally:
        await engine.close()


async def minimal_form_times(rounds: int) -> list[tuple[float, float]]:
    from textual.app import App
    from textual.screen import Screen
    from textual.widgets import Footer, Header, Input, Label

    scope = {"App": App, "Screen": Screen, "Footer": Footer, "Header": Header, "Input": Input, "Label": Label}
    exec(MINIMAL_FORM_APP, scope)  # noqa: S102 - the baseline app, defined above as text like MINIMAL_APP
    app = scope["MinimalHome"]()

    def opened(app) -> bool:
        focused = app.focused
        return isinstance(app.screen, scope["MinimalForm"]) and focused is not None and focused.id == "name"

    return await open_times(app, "n", opened, rounds)


def bench_form_open(n: int, root: Path) -> None:
    gateway_times: list[tuple[float, float]] = []
    minimal_times: list[tuple[float, float]] = []
    for i in range(max(1, n // 5)):  # interleaved batches
        gateway_times += asyncio.run(gateway_form_times(root / f"forms{i}", 5))
        minimal_times += asyncio.run(minimal_form_times(5))
    print(f"form open: key → form drawn with its first field focused; settled: every field built, its lists "
          f"read (p50 of {len(gateway_times)} opens, 120x36)")
    g, m = statistics.median(t[0] for t in gateway_times), statistics.median(t[0] for t in minimal_times)
    print(f"  New service     {g * 1000:8.1f} ms   (target < 100 ms)   p90 "
          f"{statistics.quantiles([t[0] for t in gateway_times], n=10)[-1] * 1000:.1f} ms   settled "
          f"{statistics.median(t[1] for t in gateway_times) * 1000:.1f} ms")
    print(f"  minimal Textual {m * 1000:8.1f} ms   (a screen of header, input, footer)   settled "
          f"{statistics.median(t[1] for t in minimal_times) * 1000:.1f} ms")
    print(f"  ratio {g / m:.2f}, the gateway's own share {(g - m) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="starts of each program for the first-screen figure")
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--opens", type=int, default=20, help="form opens of each app for the form-open figure")
    parser.add_argument("--only", choices=["first-screen", "filter", "form-open"], help="one figure only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if args.only in (None, "first-screen"):
            bench_first_screen(args.n, root)
        if args.only in (None, "filter"):
            bench_filter(args.services, root)
        if args.only in (None, "form-open"):
            bench_form_open(args.opens, root)


if __name__ == "__main__":
    main()
