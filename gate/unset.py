"""``GATE_X=`` (an example line uncommented as it stands) means the setting's default.

One rule for every settings class of the gate: a blank value is unset. ``Unset`` is the
annotation that applies it before the field's own validation, e.g.
``width: Annotated[int | None, Unset] = None``.
"""

from __future__ import annotations

from pydantic import BeforeValidator


def blank_is_unset(value: object) -> object:
    """None for a string of only whitespace, else ``value`` unchanged."""
    return None if isinstance(value, str) and not value.strip() else value


Unset = BeforeValidator(blank_is_unset)
