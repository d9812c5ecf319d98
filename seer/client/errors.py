"""The errors the client raises, one class per thing the caller can do about it.

:class:`SeerError` is the base of them all; the command line maps each to
its exit code (``seer.cli.entry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotation: values imports nothing from here
    from seer.client.values import Result


class SeerError(Exception):
    """Base of every error the client raises."""


class ControllerUnreachable(SeerError):
    """No connection to the controller, or it went away mid-request."""


class RequestRefused(SeerError):
    """The controller refused the request; nothing was sent or changed."""


class CommandFailed(SeerError):
    """At least one targeted node failed or did not confirm."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.problem_summary())
        self.result = result
