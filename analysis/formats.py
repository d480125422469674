"""How numbers are written for people, in one place: the CLI's tables and the site use these.

Rounding is half up on the number as Python prints it (its shortest repr), so a value stored as
9945.755 and the same value computed as 9945.755000000001 both read 9,945.76: binary floats
rounded directly would give 9,945.75 for one and 9,945.76 for the other.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# Ratios read with two decimals wherever a leaderboard is shown (the CLI, the site, the report).
RATIO_DIGITS = 2
RATIO_COLUMNS = frozenset(
    {"sharpe", "sortino", "calmar", "psr", "beta", "information_ratio", "turnover"}
)


def fixed(value: float, digits: int = 2, sign: bool = False) -> str:
    """`value` with `digits` decimals and thousands separators (a `+` on gains with `sign`)."""
    rounded = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0.00"
    return f"{rounded:+,.{digits}f}" if sign else f"{rounded:,.{digits}f}"


def percent(value: float, digits: int = 2, sign: bool = True) -> str:
    """A fraction as a percentage: `+1.23%` (`1.23%` without `sign`)."""
    return f"{fixed(value * 100, digits, sign)}%"
