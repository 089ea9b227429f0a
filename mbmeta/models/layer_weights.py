"""A network's weights layer by layer: the structure the gradient adapter and the ensemble exchange.

An adapter that gives each environment its own weights hands them to an :class:`~mbmeta.models.ensemble.EnsembleMLP`
as a :class:`NetWeights`: for some layers (by position), a :class:`LayerWeights` pair whose ``None`` fields keep the
network's own tensor. Nobody builds or parses parameter names to do so.

For inspection, and for callers that hold weights by name (``{name: w for name, w in net.params().items()}``), a
:class:`NetWeights` is also a read-only mapping from the network's parameter names (``layers.{i}.weight`` /
``layers.{i}.bias``, its state-dict names) to tensors; :func:`as_net_weights` reads such a mapping back. This module
is the one place where those names are spelt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")
U = TypeVar("U")


class LayerWeights(NamedTuple):
    """One linear layer's weight and bias (``None``: the network's own).

    (Not generic over the tensor type: a generic NamedTuple needs Python 3.11.)

    Attributes:
        weight: e.g. ``[E, in, out]`` shared, ``[E, B, in, out]`` per environment, or a low-rank update.
        bias: e.g. ``[E, 1, out]`` shared or ``[E, B, 1, out]`` per environment.
    """

    weight: Any = None
    bias: Any = None


_OWN: LayerWeights = LayerWeights()
_KINDS: tuple[str, ...] = LayerWeights._fields  # ("weight", "bias"): also the attribute names of a layer's parameters


class NetWeights(Mapping[str, T]):
    """Weights of some layers of one network, by layer position (ascending).

    Args:
        layers: ``{layer index: LayerWeights}``; layers left out (and ``None`` fields) keep the network's own.
    """

    __slots__ = ("_layers",)

    def __init__(self, layers: Mapping[int, LayerWeights]) -> None:
        self._layers: dict[int, LayerWeights] = dict(sorted(layers.items()))

    @property
    def layers(self) -> Mapping[int, LayerWeights]:
        """``{layer index: LayerWeights}`` in ascending layer order (do not mutate)."""
        return self._layers

    def layer(self, index: int) -> LayerWeights:
        """The weights of layer ``index``: ``LayerWeights(None, None)`` when this structure does not replace it."""
        return self._layers.get(index, _OWN)

    def last(self, count: int) -> NetWeights[T]:
        """The same weights restricted to the last ``count`` layers present (all of them when fewer)."""
        kept = list(self._layers)[-count:] if count > 0 else []
        return NetWeights({i: self._layers[i] for i in kept})

    def map(self, fn: Callable[[T], U]) -> NetWeights[U]:
        """Apply ``fn`` to every tensor present (``None`` fields stay ``None``)."""
        return NetWeights(
            {i: LayerWeights(*(None if t is None else fn(t) for t in pair)) for i, pair in self._layers.items()}
        )

    # ---------------------------------------------------------------- read-only view by parameter name

    def __getitem__(self, name: str) -> T:
        index, kind = _parse_name(name, KeyError)
        value = getattr(self.layer(index), kind)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        for index, pair in self._layers.items():
            for kind, value in zip(_KINDS, pair, strict=True):
                if value is not None:
                    yield parameter_name(index, kind)

    def __len__(self) -> int:
        return sum(value is not None for pair in self._layers.values() for value in pair)

    def __repr__(self) -> str:
        return f"NetWeights(layers={sorted(self._layers)})"


def parameter_name(index: int, kind: str) -> str:
    """The network's name of layer ``index``'s ``weight`` or ``bias`` (its state-dict key)."""
    return f"layers.{index}.{kind}"


def as_net_weights(weights: Mapping[str, T]) -> NetWeights[T]:
    """``weights`` as a :class:`NetWeights`: itself, or read from a mapping keyed by parameter name.

    Raises:
        ValueError: a key that is no layer's ``weight`` or ``bias`` name.
    """
    if isinstance(weights, NetWeights):
        return weights
    layers: dict[int, dict[str, T]] = {}
    for name, value in weights.items():
        index, kind = _parse_name(name, ValueError)
        layers.setdefault(index, {})[kind] = value
    return NetWeights({i: LayerWeights(**pair) for i, pair in layers.items()})


def _parse_name(name: object, error: type[Exception]) -> tuple[int, str]:
    parts = name.split(".") if isinstance(name, str) else []
    if len(parts) != 3 or parts[0] != "layers" or not parts[1].isdigit() or parts[2] not in _KINDS:
        raise error(f"not a layer weight name: {name!r} (expected 'layers.<index>.weight' or 'layers.<index>.bias')")
    return int(parts[1]), parts[2]
