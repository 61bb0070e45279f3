"""The strip under the header naming every section and its key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import HorizontalGroup
from textual.widgets import Static

from gateway_daemon.core.access.roles import Action, allows

# (mode, key, label); the app binds the keys and the palette lists them.
SECTIONS = (
    ("services", "1", "Services"),
    ("runs", "2", "Runs"),
    ("repositories", "3", "Repositories"),
    ("decorators", "4", "Decorators"),
    ("secrets", "5", "Secrets"),
    ("users", "6", "Users"),
    ("runners", "7", "Runners"),
)
# Audit (admins on a server), registries and executable objects: in the strip too, after the others.
PALETTE_SECTIONS = (("registries", "9", "Registries"), ("executables", "0", "Executables"))
EXTRA_SECTIONS = (("audit", "8", "Audit"), *PALETTE_SECTIONS)
# Labels for a strip too narrow for the whole words (tried in turn: 120 columns, then 80).
SHORT_LABELS = {"repositories": "Repos", "decorators": "Decor", "registries": "Regs", "executables": "Execs"}
TINY_LABELS = {"services": "Svc", "repositories": "Repo", "decorators": "Deco", "secrets": "Secr",
               "users": "User", "runners": "Rnr", "registries": "Reg", "executables": "Exe"}
# Sections a role may not read at all (core/policy.py): greyed in the strip for it.
RESTRICTED = {"users": Action.USERS, "audit": Action.AUDIT}


class NavItem(Static):
    DEFAULT_CSS = """
    NavItem {
        width: auto;
        padding: 0 1;
        color: $text-muted;
        &:hover { background: $boost; color: $text; }
        &.-active { background: $primary; color: $text; text-style: bold; }
        &.-unavailable { color: $text-disabled; text-style: italic; }
        &.-unavailable.-active { background: $panel-lighten-1; color: $text-muted; }
    }
    """

    def __init__(self, mode: str, key: str, label: str, active: bool, disabled_reason: str = ""):
        classes = "-active" if active else ""
        if disabled_reason:
            classes += " -unavailable"
        super().__init__(f"[b]{key}[/b] {label}", classes=classes, markup=True)
        self.mode = mode
        self.nav_key, self.nav_label = key, label
        self.short = ""  # the labels it shows: "" (whole), "short" or "tiny"
        self.disabled_reason = disabled_reason
        if disabled_reason:
            self.tooltip = disabled_reason

    def restrict(self, reason: str) -> None:
        """Greyed for the user's role (`reason`), or not (''); a section the mode lacks stays greyed."""
        reason = self.disabled_reason or reason
        self.set_class(bool(reason), "-unavailable")
        self.tooltip = reason or None

    @staticmethod
    def label_for(mode: str, label: str, short: str) -> str:
        if short == "tiny":
            return TINY_LABELS.get(mode, label)
        return SHORT_LABELS.get(mode, label) if short else label

    def shorten(self, short: str) -> None:
        if short != self.short:
            self.short = short
            self.update(f"[b]{self.nav_key}[/b] {self.label_for(self.mode, self.nav_label, short)}")

    @staticmethod
    def width_for(key: str, label: str) -> int:
        return len(key) + 1 + len(label) + 2  # with its padding

    def on_click(self) -> None:
        self.app.action_section(self.mode)  # type: ignore[attr-defined]


class NavBar(HorizontalGroup):
    """`1 Services  2 Runs  …`, the current section highlighted."""

    DEFAULT_CSS = """
    NavBar {
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    """

    def __init__(self, active: str):
        super().__init__(id="nav")
        self.active = active

    def compose(self) -> ComposeResult:
        unavailable = getattr(self.app, "unavailable_sections", {})
        role = getattr(self.app, "role", "admin")
        for mode, key, label in self.sections:
            item = NavItem(mode, key, label, mode == self.active, unavailable.get(mode, ""))
            item.restrict(self.restriction(mode, role))
            yield item

    def on_mount(self) -> None:
        if hasattr(self.app, "role"):
            self.watch(self.app, "role", self._role_changed, init=False)

    @staticmethod
    def restriction(mode: str, role: str) -> str:
        """Why `role` may not see section `mode` at all ('' when it may)."""
        needed = RESTRICTED.get(mode)
        if needed is None or allows(role, needed):
            return ""
        return f"Only admins may see this: you are a{'n' if role[:1] in 'aeiou' else ''} {role}"

    def _role_changed(self, role: str) -> None:
        for item in self.query(NavItem):
            item.restrict(self.restriction(item.mode, role))

    @property
    def sections(self) -> tuple[tuple[str, str, str], ...]:
        return SECTIONS + EXTRA_SECTIONS

    def on_resize(self) -> None:
        """Whole labels when they fit; else short ones, then tiny ones, the current section's kept longer."""
        room = self.content_size.width

        def width(short: str, active_short: str) -> int:
            return sum(NavItem.width_for(key, NavItem.label_for(mode, label,
                                                                active_short if mode == self.active else short))
                       for mode, key, label in self.sections)

        tiers = [("", ""), ("short", ""), ("short", "short"), ("tiny", ""), ("tiny", "short"), ("tiny", "tiny")]
        short, active_short = next((tier for tier in tiers if width(*tier) <= room), tiers[-1])
        for item in self.query(NavItem):
            item.shorten(active_short if item.mode == self.active else short)
