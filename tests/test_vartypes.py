"""Typed agent variables and distribution strings."""

from __future__ import annotations

import pytest

from seer.protocol.distributions import DistributionError, parse_distribution
from seer.protocol.vartypes import Var, VarError, convert_vars


@pytest.mark.parametrize("type_, raw, expected", [
    ("int", "42", 42), ("int", 7, 7), ("int", "0x10", 16),
    ("float", "0.5", 0.5), ("float", 2, 2.0),
    ("bool", "yes", True), ("bool", "off", False), ("bool", True, True),
    ("strlist", "a, b c", ["a", "b", "c"]), ("strlist", ["x"], ["x"]),
    ("nodelist", "n1 n2", ["n1", "n2"]), ("node", "srv", "srv"),
    ("cidrlist", "198.18.0.0/24 198.18.1.1", ["198.18.0.0/24", "198.18.1.1/32"]),
    ("string", 5, "5"),
])
def test_conversions(type_, raw, expected):
    assert Var("v", type_).convert(raw) == expected


@pytest.mark.parametrize("type_, raw", [
    ("int", "4.5"), ("int", True), ("float", "fast"), ("float", "inf"), ("bool", "maybe"),
    ("node", "a.b"), ("cidrlist", "300.1.1.1"), ("distribution", "minmax(2,1)"),
    ("string", {"a": 1}),
])
def test_bad_values_name_the_variable(type_, raw):
    with pytest.raises(VarError, match=r"^v: "):
        Var("v", type_).convert(raw)


def test_unknown_type_is_refused_at_declaration():
    with pytest.raises(ValueError, match="unknown type"):
        Var("v", "color")


def test_per_node_tables():
    assert Var("v", "int").convert_table({"*": 1, "n2": "2"}) == {"*": 1, "n2": 2}
    assert Var("v", "int").convert_table(3) == {"*": 3}
    with pytest.raises(VarError):
        Var("v", "int").convert_table({"bad name!": 1})


def test_convert_vars_is_all_or_nothing_and_names_every_problem():
    declared = {"a": Var("a", "int"), "b": Var("b", "float")}
    with pytest.raises(VarError) as e:
        convert_vars(declared, {"a": "x", "b": 1, "c": 2}, "T")
    assert "a: expected an integer" in str(e.value)
    assert "T has no variable 'c' (it has: a, b)" in str(e.value)


@pytest.mark.parametrize("text, name, params", [
    ("minmax(0.1,0.9)", "minmax", (0.1, 0.9)),
    ("pareto(1.4, 5000, 200000)", "pareto", (1.4, 5000, 200000)),
    ("expo(2)", "expo", (2,)), ("gamma(2,3)", "gamma", (2, 3)),
    ("normal(-1e1, 2)", "normal", (-10, 2)), ("5", "constant", (5,)),
    ("uniform( 1 , 2 )", "uniform", (1, 2)), ("constant(3)", "constant", (3,)),
])
def test_distributions_parse(text, name, params):
    d = parse_distribution(text)
    assert (d.name, d.params) == (name, tuple(float(p) for p in params))


@pytest.mark.parametrize("text", [
    "", "minmax", "minmax(1)", "minmax(1,2,3)", "minmax(2,1)", "expo(0)", "expo(-1)",
    "pareto(1,5,2)", "foo(1)", "minmax(1,2)x", "__import__('os')", "minmax(1;2)",
    "expo(1e999)", "minmax(1,)",
])
def test_bad_distributions_are_refused(text):
    with pytest.raises(DistributionError):
        parse_distribution(text)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, "9223372036854775808", 1e19])
def test_an_int_without_bounds_still_refuses_what_does_not_fit_64_bits(value):
    with pytest.raises(VarError, match="does not fit in 64 bits"):
        Var("n", "int", 0, "").convert(value)


def test_the_64_bit_ends_are_accepted():
    var = Var("n", "int", 0, "")
    assert var.convert(2**63 - 1) == 2**63 - 1 and var.convert(-(2**63)) == -(2**63)
