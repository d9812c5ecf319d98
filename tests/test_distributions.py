"""Each sampler against its distribution (Kolmogorov-Smirnov, fixed seed)."""

from __future__ import annotations

import random

import pytest
from scipy import stats

from seer.protocol.distributions import parse_distribution

N = 4000
#: Reject only if the sample would be this unlikely under the distribution.
ALPHA = 0.001


def sample(text: str, seed: int = 42) -> list[float]:
    d = parse_distribution(text)
    rng = random.Random(seed)
    return [d.sample(rng) for _ in range(N)]


def truncated_pareto_cdf(shape: float, lo: float, hi: float):
    def cdf(x):
        import numpy as np

        x = np.clip(x, lo, hi)
        return (1 - (lo / x) ** shape) / (1 - (lo / hi) ** shape)
    return cdf


@pytest.mark.parametrize("text, cdf", [
    ("minmax(0.1,0.9)", stats.uniform(loc=0.1, scale=0.8).cdf),
    ("uniform(-2,3)", stats.uniform(loc=-2, scale=5).cdf),
    ("expo(2.5)", stats.expon(scale=2.5).cdf),
    ("gamma(2,3)", stats.gamma(a=2, scale=3).cdf),
    ("normal(10,2)", stats.norm(loc=10, scale=2).cdf),
    ("pareto(1.4,5000,200000)", truncated_pareto_cdf(1.4, 5000, 200000)),
])
def test_sampler_follows_its_distribution(text, cdf):
    result = stats.kstest(sample(text), cdf)
    assert result.pvalue > ALPHA, f"{text}: KS statistic {result.statistic:.4f}, p={result.pvalue:.2g}"


def test_the_test_would_notice_a_wrong_sampler():
    # expo(2.5) samples are not expo(2.0): the KS test must reject them.
    assert stats.kstest(sample("expo(2.5)"), stats.expon(scale=2.0).cdf).pvalue < ALPHA


def test_constant_is_constant_and_pareto_stays_in_its_bounds():
    assert set(sample("constant(7)")) == {7.0}
    values = sample("pareto(1.4,5000,200000)")
    assert min(values) >= 5000 and max(values) <= 200000


def test_same_seed_same_sequence():
    assert sample("gamma(2,3)", seed=9) == sample("gamma(2,3)", seed=9)
    assert sample("gamma(2,3)", seed=9) != sample("gamma(2,3)", seed=10)


@pytest.mark.parametrize("text", ["minmax(0.1,0.9)", "expo(2)", "gamma(2,3)",
                                  "pareto(1.4,5000,200000)", "normal(3,1)"])
def test_mean_matches_the_samples(text):
    d = parse_distribution(text)
    values = sample(text)
    assert abs(sum(values) / len(values) - d.mean()) / d.mean() < 0.1
