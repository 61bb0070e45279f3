"""What every section's screen shares: the header, the navigation strip, the footer."""

from __future__ import annotations

from typing import Any, ClassVar

from textual._context import NoActiveAppError
from textual.app import ComposeResult
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static

from gateway_daemon.core import Gateway
from gateway_daemon.core.access.roles import Action, allows

from ..opening import OpeningGateway
from ..widgets.footer import GatewayFooter
from ..widgets.header import GatewayHeader
from ..widgets.navigation import NavBar

# What a binding's action does, as far as roles go (core/policy.py): the user's role greys out what it does not
# allow (the server refuses it anyway, with one line).
ROLE_ACTIONS: dict[str, Action] = {
    "new": Action.WRITE, "edit": Action.WRITE, "delete": Action.WRITE,
    "run": Action.RUN, "again": Action.RUN, "start": Action.RUN, "cancel_run": Action.RUN,
    "reveal": Action.REVEAL,
}


class SectionScreen(Screen):
    """A screen of one section: header, navigation, body, footer."""

    SECTION: ClassVar[str] = ""
    ROLE_ACTIONS: ClassVar[dict[str, Action]] = ROLE_ACTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Styled as it is mounted, a new screen needs no refresh of the app's CSS. Textual counts CSS updates, a
        # new screen's count starts behind the app's, and a section's first screen made the app parse every rule
        # of its stylesheet again, twice (~15 ms each, more with every widget class in use).
        try:
            self._css_update_count = self.app._css_update_count
        except NoActiveAppError:  # made outside an app (a test): Textual's way
            pass

    def role_allows(self, action: str) -> bool:
        """Whether the logged-in user's role allows a binding's action (local mode: everything)."""
        needed = self.ROLE_ACTIONS.get(action)
        return needed is None or allows(getattr(self.app, "role", "admin"), needed)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True if self.role_allows(action) else None  # None: shown greyed out

    def compose(self) -> ComposeResult:
        yield GatewayHeader(icon="◆")
        yield NavBar(self.SECTION)
        yield from self.compose_body()
        yield GatewayFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def typed_into(self) -> bool:
        """Whether this screen's keys are text being typed (a form, a run's inputs): `q` does not quit here."""
        return False

    @property
    def showing(self) -> bool:
        """Whether this screen's widgets are there: composed and mounted, not yet being removed. A reload from a
        timer, a resume or a worker that finishes after the screen went (or before it is built, while the app is
        quitting) does nothing."""
        return bool(self.children) and self.is_attached and not (self._closing or self._closed)

    @property
    def gateway(self) -> Gateway:
        return self.app.gateway  # type: ignore[attr-defined]

    @property
    def gateway_opening(self) -> bool:
        """Local mode's engine is still being opened (it is, once the first screen is drawn)."""
        gateway = self.gateway
        return isinstance(gateway, OpeningGateway) and not gateway.is_open

    def report(self, error: BaseException, title: str = "") -> None:
        self.app.report(error, title)  # type: ignore[attr-defined]

    failing = False  # the last refresh failed, and said so

    def report_once(self, error: BaseException, title: str = "") -> None:
        """An error of a reload: said once, and not again until a reload has worked (reset `failing`)."""
        if not self.failing:
            self.report(error, title)
        self.failing = True

    @property
    def unavailable(self) -> str:
        """Why this section has nothing to show in this mode ('' when it has)."""
        return getattr(self.app, "unavailable_sections", {}).get(self.SECTION, "")

    def compose_unavailable(self, title: str) -> ComposeResult:
        yield Static(Content.styled(title, "bold"), classes="unavailable-title")
        yield Static(Content(self.unavailable), classes="unavailable")
