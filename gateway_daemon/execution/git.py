"""git run as a subprocess of its own session, bounded in time: what the workspace and the repository check share."""

from __future__ import annotations

import asyncio
import contextlib
import os


async def run_git(args: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str, str]:
    """git with these arguments, its own session (killed whole past `timeout`): (exit code, or None when it took
    too long; stdout; stderr)."""
    process = await asyncio.create_subprocess_exec(
        "git", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        await process.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return None, "", ""
    return process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
