"""`tinycnn eval CHECKPOINT|RUN_DIR`: recompute test (and validation) accuracy from saved weights."""

HELP = "recompute test (and validation) accuracy of a checkpoint or a run's last.pt"


def add_arguments(parser):
    parser.add_argument("target", help="a .pt checkpoint or a run directory (uses its last.pt)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")


def run(args):
    from pathlib import Path

    from tinycnn.config import config_from_dict
    from tinycnn.data.loader import NORMALIZATION, BatchLoader, load_splits
    from tinycnn.device import select_device
    from tinycnn.engine.checkpoint import load_checkpoint, trained_weights
    from tinycnn.engine.evaluate import evaluate
    from tinycnn.models.build import build_model

    target = Path(args.target)
    path = target / "last.pt" if target.is_dir() else target
    state = load_checkpoint(path)
    config = config_from_dict(state["config"], where=str(path))
    device = select_device(args.device)
    model = build_model(config).to(device)
    model.load_state_dict(trained_weights(state))
    splits = load_splits(config.dataset, val_size=config.val_size, subset=config.subset, device=device)
    mean, std = NORMALIZATION[config.dataset]
    print(f"{path}: {config.model}, epoch {state.get('epochs_done', state.get('epoch'))}")
    for name in ("val", "test"):
        if name in splits:
            r = evaluate(model, BatchLoader(*splits[name], config.eval_batch_size, mean=mean, std=std))
            print(f"  {name:<4} accuracy {r['acc']:.2f}% ({r['correct']}/{r['n']}), loss {r['loss']:.4f}")
    return 0
