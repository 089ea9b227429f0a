"""Speed of the meta-learned dynamics models on CPU.

Prints four tables:

1. Batched ensemble forward (:class:`~mbmeta.models.ensemble.EnsembleMLP` with ``member_matmul_rows=0``: one
   ``baddbmm`` per layer at every size, evaluated in chunks of 512 rows per member) vs a Python loop over E separate
   member MLPs (``nn.Sequential`` of ``nn.Linear`` + SiLU), E=5, 4×200, at several row counts per member: small
   (1-32, where the loop's per-op overhead dominates), the planner's (200: CEM N=200 expectation for one environment;
   2000: PETS N=500 × P/E=4, or N=200 × 10 environments), the training batch's (2560 = 256 segments × M=10) and a
   huge one (16384). The issue asks for >= 3x. ``one pass`` is the same batched forward without chunking
   (``chunk_rows=None``), to show what chunking buys.
2. ``--sweep-chunks``: forward throughput per chunk size, the measurement behind ``DEFAULT_CHUNK_ROWS``.
   ``--sweep-kernels``: the no-grad path's two kernels (one ``baddbmm`` per layer; one ``addmm`` per member and
   layer, at several chunk sizes) against the plain per-member reference (``x @ W + b``, in-place SiLU) by rows per
   member: the measurement behind ``MEMBER_MATMUL_ROWS`` and ``MEMBER_CHUNK_ROWS``. Ratios to the reference, per
   round (median [min-max] over the rounds); wall time with several threads, CPU time with one.
3. Training throughput (target transitions / s) of ``MetaDynamicsModule`` under a real ``pl.Trainer``, per method.
4. Adaptation cost at planning time: encoder passes and gradient steps per ``adapt`` and the time of one adapted
   call at planner size.

Times in tables 1, 2 and 4 are CPU seconds of this process (``time.process_time``; the minimum over interleaved
repeats), which on a shared machine excludes the time other processes hold the core; table 3 is wall-clock per step.

Usage: ``python benchmarks/model_speed.py [--threads 1] [--steps 8] [--batch-size 256] [--sweep-chunks] [--quick]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import pytorch_lightning as pl
import torch
from torch import nn

import mbmeta.models.ensemble as ensemble
from mbmeta.models import EnsembleMLP, MetaDynamicsModel, transition_statistics
from mbmeta.models.ensemble import DEFAULT_CHUNK_ROWS
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import MetaBatch, Transition

OBS, A, E, HIDDEN = 17, 6, 5, (200, 200, 200, 200)  # HalfCheetah-sized observation and action


def timeit(fn, repeats: int) -> float:
    """CPU seconds per call (one warm-up, then the best of 3 rounds of ``repeats`` calls)."""
    return interleaved({"fn": fn}, repeats)["fn"]


def interleaved(fns: dict, repeats: int, rounds: int = 3) -> dict[str, float]:
    """CPU seconds per call of each function: rounds alternate between them; the best round counts."""
    for fn in fns.values():
        fn()
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            for _ in range(repeats):
                fn()
            best[name] = min(best[name], (time.process_time() - start) / repeats)
    return best


def loop_members(mlp: EnsembleMLP) -> list[nn.Sequential]:
    """E separate nn.Sequential MLPs holding the same weights as the batched ensemble."""
    members = []
    for e in range(mlp.ensemble_size):
        layers: list[nn.Module] = []
        for i, layer in enumerate(mlp.layers):
            linear = nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                linear.weight.copy_(layer.weight[e].T)
                linear.bias.copy_(layer.bias[e, 0])
            layers.append(linear)
            if i < len(mlp.layers) - 1:
                layers.append(nn.SiLU())
        members.append(nn.Sequential(*layers))
    return members


def forward_ratio(rows_list: list[int]) -> None:
    print("\n1) batched (chunked) vs Python loop over members, E=5, 4x200, CPU ms per forward")
    print(
        f"{'rows/member':>12} {'loop ms':>9} {'one pass ms':>12} {'batched ms':>11} {'loop/batched':>13} "
        f"{'fwd+bwd loop/batched':>21}"
    )
    # member_matmul_rows=0: the batched kernel (chunked, or in one pass) at every size, as this table compares; the
    # no-grad default switches to one matmul per member from MEMBER_MATMUL_ROWS on (measured by --sweep-kernels).
    mlp = EnsembleMLP(OBS + A, 2 * OBS, HIDDEN, E, generator=torch.Generator().manual_seed(0), member_matmul_rows=0)
    one_pass = EnsembleMLP(OBS + A, 2 * OBS, HIDDEN, E, chunk_rows=None, member_matmul_rows=0)
    one_pass.load_state_dict(mlp.state_dict())
    members = loop_members(mlp)
    for rows in rows_list:
        x = torch.randn(E, rows, OBS + A, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(mlp(x)[0], members[0](x[0]), atol=1e-5, rtol=1e-5)
        repeats = max(2, int(3000 / rows**0.8))
        with torch.no_grad():
            t = interleaved(
                {
                    "loop": lambda x=x: torch.stack([m(x[e]) for e, m in enumerate(members)]),
                    "one pass": lambda x=x: one_pass(x),
                    "batched": lambda x=x: mlp(x),
                },
                repeats,
            )

        def batched_train(x=x):
            mlp(x).square().mean().backward()

        def loop_train(x=x):
            torch.stack([m(x[e]) for e, m in enumerate(members)]).square().mean().backward()

        train = interleaved({"loop": loop_train, "batched": batched_train}, repeats)
        ratio = t["loop"] / t["batched"]
        flag = "  (>= 3x)" if ratio >= 3 else ""
        print(
            f"{rows:>12} {t['loop'] * 1e3:>9.3f} {t['one pass'] * 1e3:>12.3f} {t['batched'] * 1e3:>11.3f} "
            f"{ratio:>13.2f} {train['loop'] / train['batched']:>21.2f}{flag}",
            flush=True,
        )


def chunk_sweep(rows_list: list[int], chunks: list[int | None]) -> None:
    print("\n2) forward throughput by chunk size (k rows per member per CPU second), E=5, 4x200, no_grad")
    print(f"{'rows/member':>12} " + " ".join(f"{str(c):>7}" for c in chunks))
    # The batched kernel at every size (the per-member kernel of the no-grad default ignores chunk_rows).
    mlp = EnsembleMLP(OBS + A, 2 * OBS, HIDDEN, E, generator=torch.Generator().manual_seed(0), member_matmul_rows=0)
    for rows in rows_list:
        x = torch.randn(E, rows, OBS + A, generator=torch.Generator().manual_seed(1))

        def at(chunk, x=x):
            def run() -> None:
                mlp.chunk_rows = chunk
                mlp(x)

            return run

        with torch.no_grad():
            t = interleaved({str(c): at(c) for c in chunks}, max(2, 8000 // rows), rounds=5)
        print(f"{rows:>12} " + " ".join(f"{rows / t[str(c)] / 1e3:>7.0f}" for c in chunks), flush=True)
    mlp.chunk_rows = DEFAULT_CHUNK_ROWS


def kernel_sweep(rows_list: list[int], chunks: list[int], rounds: int) -> None:
    threads = torch.get_num_threads()
    clock = time.perf_counter if threads > 1 else time.process_time
    print(
        f"\n2b) no-grad kernels by rows per member, time / plain per-member reference ({threads} threads, "
        f"{'wall' if threads > 1 else 'CPU'} time), median [min-max] over {rounds} rounds"
    )
    mlp = EnsembleMLP(OBS + A, 2 * OBS, HIDDEN, E, generator=torch.Generator().manual_seed(0))
    weights = [(layer.weight.detach(), layer.bias.detach()) for layer in mlp.layers]

    def reference(x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for e in range(E):
            h = x[e]
            for i, (w, b) in enumerate(weights):
                h = torch.addmm(b[e], h, w[e])
                if i < len(weights) - 1:
                    torch.nn.functional.silu(h, inplace=True)
            outs.append(h)
        return outs

    def kernel(member_rows: int | None, chunk: int | None = None):
        def run(x: torch.Tensor) -> None:
            mlp.member_matmul_rows = member_rows
            if chunk is not None:
                ensemble.MEMBER_CHUNK_ROWS = chunk
            mlp(x)

        return run

    variants = {"batched": kernel(0), **{f"member/{c}": kernel(1, c) for c in chunks}}
    print(f"{'rows/member':>12} " + " ".join(f"{name:>22}" for name in variants))
    default_chunk = ensemble.MEMBER_CHUNK_ROWS
    for rows in rows_list:
        x = torch.randn(E, rows, OBS + A, generator=torch.Generator().manual_seed(1))
        fns = {"reference": reference, **variants}
        repeats = max(2, int(20_000 / rows))
        times: dict[str, list[float]] = {name: [] for name in fns}
        with torch.no_grad():
            for fn in fns.values():
                fn(x)
            for _ in range(rounds):
                for name, fn in fns.items():
                    start = clock()
                    for _ in range(repeats):
                        fn(x)
                    times[name].append(clock() - start)
        cells = []
        for name in variants:
            ratios = [a / b for a, b in zip(times[name], times["reference"], strict=True)]
            cells.append(f"{statistics.median(ratios):.3f} [{min(ratios):.2f}-{max(ratios):.2f}]")
        print(f"{rows:>12} " + " ".join(f"{c:>22}" for c in cells), flush=True)
    ensemble.MEMBER_CHUNK_ROWS = default_chunk
    mlp.member_matmul_rows = None


def random_batch(b: int, k: int, m: int, g: torch.Generator) -> MetaBatch:
    def part(n: int) -> Transition:
        obs = torch.randn(b, n, OBS, generator=g)
        return Transition(
            obs,
            torch.rand(b, n, A, generator=g) * 2 - 1,
            obs + 0.1 * torch.randn(b, n, OBS, generator=g),
            torch.randn(b, n, generator=g),
            torch.zeros(b, n, dtype=torch.bool),
        )

    return MetaBatch(part(k), part(m), torch.rand(b, 2, generator=g) + 0.5, torch.ones(b, k, dtype=torch.bool))


class StepTimer(pl.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.steps = warmup, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx >= self.warmup:
            self.steps += 1
            self.elapsed = time.perf_counter() - self.start


def method_arguments(method: str) -> dict:
    """Model arguments of a benchmarked method: an adaptation name, or ``context-pm`` (one encoder per member)."""
    if method == "context-pm":
        return {"adaptation": "context", "context_per_member": True}
    return {"adaptation": method}


def training_throughput(methods: list[str], batch_size: int, gradient_batch: int, steps: int, k: int, m: int) -> None:
    print(f"\n3) training throughput, E=5, 4x200, K={k}, M={m} (pl.Trainer, {steps} timed steps after 2 warm-up)")
    print(f"{'method':>10} {'batch':>6} {'s/step':>8} {'targets/s':>10} {'segment transitions/s':>22}")
    g = torch.Generator().manual_seed(0)
    for method in methods:
        b = gradient_batch if method == "gradient" else batch_size
        batches = [random_batch(b, k, m, g) for _ in range(4)]
        module = MetaDynamicsModule(OBS, A, 2, **method_arguments(method), ensemble_size=E, hidden_sizes=HIDDEN)
        module.fit_normaliser(transition_statistics(batches[0].target, batches[0].task))
        loader = torch.utils.data.DataLoader(
            [batches[i % 4] for i in range(steps + 2)], batch_size=None, collate_fn=lambda x: x
        )
        timer = StepTimer(warmup=2)
        trainer = pl.Trainer(
            max_steps=steps + 2,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=50,
            callbacks=[timer],
        )
        trainer.fit(module, loader)
        per_step = timer.elapsed / timer.steps
        print(f"{method:>10} {b:>6} {per_step:>8.3f} {b * m / per_step:>10.0f} {b * (k + m) / per_step:>22.0f}")


def adaptation_cost(rows: int, k: int) -> None:
    print(f"\n4) planning-time cost: B=1 env, K={k} context, one adapted call with {rows} rows per member")
    print(f"{'method':>10} {'adapt ms':>9} {'encoder passes':>15} {'grad steps':>11} {'call ms':>8}")
    g = torch.Generator().manual_seed(0)
    context = random_batch(1, k, 1, g)
    obs = torch.randn(1, 1, rows, OBS, generator=g).expand(E, -1, -1, -1)
    action = torch.rand(E, 1, rows, A, generator=g)
    for method in ("none", "context", "context-pm", "recurrent", "gradient"):
        model = MetaDynamicsModel(OBS, A, 2, **method_arguments(method), ensemble_size=E, hidden_sizes=HIDDEN)
        model.normaliser.fit(transition_statistics(context.context, context.task))
        passes, grad_steps = [0], [0]
        encoder = getattr(model.adapter, "encoder", None) or getattr(model.adapter, "cell", None)
        if encoder is not None:
            encoder.register_forward_hook(lambda *args, passes=passes: passes.__setitem__(0, passes[0] + 1))
        original_inner_loss = model.inner_loss

        def counted_inner_loss(*args, original=original_inner_loss, grad_steps=grad_steps):
            grad_steps[0] += 1
            return original(*args)

        model.inner_loss = counted_inner_loss
        with torch.no_grad():
            model.adapt(context.context)
            passes[0] = grad_steps[0] = 0
            adapted = model.adapt(context.context)
            n_pass, n_grad = passes[0], grad_steps[0]
            adapt_ms = timeit(lambda model=model: model.adapt(context.context), 20) * 1e3
            call_ms = timeit(lambda adapted=adapted: adapted(obs, action), 3) * 1e3
        if method.startswith("context"):
            assert n_pass == 1 and n_grad == 0, "context adaptation must be one encoder pass and no gradient step"
            assert adapted.adaptation.z.grad_fn is None
        # recurrent: one GRU-cell pass per context step; gradient: one batched inner-loss pass per SGD step
        print(f"{method:>10} {adapt_ms:>9.2f} {n_pass:>15} {n_grad:>11} {call_ms:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--gradient-batch", type=int, default=256, help="segments per batch for the gradient adapter")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per member in the planning-call timing")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and steps (smoke run)")
    parser.add_argument("--sweep-chunks", action="store_true", help="also time every chunk size (table 2)")
    parser.add_argument("--sweep-kernels", action="store_true", help="also time the no-grad kernels (table 2b)")
    parser.add_argument("--kernels-only", action="store_true", help="only table 2b")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the kernel sweep")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    if args.sweep_kernels or args.kernels_only:
        kernel_sweep([8, 40, 64, 96, 128, 160, 200, 400, 2000, 6000], [256, 512, 2048], args.rounds)
        if args.kernels_only:
            return
    rows_list = [1, 32, 200, 2000] if args.quick else [1, 8, 32, 200, 2000, 2560, 16384]
    forward_ratio(rows_list)
    if args.sweep_chunks:
        chunk_sweep([200, 2000, 16384], [None, 128, 256, 512, 1024, 2048, 4096])
    steps = 3 if args.quick else args.steps
    methods = ["none", "context", "context-pm", "recurrent", "oracle", "gradient"]
    training_throughput(methods, args.batch_size, args.gradient_batch, steps, 10, 10)
    adaptation_cost(args.rows, 10)


if __name__ == "__main__":
    main()
