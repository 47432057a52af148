"""`tinycnn eval CHECKPOINT|RUN_DIR`: recompute test (and validation) accuracy from saved weights."""

HELP = "recompute test (and validation) accuracy of a checkpoint or a run's last.pt"


def add_arguments(parser):
    parser.add_argument("target", help="a .pt checkpoint or a run directory (uses its last.pt)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--model", default=None, metavar="FILE.py:NAME",
                        help="for a network of your own whose recorded file has changed or is gone: the file to rebuild it from")


def run(args):
    import dataclasses
    from pathlib import Path

    from tinycnn.config import config_from_dict
    from tinycnn.data.loader import NORMALIZATION, BatchLoader, load_splits
    from tinycnn.device import select_device
    from tinycnn.engine.checkpoint import load_checkpoint, load_weights
    from tinycnn.engine.evaluate import evaluate
    from tinycnn.engine.provenance import model_to_build
    from tinycnn.engine.rundir import read_run
    from tinycnn.models.build import build_model

    target = Path(args.target)
    path = target / "last.pt" if target.is_dir() else target
    state = load_checkpoint(path)
    config = config_from_dict(state["config"], where=str(path))
    run_dir = path.parent  # a checkpoint's run: where the network's source is recorded
    recorded = read_run(run_dir).get("model_source") if (run_dir / "run.json").exists() else None
    config = dataclasses.replace(config, model=model_to_build(run_dir, recorded, config.model, args.model))
    device = select_device(args.device)
    model = build_model(config).to(device)
    load_weights(model, state, path, config.model)
    splits = load_splits(config.dataset, val_size=config.val_size, subset=config.subset, device=device)
    mean, std = NORMALIZATION[config.dataset]
    print(f"{path}: {config.model}, epoch {state.get('epochs_done', state.get('epoch'))}")
    for name in ("val", "test"):
        if name in splits:
            r = evaluate(model, BatchLoader(*splits[name], config.eval_batch_size, mean=mean, std=std))
            print(f"  {name:<4} accuracy {r['acc']:.2f}% ({r['correct']}/{r['n']}), loss {r['loss']:.4f}")
    return 0
