"""Milliseconds per training step on a GPU, for several ways of running the step.

    PYTHONPATH=src python3 benchmarks/gpu_step.py [--steps 200] [--seeds 8]

Every variant trains the same model on pre-made batches (so the loader is timed apart):
  eager           the model, loss, backward and SGD step, op by op;
  compiled-ro     torch.compile(model, mode="reduce-overhead") (CUDA graphs of the model
                  alone), loss and optimizer eager: what the Trainer's --compile does;
  graph-eager     the whole step (forward, loss, backward, fused SGD with the learning
                  rate as a tensor) captured once in one CUDA graph and replayed;
  graph-compiled  the same, around torch.compile(model) without CUDA graphs of its own.
and, for the input pipeline, one augmented batch at a time against a whole epoch at once.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from tinycnn.data.augment import Augment
from tinycnn.data.loader import BatchLoader, load_splits
from tinycnn.models.registry import create_model
from tinycnn.seeds.stacked import per_seed_loss, stack_models
from tinycnn.speed.fast_dropout import use_fast_dropout

DEV = torch.device("cuda")


def timed(fn, steps: int, repeats: int = 3) -> float:
    """Median over `repeats` of the mean ms per call of `fn` over `steps` calls."""
    out = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(steps):
            fn(i)
        torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1000 / steps)
    return statistics.median(out)


def build(model_name: str, seeds: int, channels_last: bool, seed: int = 0):
    if seeds:
        models = []
        for s in range(seeds):
            torch.manual_seed(s)
            m = create_model(model_name)
            use_fast_dropout(m)
            models.append(m.to(DEV))
        model = stack_models(models)
    else:
        torch.manual_seed(seed)
        model = create_model(model_name)
        use_fast_dropout(model)
        model = model.to(DEV)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train()


def loss_of(logits, y, seeds):
    if seeds:
        return per_seed_loss(logits, y, seeds).sum()
    return F.cross_entropy(logits.float(), y)


def make_batches(x, y, batch: int, seeds: int, channels_last: bool, n: int = 8):
    out = []
    for i in range(n):
        xb = x[i * batch:(i + 1) * batch].unsqueeze(1).float().div(255).sub(0.1307).div(0.3081)
        yb = y[i * batch:(i + 1) * batch]
        if seeds:
            xb = xb.expand(-1, seeds, -1, -1).contiguous()
            yb = yb[:, None].expand(-1, seeds).contiguous()
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        out.append((xb, yb))
    return out


def variant(name, model_name, seeds, amp, channels_last, batches, steps):
    model = build(model_name, seeds, channels_last)
    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else (lambda: torch.autocast("cuda", enabled=False))
    t_compile = time.perf_counter()
    if name not in ("eager", "compiled-ro"):
        return graph_variant(name, model, seeds, ctx, batches, steps, t_compile)
    step_model = torch.compile(model, mode="reduce-overhead") if name == "compiled-ro" else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def run(i):
        x, y = batches[i % len(batches)]
        if name == "compiled-ro":
            torch.compiler.cudagraph_mark_step_begin()
        with ctx():
            logits = step_model(x)
        loss = loss_of(logits, y, seeds)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for i in range(3):
        run(i)
    torch.cuda.synchronize()
    setup = time.perf_counter() - t_compile
    ms = timed(run, steps)
    # a fixed check: the loss after a few more steps, to see the variants train alike
    loss = float(run(0))
    return ms, setup, loss


def capture(fn, params=(), warmup: int = 2):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    for p in params:  # else the captured backward adds to the warm-up's gradients at every replay
        p.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


def graph_variant(name, model, seeds, ctx, batches, steps, t0):
    """graph-eager / graph-compiled: the whole step in one CUDA graph, fused SGD included
    (its learning rate a device tensor); fb-eager / fb-compiled[-fused]: forward, loss and
    backward in one CUDA graph, the optimizer step eager after each replay (so schedules of
    lr and momentum apply)."""
    whole = name.startswith("graph-")
    step_model = torch.compile(model) if "compiled" in name else model
    if whole:
        opt = torch.optim.SGD(model.parameters(), lr=torch.tensor(0.01, device=DEV), momentum=0.9, fused=True)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, **({"fused": True} if "fused" in name else {}))
    static_x = batches[0][0].clone()
    static_y = batches[0][1].clone()

    def step():
        with ctx():
            logits = step_model(static_x)
        loss = loss_of(logits, static_y, seeds)
        if whole:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if whole:
            opt.step()
        return loss.detach()

    if whole:
        graph, static_loss = capture(step, warmup=3)
    else:  # the graph's backward must start from no gradients, not the warm-up's
        graph, static_loss = capture(step, list(model.parameters()))
    return time_replays(graph, static_loss, None if whole else opt, [static_x], [static_y], batches, steps, t0)


def time_replays(graph, static_loss, opt, xs, ys, batches, steps, t0):
    """(ms a step, seconds of setup, mean loss after) for replaying `graph` on `batches`
    copied into every static input, then the eager optimizer step if `opt`."""

    def run(i):
        x, y = batches[i % len(batches)]
        for static_x, static_y in zip(xs, ys):
            static_x.copy_(x)
            static_y.copy_(y)
        graph.replay()
        if opt is not None:
            opt.step()
        return static_loss

    run(0)
    torch.cuda.synchronize()
    setup = time.perf_counter() - t0
    ms = timed(run, steps)
    return ms, setup, float(run(0).float().mean())


def streams_variant(model_name, seeds, amp, compiled, batches, steps):
    """`seeds` separate models, each on its own CUDA stream, their forward+backward in ONE
    graph (fork and join); one optimizer over all their parameters, eager."""
    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else (lambda: torch.autocast("cuda", enabled=False))
    t0 = time.perf_counter()
    models = [build(model_name, 0, True, seed=s) for s in range(seeds)]
    step_models = [torch.compile(m) for m in models] if compiled else models
    params = [p for m in models for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    xs = [batches[0][0].clone() for _ in range(seeds)]
    ys = [batches[0][1].clone() for _ in range(seeds)]
    streams = [torch.cuda.Stream() for _ in range(seeds)]

    def fb():
        cur = torch.cuda.current_stream()
        losses = []
        for i in range(seeds):
            streams[i].wait_stream(cur)
            with torch.cuda.stream(streams[i]):
                with ctx():
                    logits = step_models[i](xs[i])
                loss = F.cross_entropy(logits.float(), ys[i])
                loss.backward()
                losses.append(loss.detach())
        for st in streams:
            cur.wait_stream(st)
        return torch.stack(losses)

    graph, static_loss = capture(fb, params)
    return time_replays(graph, static_loss, opt, xs, ys, batches, steps, t0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="era-s7-8172")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    args = p.parse_args()
    from tinycnn.speed.fast_dropout import FastDropout

    ones = torch.ones(4096, device=DEV)
    for label, f in (("eager", FastDropout(0.5)), ("compiled", torch.compile(FastDropout(0.5)))):
        graph, out = capture(lambda: f(ones))  # no parameters
        graph.replay()
        first = out.clone()
        graph.replay()
        print(f"dropout masks change between replays ({label}): {not torch.equal(first, out)}; keep rate {float((out > 0).float().mean()):.3f}")
    torch.backends.cudnn.benchmark = True
    splits = load_splits("mnist", device=DEV)
    x, y = splits["train"]
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.model}, batch {args.batch_size}")

    # input pipeline: one augmented batch at a time (the BatchLoader) against one epoch at once
    aug = Augment(rotation=15.0, interpolation="nearest")
    loader = BatchLoader(x, y, args.batch_size, shuffle=True, augment=aug, channels_last=True)
    it = iter(loader.epoch(0))
    ms_batch = timed(lambda i: next(it), 100, repeats=3)
    g = torch.Generator(device=DEV).manual_seed(0)

    def whole_epoch(i):
        order = torch.randperm(x.shape[0], generator=g, device=DEV)
        return loader.prepare(x[order], g), y[order]

    ms_epoch = timed(whole_epoch, 5)
    print(f"input: per batch {ms_batch:.3f} ms; whole epoch at once {ms_epoch:.2f} ms "
          f"({ms_epoch / len(loader):.4f} ms a batch)")

    rows = []
    single = make_batches(x, y, args.batch_size, 0, True)
    for amp in (False, True):
        for compiled in (False, True):
            label = f"streams x{args.seeds} {'bf16' if amp else 'fp32'} {'compiled' if compiled else 'eager'}"
            if args.only and not any(o in label for o in args.only):
                continue
            try:
                ms, setup, loss = streams_variant(args.model, args.seeds, amp, compiled, single, args.steps)
                row = f"{label:38s} {ms:8.3f} ms/step  {args.batch_size * args.seeds / ms * 1000:12,.0f} img/s  setup {setup:5.1f} s  loss {loss:.4f}"
            except Exception as exc:
                row = f"{label:38s} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}"
            print(row, flush=True)
            rows.append(row)
    for seeds in (0, args.seeds):
        batches = make_batches(x, y, args.batch_size, seeds, args.channels_last)
        for amp in (False, True):
            for name in ("eager", "compiled-ro", "graph-eager", "graph-compiled", "fb-eager", "fb-compiled", "fb-compiled-fused"):
                label = f"{'stacked x' + str(seeds) if seeds else 'single'} {'bf16' if amp else 'fp32'} {name}"
                if args.only and not any(o in label for o in args.only):
                    continue
                try:
                    ms, setup, loss = variant(name, args.model, seeds, amp, args.channels_last, batches, args.steps)
                    row = f"{label:38s} {ms:8.3f} ms/step  {args.batch_size * max(seeds, 1) / ms * 1000:12,.0f} img/s  setup {setup:5.1f} s  loss {loss:.4f}"
                except Exception as exc:  # keep going: the table says which variant failed and why
                    row = f"{label:38s} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}"
                print(row, flush=True)
                rows.append(row)
    print("\n".join(["", f"summary (channels_last={args.channels_last})"] + rows))


if __name__ == "__main__":
    main()
