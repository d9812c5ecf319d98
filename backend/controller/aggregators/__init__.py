"""Aggregators (SEER's name): the controller's stats, from the nodes' readings
to one aggregate per interval for every sink.

* :mod:`.base` -- the Aggregator base class and the View it reads;
* :mod:`.shipped` -- rates per interface, link, node and agent group;
* :mod:`.store` -- the latest readings, counters turned into rates;
* :mod:`.links` -- which interfaces make up which link;
* :mod:`.history` -- the last minutes of aggregates in a fixed space;
* :mod:`.pipeline` -- readings in, aggregates and the command log out.

docs/STATS.md says how to write an aggregator.
"""

from backend.controller.aggregators.base import Aggregator, View, rate, value
from backend.controller.aggregators.pipeline import StatsPipeline, load_aggregators

__all__ = ["Aggregator", "StatsPipeline", "View", "load_aggregators", "rate", "value"]
