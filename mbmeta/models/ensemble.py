"""Vectorised ensembles: stacked member weights and one batched matmul per layer.

Two layouts are supported:

- plain: ``x [E, R, in]`` with the module's own weights ``[E, in, out]``;
- grouped: ``x [E, B, R, in]`` (B environments) with either the shared weights ``[E, in, out]`` or per-environment
  weights, given in full ``[E, B, in, out]`` or in the factored form :class:`LowRankUpdate` that the gradient adapter
  produces (shared weights minus a per-environment low-rank term), plus an optional per-environment conditioning
  vector ``cond [B, Z]`` that is treated as extra input features. The conditioning enters as a per-environment bias of
  the first layer (``bias + cond @ W_z``, computed once per environment), so the ``R`` rows never carry a copy of it.

Both layouts evaluate large inputs in chunks of about :data:`DEFAULT_CHUNK_ROWS` rows per member, running every layer
on one chunk before the next: a chunk's activations (~2 MB) stay in cache between layers, whereas one huge batch
writes and re-reads tens of megabytes per layer, and allocations that big are fresh ``mmap``s whose page faults cost
as much as the matmuls (measured: one pass over 16k rows per member took 486 ms vs 260 ms in 512-row chunks; see
``docs/performance.md``). Chunking never changes the result (with one torch thread): each output row is computed by
exactly the same operations whatever its chunk (tested bit for bit; see :data:`ROW_QUANTUM`).

Without gradients (planning, evaluation) a faster path runs, with the kernel chosen by measurement
(``benchmarks/model_speed.py --sweep-kernels``, ``docs/performance.md``): below :data:`MEMBER_MATMUL_ROWS` rows per
member (by thread count) one ``baddbmm`` per layer (few large ops beat many small ones), from there one ``addmm`` per
member and layer (MKL's batched matmul runs ~10% below its plain matmul at 2000 rows per member, and with several
threads it shares out whole members); activations in place; hidden layers in two
reused scratch buffers and the last layer written straight into the result (no ``torch.cat`` of chunks, no
allocation per layer). The batched kernel gives bit-identical results to the training path with one thread; the
per-member kernel activates each member's rows on their own, so the activation's scalar tail (see
:data:`ROW_QUANTUM`) falls on other elements: equal to float rounding (tested). :meth:`EnsembleMLP.freeze` resolves a
network's weights once for many such calls (:class:`FrozenWeights`), with conditioning and affine maps of the input
and output (a normaliser) folded into the first and last layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mbmeta.models.ensemble_weights import FrozenWeights, LayerTrace, LowRankUpdate, Weight, grouped_linear
from mbmeta.models.layer_weights import LayerWeights, NetWeights, as_net_weights

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": F.silu,
    "relu": F.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
}
"""Activation names accepted by :class:`EnsembleMLP` (``silu`` is the swish of PETS / CaDM)."""

INPLACE_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": partial(F.silu, inplace=True),
    "relu": torch.relu_,
    "elu": partial(F.elu, inplace=True),
    "gelu": F.gelu,  # torch has no in-place GELU: this one returns a new tensor
    "tanh": torch.tanh_,
}
"""The same functions overwriting their input where torch has an in-place kernel (the no-grad path: one pass and no
allocation per layer). Use the return value (GELU's is a new tensor). Same kernels, so the same bits as
:data:`ACTIVATIONS`."""

MEMBER_MATMUL_ROWS: dict[str, int] = {"one thread": 512, "several threads": 128}
"""Rows per member from which the no-grad path runs one ``addmm`` per member and layer instead of one ``baddbmm`` per
layer, with one torch thread and with several (see :func:`member_matmul_rows`). Chosen by measurement
(``benchmarks/model_speed.py --sweep-kernels``, E=5, 4x200, ratios to the plain per-member reference, one thread, busy
machine): the batched matmul is 6-25% faster up to 64 rows per member, the two are within noise from 96 to 400 rows
and the per-member matmuls ~10% faster at 2000. With several threads the batched matmul shares out whole members
(E=5 over 2 threads: 3 + 2, measured for issue 23 on the idle machine: 16.4 ms vs 13.7 ms per layer set at 2000 rows)
while a per-member matmul splits its rows, so the crossover comes earlier: about where a member's matmul is ~10 thread
synchronisations long (~100 rows of 200-wide layers); not measurable on the busy machine, so taken from that model."""


def member_matmul_rows(threads: int | None = None) -> int:
    """The default of :attr:`EnsembleMLP.member_matmul_rows` for ``threads`` torch threads (default: the current)."""
    threads = torch.get_num_threads() if threads is None else threads
    return MEMBER_MATMUL_ROWS["one thread" if threads == 1 else "several threads"]


MEMBER_CHUNK_ROWS = 2048
"""Rows per member per chunk on the per-member path. Chosen by measurement (``benchmarks/model_speed.py
--sweep-kernels``, one thread): at 2000 rows per member, chunks of 2048 (i.e. none) ran 1-2% faster than the plain
reference and chunks of 256-512 4-6% slower; the cap keeps the two scratch buffers at ~1.6 MB for 200-wide layers
(a fresh allocation that large would be an ``mmap`` with page faults at every call)."""

DEFAULT_CHUNK_ROWS = 512
"""Rows per member per chunk. Chosen by measurement (``benchmarks/model_speed.py --sweep-chunks``: 256-1024 are equally
fast with 1 thread on the development machine; one pass over 16k rows per member was up to 1.9x slower)."""

ROW_QUANTUM = 64
"""Chunks hold a multiple of this many rows (the last one absorbs the remainder). Why: elementwise kernels (the
activation) run a vectorised body and a scalar tail whose last bits can differ; with every chunk but the last a
multiple of 64 rows, each element falls in the body or tail exactly as in one pass, so results stay bit-identical.
(MKL's matmul gives a row the same result whatever the batch size, for 4 rows or more and one thread.)"""


def chunk_spans(total: int, chunk: int | None) -> list[slice] | None:
    """Cut ``range(total)`` rows into chunks, or None when one pass is enough.

    Args:
        total: number of rows.
        chunk: target rows per chunk (rounded down to a multiple of :data:`ROW_QUANTUM`, at least one quantum); None
            or 0 means no chunking.

    Returns:
        Consecutive slices, each ``chunk`` rows except the last, which takes the remainder plus a full chunk when the
        remainder alone would be shorter than :data:`ROW_QUANTUM` (tiny matmuls take other kernel paths).
    """
    if not chunk or total <= chunk:
        return None
    size = max(ROW_QUANTUM, chunk // ROW_QUANTUM * ROW_QUANTUM)
    starts = list(range(0, total, size))
    if len(starts) > 1 and total - starts[-1] < ROW_QUANTUM:
        starts.pop()
    if len(starts) == 1:
        return None
    return [slice(start, end) for start, end in zip(starts, [*starts[1:], total], strict=True)]


def activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    """Look up an activation function by name.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


class EnsembleLinear(nn.Module):
    """E independent linear layers evaluated with one ``torch.baddbmm``.

    Args:
        in_features: input size.
        out_features: output size.
        ensemble_size: E.
        generator: source of the initial weights (truncated normal, std ``1 / (2 sqrt(in))`` as in PETS; zero
            bias). None uses torch's default generator.

    Attributes:
        weight: ``[E, in, out]``.
        bias: ``[E, 1, out]``.
    """

    def __init__(
        self, in_features: int, out_features: int, ensemble_size: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if min(in_features, out_features, ensemble_size) < 1:
            raise ValueError(
                f"EnsembleLinear needs positive sizes, got in_features={in_features}, out_features={out_features}, "
                f"ensemble_size={ensemble_size}"
            )
        self.in_features, self.out_features, self.ensemble_size = in_features, out_features, ensemble_size
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, out_features))
        std = 1.0 / (2.0 * math.sqrt(in_features))
        nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        """Apply member e's layer to ``x[e]``.

        Args:
            x: ``[E, R, in]``.

        Returns:
            ``[E, R, out]``.
        """
        if x.dim() != 3 or x.shape[0] != self.ensemble_size or x.shape[-1] != self.in_features:
            raise ValueError(
                f"EnsembleLinear expects x [E={self.ensemble_size}, R, in={self.in_features}], got {tuple(x.shape)}"
            )
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:  # noqa: D102
        return f"in_features={self.in_features}, out_features={self.out_features}, ensemble_size={self.ensemble_size}"


class EnsembleMLP(nn.Module):
    """An ensemble of E MLPs with stacked weights.

    Args:
        in_features: input size (including any conditioning features passed as ``cond``).
        out_features: output size.
        hidden_sizes: widths of the hidden layers (empty: a single linear layer).
        ensemble_size: E.
        activation: one of :data:`ACTIVATIONS`.
        generator: source of the initial weights (None: torch's default generator).
        chunk_rows: rows per member evaluated together (see the module docstring); None or 0 evaluates every input
            in one pass. Only speed depends on it, never the result. A plain attribute: change it at any time.
        member_matmul_rows: rows per member from which the no-grad path runs one matmul per member; None: by the
            number of torch threads at each call (:func:`member_matmul_rows`); 0: always one batched matmul. A plain
            attribute, like ``chunk_rows``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (200, 200, 200, 200),
        ensemble_size: int = 5,
        activation: str = "silu",
        generator: torch.Generator | None = None,
        *,
        chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
        member_matmul_rows: int | None = None,
    ) -> None:
        super().__init__()
        if chunk_rows is not None and chunk_rows < 0:
            raise ValueError(f"chunk_rows must be a positive number of rows (or None/0: no chunking), got {chunk_rows}")
        if member_matmul_rows is not None and member_matmul_rows < 0:
            raise ValueError(f"member_matmul_rows must be >= 0 (or None: by thread count), got {member_matmul_rows}")
        self.chunk_rows = chunk_rows
        self.member_matmul_rows = member_matmul_rows
        self.activation_name = activation
        self.activation = activation_fn(activation)
        self._activation_ = INPLACE_ACTIVATIONS[activation]
        sizes = [in_features, *hidden_sizes, out_features]
        self.layers = nn.ModuleList(
            EnsembleLinear(i, o, ensemble_size, generator=generator) for i, o in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.in_features, self.out_features, self.ensemble_size = in_features, out_features, ensemble_size

    def forward(self, x: Tensor) -> Tensor:
        """Member e maps ``x[e]``.

        Args:
            x: ``[E, R, in]``.

        Returns:
            ``[E, R, out]``.
        """
        if x.dim() == 3 and self._fast_path_applies(x):
            weights, biases = self._own_weights()
            return self._evaluate(x[:, None], weights, biases)[:, 0]
        spans = chunk_spans(x.shape[1], self.chunk_rows) if x.dim() == 3 else None
        if spans is None:
            return self._plain_layers(x)
        return torch.cat([self._plain_layers(x[:, span]) for span in spans], dim=1)

    def _plain_layers(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x

    def params(self) -> NetWeights[Tensor]:
        """Every layer's own weight ``[E, in, out]`` and bias ``[E, 1, out]`` (by name: its named parameters)."""
        return NetWeights({i: LayerWeights(layer.weight, layer.bias) for i, layer in enumerate(self.layers)})

    def _own_weights(self) -> tuple[list[Weight], list[Tensor]]:
        # Straight from the layers (a planner calls this thousands of times; named_parameters() walks the modules).
        return [layer.weight for layer in self.layers], [layer.bias for layer in self.layers]

    def _resolved(self, params: NetWeights[Weight] | Mapping[str, Weight] | None) -> tuple[list[Weight], list[Tensor]]:
        """Every layer's weight and bias: ``params`` where given, the module's own elsewhere."""
        weights, biases = self._own_weights()
        if params is not None:
            params = as_net_weights(params)
            for i, (weight, bias) in params.layers.items():
                if i >= len(weights):
                    raise ValueError(
                        f"EnsembleMLP.grouped_forward: params for layer {i}, but the net has {len(weights)} layers"
                    )
                weights[i] = weights[i] if weight is None else weight
                biases[i] = biases[i] if bias is None else bias
        return weights, biases

    def freeze(
        self,
        params: NetWeights[Weight] | Mapping[str, Weight] | None = None,
        cond: Tensor | None = None,
        *,
        input_scale: Tensor | None = None,
        input_shift: Tensor | None = None,
        output_scale: Tensor | None = None,
        output_shift: Tensor | None = None,
    ) -> FrozenWeights:
        """Resolve the weights once for many :meth:`grouped_forward` calls (pass the result as ``params``).

        The frozen net computes ``f(x * input_scale + input_shift) * output_scale + output_shift``, where ``f`` is
        :meth:`grouped_forward` with ``params`` and ``cond``: the affine maps (e.g. a normaliser) are folded into the
        first and last layers (``W1 * input_scale[:, None]``, ``b1 + input_shift @ W1``; ``WL * output_scale``,
        ``bL * output_scale + output_shift``), ``cond`` into the first layer's bias and a :class:`LowRankUpdate`
        into full per-group weights. Equal to the unfolded computation up to float rounding (tested).

        Args:
            params: as in :meth:`grouped_forward`.
            cond: ``[B, Z]`` or ``[E, B, Z]`` conditioning vector, or None.
            input_scale: ``[in - Z]`` per input feature, or None (1).
            input_shift: ``[in - Z]``, or None (0).
            output_scale: ``[out]`` per output feature, or None (1).
            output_shift: ``[out]``, or None (0).

        Returns:
            The frozen weights: ``grouped_forward(x, frozen)`` takes ``x [E, B, R, in - Z]`` with B as in ``cond``
            (or any B when nothing is per group).
        """
        weights, biases = self._resolved(params)
        weights = [w.materialise() if isinstance(w, LowRankUpdate) else w for w in weights]
        if cond is not None:
            weights[0], biases[0] = _fold_cond(weights[0], biases[0], cond)
        first = weights[0]
        if input_shift is not None:
            biases[0] = _add_bias(biases[0], (input_shift @ first).unsqueeze(-2))
        if input_scale is not None:
            weights[0] = first * input_scale[:, None]
        if output_scale is not None:
            weights[-1] = weights[-1] * output_scale
            biases[-1] = biases[-1] * output_scale
        if output_shift is not None:
            biases[-1] = biases[-1] + output_shift
        return FrozenWeights(weights, biases)

    def grouped_forward(
        self,
        x: Tensor,
        params: NetWeights[Weight] | Mapping[str, Weight] | FrozenWeights | None = None,
        cond: Tensor | None = None,
        trace: LayerTrace | None = None,
    ) -> Tensor:
        """Evaluate on B groups of rows, optionally with per-group weights and a per-group conditioning vector.

        Args:
            x: ``[E, B, R, in - Z]``.
            params: None (own weights) or some layers' weights (a :class:`~mbmeta.models.layer_weights.NetWeights`,
                or a mapping with some of the names of :meth:`params`) holding shared ``[E, ...]`` or per-group
                ``[E, B, ...]`` tensors or (weights only) :class:`LowRankUpdate` factors, decided layer by layer;
                layers or fields left out use the module's own weights. Or :class:`FrozenWeights` from
                :meth:`freeze` (which hold any ``cond`` already: then ``cond`` and ``trace`` must be None).
            cond: ``[B, Z]`` extra input features common to all rows of a group (``[E, B, Z]``: per member too), or
                None (Z = 0).
            trace: record layer inputs and pre-activation probes (see :class:`LayerTrace`); the rows are then
                evaluated in one pass (no chunking), so that each probe is one tensor.

        Returns:
            ``[E, B, R, out]`` (in the autocast dtype under autocast).
        """
        if isinstance(params, FrozenWeights):
            return self._frozen_forward(x, params, cond, trace)
        z = 0 if cond is None else cond.shape[-1]
        if x.dim() != 4 or x.shape[-1] + z != self.in_features:
            raise ValueError(
                f"EnsembleMLP.grouped_forward expects x [E, B, R, {self.in_features - z}] (in_features "
                f"{self.in_features} minus cond size {z}), got {tuple(x.shape)}"
            )
        weights, biases = self._resolved(params)
        per_group = any(isinstance(t, LowRankUpdate) or t.dim() == 4 for t in (*weights, *biases))
        if cond is not None:
            if cond.shape[:-1] not in ((x.shape[1],), tuple(x.shape[:2])):
                raise ValueError(
                    f"EnsembleMLP.grouped_forward expects cond [B={x.shape[1]}, Z] or [E={x.shape[0]}, B={x.shape[1]}, "
                    f"Z], got {tuple(cond.shape)}"
                )
            if isinstance(weights[0], LowRankUpdate):
                raise ValueError("EnsembleMLP.grouped_forward: a LowRankUpdate first layer cannot take cond")
            weights[0], biases[0] = _fold_cond(weights[0], biases[0], cond)
        if trace is not None:
            return self._grouped_layers(x, weights, biases, trace)
        if not per_group and self._fast_path_applies(x, cond):
            return self._evaluate(x, weights, biases)
        return self._chunked(x, weights, biases, per_group)

    def _fast_path_applies(self, x: Tensor, *extra: Tensor | None) -> bool:
        """The no-grad path: no autograd graph to build, and no autocast to honour (it ignores ``out=`` matmuls)."""
        if torch.is_autocast_enabled(x.device.type):
            return False
        if not torch.is_grad_enabled():
            return True
        tensors = (x, *(t for t in extra if t is not None), *self.parameters())
        return not any(t.requires_grad for t in tensors)

    def _frozen_forward(
        self, x: Tensor, frozen: FrozenWeights, cond: Tensor | None, trace: LayerTrace | None
    ) -> Tensor:
        if cond is not None or trace is not None:
            raise ValueError("EnsembleMLP.grouped_forward: frozen weights hold the conditioning already; no cond/trace")
        if x.dim() != 4 or x.shape[0] != self.ensemble_size or x.shape[-1] != frozen.in_features:
            raise ValueError(
                f"EnsembleMLP.grouped_forward expects x [E={self.ensemble_size}, B, R, {frozen.in_features}] for these "
                f"frozen weights, got {tuple(x.shape)}"
            )
        if frozen.groups is not None and x.shape[1] != frozen.groups:
            raise ValueError(
                f"EnsembleMLP.grouped_forward: these frozen weights are per group for B={frozen.groups} groups, "
                f"got x {tuple(x.shape)}"
            )
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            # Autocast would cast the frozen (non-leaf) weights again at every call and skips out= matmuls: cast them
            # once (kept by the FrozenWeights) and the rows here, then run the layers with autocast off.
            dtype = torch.get_autocast_dtype(device_type)
            with torch.autocast(device_type, enabled=False):
                return self._frozen_layers(x.to(dtype), frozen.to(dtype))
        return self._frozen_layers(x, frozen)

    def _frozen_layers(self, x: Tensor, frozen: FrozenWeights) -> Tensor:
        weights, biases = list(frozen.weights), list(frozen.biases)
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or frozen.requires_grad())
        if frozen.shared and not needs_grad:
            return self._evaluate(x, weights, biases, frozen.row_biases)
        return self._chunked(x, weights, biases, per_group=not frozen.shared or any(b.dim() == 4 for b in biases[1:]))

    def _chunked(self, x: Tensor, weights: Sequence[Weight], biases: Sequence[Tensor], per_group: bool) -> Tensor:
        """The autograd-safe path: ``x [E, B, R, in]`` in chunks of rows, every layer on a chunk before the next."""
        e, groups, rows, _ = x.shape
        if per_group:
            # Per-group weights: chunk the rows of every group together (slicing groups would copy the weights).
            spans = chunk_spans(rows, self.chunk_rows and max(self.chunk_rows // groups, ROW_QUANTUM))
            if spans is None:
                return self._grouped_layers(x, weights, biases)
            return torch.cat([self._grouped_layers(x[:, :, span], weights, biases) for span in spans], dim=2)
        # Shared weights: the groups' rows are one [E, B·R] batch, chunked regardless of group boundaries.
        spans = chunk_spans(groups * rows, self.chunk_rows)
        if spans is None:
            return self._grouped_layers(x, weights, biases)
        flat = x.reshape(e, groups * rows, x.shape[-1])
        outs = []
        for span in spans:
            first_bias = _rows_of(biases[0], span, rows) if biases[0].dim() == 4 else biases[0]
            outs.append(self._shared_layers(flat[:, span], weights, [first_bias, *biases[1:]]))
        out = torch.cat(outs, dim=1)
        return out.view(e, groups, rows, out.shape[-1])

    def _evaluate(
        self,
        x: Tensor,
        weights: Sequence[Tensor],
        biases: Sequence[Tensor],
        row_biases: dict[tuple[int, int, int, int], Tensor] | None = None,
    ) -> Tensor:
        """The no-grad path: ``x [E, B, R, in]`` -> ``[E, B, R, out]``, the kernel chosen by rows per member.

        Weights are shared ``[E, in, out]``; biases ``[E, 1, out]`` or ``[E, B, 1, out]`` (see the module docstring);
        ``row_biases`` keeps the per-group biases expanded to rows between calls (see :class:`FrozenWeights`).
        """
        e, groups, rows, k = x.shape
        total = groups * rows
        flat = x.reshape(e, total, k)  # a view, also of rows expanded over the members (stride 0)
        threshold = member_matmul_rows() if self.member_matmul_rows is None else self.member_matmul_rows
        if not threshold or total < threshold:
            if self.chunk_rows and total > self.chunk_rows:  # only when the per-member kernel is switched off
                return self._chunked(x, weights, biases, per_group=False)
            span = slice(0, total)
            layers = zip(weights, _span_biases(biases, span, rows, row_biases), strict=True)
            return self._batched(flat, layers).view(e, groups, rows, -1)
        out = x.new_empty(e, total, weights[-1].shape[-1])
        self._per_member(flat, weights, biases, rows, out, row_biases)
        return out.view(e, groups, rows, out.shape[-1])

    def _batched(self, flat: Tensor, layers: Iterable[tuple[Tensor, Tensor]]) -> Tensor:
        """Every layer on ``flat [E, n, in]``: one ``baddbmm`` per layer.

        Args:
            flat: ``[E, n, in]``.
            layers: per layer, weight ``[E, in, out]`` and bias ``[E, 1, out]`` or ``[E, n, out]``.
        """
        layers = list(layers)
        h = flat
        for weight, bias in layers[:-1]:
            h = self._activation_(torch.baddbmm(bias, h, weight))
        weight, bias = layers[-1]
        return torch.baddbmm(bias, h, weight)

    def _per_member(
        self,
        flat: Tensor,
        weights: Sequence[Tensor],
        biases: Sequence[Tensor],
        rows: int,
        out: Tensor,
        row_biases: dict[tuple[int, int, int, int], Tensor] | None,
    ) -> None:
        """Every layer on ``flat [E, B·R, in]`` into ``out [E, B·R, out]``: one ``addmm`` per member and layer.

        Member by member (its weights stay in cache over its rows), in long chunks of rows (see
        :data:`MEMBER_CHUNK_ROWS`): the hidden layers write into two scratch buffers used in turn (one read, one
        written) and are activated in place; the last layer writes straight into ``out``. No allocation per layer,
        no concatenation.
        """
        total, last = flat.shape[1], len(weights) - 1
        spans = chunk_spans(total, MEMBER_CHUNK_ROWS) or [slice(0, total)]
        longest = max(span.stop - span.start for span in spans)
        widths = [w.shape[-1] for w in weights[:-1]]
        scratch = [flat.new_empty(longest * max(widths)) for _ in range(2)] if widths else []
        # Views made once per call or chunk, not per member and layer (a planner makes thousands of calls).
        member_weights = list(zip(*(w.unbind(0) for w in weights), strict=True))  # [member][layer]
        chunks = []
        for span in spans:
            n = span.stop - span.start
            member_biases = zip(*(b.unbind(0) for b in _span_biases(biases, span, rows, row_biases)), strict=True)
            buffers = [scratch[i % 2][: n * width].view(n, width) for i, width in enumerate(widths)]
            chunks.append((flat[:, span].unbind(0), out[:, span].unbind(0), list(member_biases), buffers))
        for member, layers in enumerate(member_weights):
            for xs, outs, member_biases, buffers in chunks:
                h = xs[member]
                for i, (weight, bias) in enumerate(zip(layers, member_biases[member], strict=True)):
                    if i == last:
                        torch.addmm(bias, h, weight, out=outs[member])
                    else:
                        h = self._activation_(torch.addmm(bias, h, weight, out=buffers[i]))

    def _shared_layers(self, x: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor]) -> Tensor:
        """Every layer on a chunk of rows ``x [E, R', in]``; biases ``[E, 1, out]`` or ``[E, R', out]``."""
        for i in range(len(weights)):
            x = torch.baddbmm(biases[i], x, weights[i])
            if i < len(weights) - 1:
                x = self.activation(x)
        return x

    def _grouped_layers(
        self, x: Tensor, weights: Sequence[Weight], biases: Sequence[Tensor], trace: LayerTrace | None = None
    ) -> Tensor:
        """Every layer on ``x [E, B, R', in]`` with shared, per-group or low-rank weights and biases."""
        for i in range(len(weights)):
            traced = trace is not None and i in trace.layers
            if traced:
                trace.inputs[i] = x
            w = weights[i]
            x = w.apply(x, biases[i]) if isinstance(w, LowRankUpdate) else grouped_linear(x, w, biases[i])
            if traced:
                trace.probes[i] = x.new_zeros(x.shape).requires_grad_()
                x = x + trace.probes[i]
            if i < len(weights) - 1:
                x = self.activation(x)
        return x


def _span_biases(
    biases: Sequence[Tensor], span: slice, rows: int, kept: dict[tuple[int, int, int, int], Tensor] | None
) -> list[Tensor]:
    """The layers' biases for rows ``span`` of ``[E, B·R]``.

    Shared ones as they are; per-group ones ``[E, B, 1, out]`` expanded to ``[E, len, out]`` (looked up in, or added
    to, ``kept`` when given).
    """
    out = []
    for i, bias in enumerate(biases):
        if bias.dim() == 4:
            key = (i, span.start, span.stop, rows)
            if kept is None:
                bias = _rows_of(bias, span, rows)
            elif key in kept:
                bias = kept[key]
            else:
                bias = kept[key] = _rows_of(bias, span, rows).contiguous()
        out.append(bias)
    return out


def _add_bias(bias: Tensor, extra: Tensor) -> Tensor:
    """``bias + extra`` where either is ``[E, 1, out]`` (shared) or ``[E, B, 1, out]`` (per group)."""
    if bias.dim() == extra.dim():
        return bias + extra
    if bias.dim() == 3:
        return bias.unsqueeze(1) + extra
    return bias + extra.unsqueeze(1)


def _fold_cond(weight: Tensor, bias: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
    """The first layer without its conditioning rows, and its bias plus ``cond @ W_z``.

    Returns ``[E, (B,) in - Z, out]`` and ``[E, B, 1, out]``. ``cond`` ``[B, Z]`` (shared by the members) or
    ``[E, B, Z]`` (one per member); ``weight`` ``[E, in, out]`` or ``[E, B, in, out]``. The rows never carry cond,
    and no extra pass over the first layer's output adds it.
    """
    k = weight.shape[-2] - cond.shape[-1]
    w_z = weight[..., k:, :]
    if w_z.dim() == 3:
        extra = (cond @ w_z).unsqueeze(-2)
    else:
        extra = (cond if cond.dim() == 3 else cond[None]).unsqueeze(-2) @ w_z
    return weight[..., :k, :], (bias if bias.dim() == 4 else bias.unsqueeze(1)) + extra


def _rows_of(extra: Tensor, span: slice, rows: int) -> Tensor:
    """A per-group bias ``extra [E, B, 1, out]`` for flat rows ``span`` of ``[E, B·R]``: ``[E, len, out]``.

    A broadcast view when the span lies in one group (e.g. a group's R rows span several chunks); otherwise only the
    touched groups are expanded, so at most about a chunk's worth of values is materialised.
    """
    e, out = extra.shape[0], extra.shape[-1]
    first, last = span.start // rows, (span.stop - 1) // rows  # first and last group the span touches
    if first == last:
        return extra[:, first].expand(e, span.stop - span.start, out)
    if last == first + 1:  # long groups: the span crosses one boundary
        cut = last * rows
        head = extra[:, first].expand(e, cut - span.start, out)
        return torch.cat([head, extra[:, last].expand(e, span.stop - cut, out)], dim=1)
    # short groups: expand the touched ones (<= span + 2 R rows) and cut the span out
    block = extra[:, first : last + 1].expand(e, last + 1 - first, rows, out).reshape(e, -1, out)
    offset = span.start - first * rows
    return block[:, offset : offset + span.stop - span.start]
