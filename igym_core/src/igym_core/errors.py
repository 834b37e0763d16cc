"""The one error tree of igym. Every message says what was expected, what was found and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AdmissionError",
    "ConfigError",
    "DataNotSavedError",
    "DuplicatePluginNameError",
    "EntryRefusedError",
    "EnvContractError",
    "ExperimentLoadError",
    "IgymError",
    "IgymWarning",
    "MissingDependencyError",
    "PluginError",
    "PluginNotFoundError",
    "ProtocolError",
    "StudyUnavailableError",
]


class IgymError(Exception):
    """Base class of every error igym raises on purpose."""


class ConfigError(IgymError, ValueError):
    """An experiment or setting is invalid. ``problems`` lists one line per problem, each with a path."""

    def __init__(self, problems: Sequence[str] | str, *, title: str = "The experiment is invalid") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.title = title
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1 and not self.title:
            return self.problems[0]
        lines = [f"{self.title}:"] + [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class ExperimentLoadError(IgymError):
    """``module:attr`` could not be imported or does not name an experiment."""


class PluginError(IgymError):
    """A plugin is broken or misconfigured."""


class PluginNotFoundError(PluginError, LookupError):
    """No plugin provides the requested ``kind``."""


class DuplicatePluginNameError(PluginError):
    """Two plugins register the same ``kind`` for one plugin type."""


class MissingDependencyError(IgymError, ImportError):
    """An optional library is not installed; the message is the install command."""


class ProtocolError(IgymError):
    """A participant's client sent a message that breaks the protocol.

    ``code`` is the wire error code (see docs/protocol.md).
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class DataNotSavedError(IgymError):
    """A required data sink could not store the records (a full disk, say); they wait in memory.

    ``failures`` pairs each failing sink's ``kind`` with its error.
    """

    def __init__(self, failures: Sequence[tuple[str, BaseException]], directory: str) -> None:
        self.failures = list(failures)
        self.directory = directory
        listed = "; ".join(f"sink {kind!r}: {error}" for kind, error in self.failures)
        super().__init__(
            f"Expected every required data sink to store the records, but {listed} (data directory "
            f"{directory}). The records are kept in memory and retried; free space or fix the sink, "
            "or mark a sink that may lose records required=False."
        )


class AdmissionError(IgymError):
    """A participant's ``hello`` is refused (link parameters over the limits, too many new participants
    from one address, the server full). The message is shown on the participant's page.

    ``code`` is the wire error code (see docs/protocol.md).
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class EntryRefusedError(AdmissionError):
    """A new participant is not let in because their link lacks a URL parameter the experiment
    requires (``UrlParam(on_missing="refuse")``). The message is for the participant: their page shows it.
    """

    def __init__(self, message: str) -> None:
        super().__init__("entry_refused", message)


class StudyUnavailableError(AdmissionError):
    """The study cannot take a new participant now because their data could not be saved; the page
    tries again by itself (code ``unavailable``, close 1013)."""


class EnvContractError(IgymError):
    """An environment does not meet the environment contract."""


class IgymWarning(UserWarning):
    """Something works, but probably not as the researcher intended."""
