"""Random distributions for agent variables, parsed by a small grammar.

SEER experiments describe think times and sizes as strings such as
``minmax(0.1,0.9)`` or ``pareto(1.4,5000,200000)``.  They are parsed here by
a recursive-descent parser over this grammar -- never by ``eval``::

    distribution := number | name "(" [ number { "," number } ] ")"
    number       := optional sign, digits, optional fraction and exponent

A bare number is a constant.  Known names and their parameters:

===============================  =========================================
``constant(x)``                  always x
``minmax(lo,hi)``                uniform on [lo, hi] (SEER's name)
``uniform(lo,hi)``               the same
``expo(mean)``                   exponential with the given mean
``gamma(shape,scale)``           gamma
``pareto(shape,min,max)``        Pareto truncated to [min, max]
``normal(mu,sigma)``             normal
===============================  =========================================

Sampling takes a ``random.Random`` so experiments are repeatable by seed.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Callable

_TOKEN = re.compile(
    r"\s*(?:(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),]))"
)


class DistributionError(ValueError):
    """A distribution string that does not parse or has bad parameters."""


@dataclass(frozen=True)
class Distribution:
    """A parsed distribution: its name, parameters and a sampler."""

    name: str
    params: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.name}({','.join(_fmt(p) for p in self.params)})"

    def sample(self, rng: random.Random) -> float:
        return _SAMPLERS[self.name](rng, *self.params)

    def mean(self) -> float:
        return _MEANS[self.name](*self.params)


def _fmt(x: float) -> str:
    return repr(int(x)) if x == int(x) and abs(x) < 1e15 else repr(x)


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise DistributionError(
                f"unexpected {text[pos:pos + 10]!r} at position {pos} in {text!r}"
            )
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _need(cond: bool, text: str, why: str) -> None:
    if not cond:
        raise DistributionError(f"{text!r}: {why}")


def _check_constant(text: str, x: float) -> None:
    pass


def _check_range(text: str, lo: float, hi: float) -> None:
    _need(lo <= hi, text, f"lower bound {_fmt(lo)} is above upper bound {_fmt(hi)}")


def _check_expo(text: str, mean: float) -> None:
    _need(mean > 0, text, "the mean must be positive")


def _check_gamma(text: str, shape: float, scale: float) -> None:
    _need(shape > 0 and scale > 0, text, "shape and scale must be positive")


def _check_pareto(text: str, shape: float, lo: float, hi: float) -> None:
    _need(shape > 0, text, "the shape must be positive")
    _need(0 < lo < hi, text, "need 0 < min < max")


def _check_normal(text: str, mu: float, sigma: float) -> None:
    _need(sigma >= 0, text, "sigma must not be negative")


def _sample_pareto(rng: random.Random, a: float, lo: float, hi: float) -> float:
    # Inverse CDF of the Pareto distribution truncated to [lo, hi].
    u = rng.random()
    la, ha = lo**a, hi**a
    return (-(u * ha - u * la - ha) / (ha * la)) ** (-1.0 / a)


def _mean_pareto(a: float, lo: float, hi: float) -> float:
    if a == 1:
        return (hi * lo / (hi - lo)) * math.log(hi / lo)
    la = lo**a
    return (la / (1 - (lo / hi) ** a)) * (a / (a - 1)) * (
        1 / lo ** (a - 1) - 1 / hi ** (a - 1)
    )


_CHECKS: dict[str, Callable[..., None]] = {
    "constant": _check_constant,
    "minmax": _check_range,
    "uniform": _check_range,
    "expo": _check_expo,
    "gamma": _check_gamma,
    "pareto": _check_pareto,
    "normal": _check_normal,
}
_SAMPLERS: dict[str, Callable[..., float]] = {
    "constant": lambda rng, x: x,
    "minmax": lambda rng, lo, hi: rng.uniform(lo, hi),
    "uniform": lambda rng, lo, hi: rng.uniform(lo, hi),
    "expo": lambda rng, mean: rng.expovariate(1.0 / mean),
    "gamma": lambda rng, shape, scale: rng.gammavariate(shape, scale),
    "pareto": _sample_pareto,
    "normal": lambda rng, mu, sigma: rng.gauss(mu, sigma),
}
_MEANS: dict[str, Callable[..., float]] = {
    "constant": lambda x: x,
    "minmax": lambda lo, hi: (lo + hi) / 2,
    "uniform": lambda lo, hi: (lo + hi) / 2,
    "expo": lambda mean: mean,
    "gamma": lambda shape, scale: shape * scale,
    "pareto": _mean_pareto,
    "normal": lambda mu, sigma: mu,
}
_ARITY = {"constant": 1, "minmax": 2, "uniform": 2, "expo": 1, "gamma": 2,
          "pareto": 3, "normal": 2}
NAMES = tuple(_ARITY)


def parse_distribution(text: str | int | float) -> Distribution:
    """Parse a distribution string (or a plain number, meaning a constant)."""
    if isinstance(text, bool):
        raise DistributionError(f"{text!r} is not a distribution")
    if isinstance(text, (int, float)):
        value = float(text)
        _need(math.isfinite(value), str(text), "not a finite number")
        return Distribution("constant", (value,))
    if not isinstance(text, str):
        raise DistributionError(f"{text!r} is not a distribution string")
    tokens = _tokens(text)
    if not tokens:
        raise DistributionError("empty distribution; e.g. minmax(0.1,0.9)")
    if len(tokens) == 1 and tokens[0][0] == "number":
        return parse_distribution(float(tokens[0][1]))
    kind, name = tokens[0]
    _need(kind == "name", text, "expected a distribution name or a number")
    name = name.lower()
    _need(name in _ARITY, text, f"unknown distribution {name!r}; known: {', '.join(NAMES)}")
    _need(len(tokens) >= 3 and tokens[1] == ("punct", "("), text, f"expected '(' after {name}")
    params: list[float] = []
    i = 2
    while True:
        _need(i < len(tokens), text, "missing ')'")
        if tokens[i] == ("punct", ")") and not params:
            break
        _need(tokens[i][0] == "number", text, f"expected a number, found {tokens[i][1]!r}")
        params.append(float(tokens[i][1]))
        i += 1
        _need(i < len(tokens), text, "missing ')'")
        if tokens[i] == ("punct", ")"):
            break
        _need(tokens[i] == ("punct", ","), text, f"expected ',' or ')', found {tokens[i][1]!r}")
        i += 1
    _need(i == len(tokens) - 1, text, "unexpected text after ')'")
    _need(all(math.isfinite(p) for p in params), text, "parameters must be finite")
    _need(
        len(params) == _ARITY[name],
        text,
        f"{name} takes {_ARITY[name]} parameter(s), got {len(params)}",
    )
    _CHECKS[name](text, *params)
    return Distribution(name, tuple(params))
