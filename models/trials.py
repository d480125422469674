"""A trial reference: one trial of a model in a repeated backtest, and its one spelling.

Trial 1 is spelled as the model alone, so a backtest without trials keeps the names it always
had; trial n >= 2 adds `#t<n>` (`#` is in no model name). The same suffix ends a portfolio key
(`<prefix>/<model>@<hash>#t<n>`), names an LLM-call record and labels a trial in a run.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class TrialRef(BaseModel):
    """Which trial of which model."""

    model_config = {"frozen": True}

    model: str
    trial: int = Field(default=1, ge=1)

    @property
    def suffix(self) -> str:
        """What trial n adds to a name: nothing for trial 1, `#t<n>` after it."""
        return "" if self.trial == 1 else f"#t{self.trial}"

    @property
    def label(self) -> str:
        """The trial's name: `model`, or `model#t<n>` after trial 1."""
        return f"{self.model}{self.suffix}"

    @classmethod
    def parse(cls, label: str) -> TrialRef:
        """The trial a label names; reads `model#<n>` too, as runs stored before the one
        spelling keyed their portfolios."""
        model, mark, trial = label.rpartition("#")
        number = trial.removeprefix("t")
        if not mark or not number.isdigit():
            return cls(model=label)
        return cls(model=model, trial=int(number))
