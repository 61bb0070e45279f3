"""Every screen state the snapshot tests pin down, saved as SVG and PNG into screenshots/.

The states come from tests/test_tui_snapshots.py itself (each test hands its app,
its steps to `snap_compare`; here that hand-off is caught and the screen saved
instead of compared), so the screenshots and the snapshots never drift apart.
Every state is shot at both sizes the snapshots pin: 120x36 (NAME.png) and
80x24 (NAME_80x24.png).

    scripts/screenshots                  # all of them
    scripts/screenshots services run     # only states whose name contains a word
"""

from __future__ import annotations

import asyncio
import html
import inspect
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import cairosvg  # noqa: E402

import test_tui_snapshots as scenes  # noqa: E402


PNG_FONT = "DejaVu Sans Mono"
# One run of text in Textual's SVG: its start, its width in cells (textLength) and its characters.
_TEXT_RUN_RE = re.compile(r'(<text\b[^>]*?\bx=")([0-9.]+)("[^>]*?\btextLength=")([0-9.]+)("[^>]*>)([^<]*)(</text>)')


def _one_cell_each(match: re.Match) -> str:
    """A text run with every character at its own cell: cairosvg ignores textLength, and a font whose
    advance differs from the cell width drew runs of box lines short of their corners."""
    count = len(html.unescape(match.group(6)))
    if count < 2:
        return match.group(0)
    start, step = float(match.group(2)), float(match.group(4)) / count
    xs = " ".join(f"{start + i * step:.1f}" for i in range(count))
    return match.group(1) + xs + "".join(match.group(i) for i in range(3, 8))


class Caught(Exception):
    """Raised by the stand-in for `snap_compare` to carry a test's app out of it."""

    def __init__(self, app, run_before, size):
        super().__init__()
        self.app, self.run_before, self.size = app, run_before, size


def catcher(size: tuple[int, int]):
    """A stand-in for `snap_compare` at `size` (as the snapshot tests' own one forces it)."""
    def catch(app, run_before=None, terminal_size=None, **_options):
        raise Caught(app, run_before, size)

    return catch


async def shoot(name: str, test, out: Path, size: tuple[int, int]) -> Path:
    with tempfile.TemporaryDirectory() as folder:
        try:
            test(catcher(size), Path(folder))
        except Caught as caught:
            scene = caught
        else:
            raise SystemExit(f"{name}: the test did not hand over an app")
        async with scene.app.run_test(size=scene.size) as pilot:
            if scene.run_before is not None:
                await scene.run_before(pilot)
            await pilot.pause(0.1)
            svg = scene.app.export_screenshot(title=f"Automation Gateway — {name.replace('_', ' ')}")
    width, height = scene.size
    stem = name if (width, height) == scenes.WIDE else f"{name}_{width}x{height}"
    (out / f"{stem}.svg").write_text(svg)
    # The PNG in a monospaced font this machine has (cairosvg does not fall back from Fira Code to monospace).
    png_svg = svg.replace("font-family: Fira Code, monospace", f"font-family: {PNG_FONT}")
    png_svg = _TEXT_RUN_RE.sub(_one_cell_each, png_svg)
    cairosvg.svg2png(bytestring=png_svg.encode(), write_to=str(out / f"{stem}.png"))
    return out / f"{stem}.png"


def main(words: list[str]) -> int:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    tests = [(name.removeprefix("test_"), fn) for name, fn in inspect.getmembers(scenes, inspect.isfunction)
             if name.startswith("test_") and fn.__module__ == scenes.__name__]
    chosen = [(name, fn) for name, fn in tests if not words or any(word in name for word in words)]
    if not chosen:
        print(f"no screen state matches {' '.join(words)}; states: {', '.join(n for n, _ in tests)}", file=sys.stderr)
        return 2
    for name, fn in sorted(chosen):
        for size in scenes.SIZES:
            path = asyncio.run(shoot(name, fn, out, size))
            print(f"  {path.relative_to(ROOT)}")
    print(f"{len(chosen) * len(scenes.SIZES)} screens written to screenshots/ (SVG and PNG)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
