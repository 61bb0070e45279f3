"""Form rows: a label, a control, a line of help and a line for the error, if any."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import HorizontalGroup, VerticalGroup
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Label, Static, TextArea


class FormField(HorizontalGroup):
    """One field of a form. `field` names it for error messages and tests."""

    DEFAULT_CSS = """
    FormField {
        height: auto;
        margin: 0 0 1 0;
        & .field-label {
            width: 16;
            padding: 0 1 0 0;
            text-align: right;
            color: $text-muted;
        }
        &.-invalid .field-label { color: $text-error; }
        /* the field being typed in stands out: its label bold in the accent colour, its control lit */
        &:focus-within .field-label { color: $text-accent; text-style: bold; }
        & Input:focus, & TextArea:focus, & Select:focus, & Select:focus > SelectCurrent {
            background: $primary 40%;
        }
        & .field-body { width: 1fr; height: auto; }
        & .field-help { color: $text-muted; height: auto; }
        & .field-error { color: $text-error; height: auto; }
        & > .field-body > .field-error { display: none; }
        &.-invalid > .field-body > .field-error { display: block; }
        & Input, & Select { width: 1fr; max-width: 80; }
        & Input.-invalid, & Select.-invalid > SelectCurrent { background: $error-muted; }
        & TextArea { height: 4; max-width: 80; }
    }
    """

    def __init__(self, field: str, label: str, control: Widget, help: str = "", required: bool = False):
        super().__init__(classes="form-field", id=f"field-{field}")
        self.field = field
        self.label = label
        self.control = control
        self.help = help
        self.required = required
        self._error = ""

    @property
    def estimated_rows(self) -> int:
        """The rows it takes before it is laid out: its control, its help and its margin."""
        height = self.control.styles.height
        control = int(height.value) if height is not None and height.is_cells else (4 if isinstance(
            self.control, TextArea) else 1)
        return control + (1 if self.help else 0) + 1

    def compose(self) -> ComposeResult:
        label = Content(self.label)
        if self.required:
            label = label + Content.styled(" *", "$text-error")
        yield Label(label, classes="field-label")
        with VerticalGroup(classes="field-body"):
            yield self.control
            if self.help:
                yield Static(Content(self.help), classes="field-help")

    def set_error(self, message: str | None) -> None:
        """The field's error line under it (built the first time it has one), or none."""
        self._error = message or ""
        lines = self.query(".field-body > .field-error")  # (not a control's own, as KeyValueRows has)
        if lines:
            lines.first(Static).update(Content(self._error))
        elif self._error:
            self.query_one(".field-body").mount(Static(Content(self._error), classes="field-error"))
        self.set_class(bool(message), "-invalid")  # shows the error line (CSS)
        self.control.set_class(bool(message), "-invalid")

    @property
    def error(self) -> str:
        return self._error
