"""Expected failures of a command: reported to the caller as userErrors, never as crashes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: tuple[str, ...] | None
    message: str
    code: str = "INVALID"


class Rejected(Exception):
    """A command was refused; nothing was written."""

    def __init__(self, *problems: Problem) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)


def invalid(field: tuple[str, ...] | None, message: str, code: str = "INVALID") -> Rejected:
    return Rejected(Problem(field, message, code))


def not_found(field: tuple[str, ...] | None, what: str) -> Rejected:
    return Rejected(Problem(field, f"{what} not found", "NOT_FOUND"))


class Collector:
    """Gathers every problem of one input so the caller sees them all at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, field: tuple[str, ...] | None, message: str, code: str = "INVALID") -> None:
        self.problems.append(Problem(field, message, code))

    def raise_if_any(self) -> None:
        if self.problems:
            raise Rejected(*self.problems)
