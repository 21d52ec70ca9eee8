"""Metrics by name: the built-ins found in :mod:`medsilo.metrics.library`, plus any others.

The built-in registry is discovered, not listed: every concrete :class:`Metric` subclass
defined in a module of ``medsilo.metrics.library`` is registered under its ``name``, so a new
metric is one new file there. A metric defined elsewhere (a site's own module, a test) joins
a registry through :meth:`MetricRegistry.with_metrics`, which returns a new registry and
leaves the built-in one untouched; in a config it is named by its import path
(``evaluation.metrics: [auroc, "my_pkg.metrics:Prevalence"]``, :func:`resolve_metrics`).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from medsilo.imports import is_import_path, load_object
from medsilo.metrics import library
from medsilo.metrics.base import Metric


class UnknownMetricError(ValueError):
    """A metric name that no registered metric has; the message lists the known names."""


@dataclass(frozen=True)
class MetricRegistry:
    classes: Mapping[str, type[Metric]]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.classes))

    def with_metrics(self, *classes: type[Metric]) -> MetricRegistry:
        """A registry with ``classes`` added; a name already taken by another class is an
        error (two metrics under one name would make configs ambiguous)."""
        merged = dict(self.classes)
        for cls in classes:
            if inspect.isabstract(cls) or not isinstance(getattr(cls, "name", None), str):
                raise TypeError(f"{cls.__qualname__} is not a concrete Metric with a name")
            taken = merged.get(cls.name)
            if taken is not None and taken is not cls:
                raise ValueError(
                    f"metric name {cls.name!r} is already taken by {taken.__module__}."
                    f"{taken.__qualname__}"
                )
            merged[cls.name] = cls
        return MetricRegistry(merged)

    def problem(self, names: Sequence[str]) -> str | None:
        """Why ``names`` cannot be built (unknown or repeated names), or None."""
        unknown = [n for n in names if n not in self.classes]
        if unknown:
            return f"unknown metric(s) {unknown}; known metrics: {', '.join(self.names)}"
        repeated = sorted({n for n in names if list(names).count(n) > 1})
        if repeated:
            return f"each metric may be listed once; repeated: {repeated}"
        return None

    def create(self, names: Sequence[str]) -> list[Metric]:
        problem = self.problem(names)
        if problem is not None:
            raise UnknownMetricError(problem)
        return [self.classes[n]() for n in names]


@functools.cache
def builtin_metrics() -> MetricRegistry:
    found: list[type[Metric]] = []
    for info in sorted(pkgutil.iter_modules(library.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{library.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Metric) and cls.__module__ == module.__name__:
                found.append(cls)
    return MetricRegistry({}).with_metrics(*found)


def resolve_metrics(names: Sequence[str]) -> tuple[MetricRegistry, list[str]]:
    """The built-in registry plus every metric ``names`` gives as an import path
    (``"package.module:Class"``), and ``names`` with those paths replaced by the metric's
    name. A path that does not name a :class:`Metric` class is an :class:`UnknownMetricError`.
    """
    registry, resolved = builtin_metrics(), []
    for name in names:
        if not is_import_path(name):
            resolved.append(name)
            continue
        cls = load_object(name, "metric")
        if not (inspect.isclass(cls) and issubclass(cls, Metric)):
            raise UnknownMetricError(f"metric {name!r} is not a medsilo.metrics.base.Metric class")
        registry = registry.with_metrics(cls)
        resolved.append(cls.name)
    return registry, resolved
