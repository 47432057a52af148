"""What `tinycnn export` does: the network checked, written, and said in a few lines."""

from __future__ import annotations

from pathlib import Path

from tinycnn.atomic import atomic_write_text
from tinycnn.errors import TinycnnError

# The layers model.c can hold (torch's names), checked before anything is exported.
C_LAYERS = {
    "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Linear", "Flatten",
    "Dropout", "Dropout2d", "FastDropout", "Identity", "LogSoftmax", "Softmax",
}


def _prepare(target, model, log):
    from tinycnn.deploy.network import load_deployable

    deployable = load_deployable(target, model)
    log(f"{deployable.source}: {deployable.config.model}, {deployable.params:,} parameters; BatchNorm folded into the convolutions")
    return deployable


def to_onnx(target, out: Path, *, int8: bool = False, model: str | None = None, log=print) -> dict:
    deployable = _prepare(target, model, log)
    out.parent.mkdir(parents=True, exist_ok=True)
    return _export(deployable, out, out.with_name(out.stem + ".int8.onnx") if int8 else None, log)


def to_c(target, out: Path, *, model: str | None = None, log=print) -> dict:
    from tinycnn.deploy.c_export import compile_to_c

    deployable = _prepare(target, model, log)
    check_c_layers(deployable.network)
    if out.exists() and not out.is_dir():
        raise TinycnnError(f"--out {out} is a file; --format c writes model.h and model.c into a directory")
    out.mkdir(parents=True, exist_ok=True)
    exported = _export(deployable, out / "model.onnx", out / "model.int8.onnx", log)  # the C computes what the int8 model does
    header, source, sizes = compile_to_c(exported["int8"].path)
    atomic_write_text(out / "model.h", header)
    atomic_write_text(out / "model.c", source)
    log(f"wrote {out / 'model.h'} and {out / 'model.c'}: flash {sizes['flash']:,} bytes (weights, biases, "
        f"requantisation), RAM {sizes['ram']:,} bytes (activation buffers); int tinycnn_predict(const unsigned char pixels[784])")
    return {**exported, **sizes}


def _export(deployable, fp32_path: Path, int8_path: Path | None, log) -> dict:
    """The fp32 ONNX model, checked against torch; and the int8 one where asked."""
    from tinycnn.deploy.onnx_export import export_fp32, export_int8

    fp32 = export_fp32(deployable, fp32_path)
    log(f"wrote {fp32_path} ({fp32.bytes:,} bytes); on the 10,000 test images onnxruntime's logits are within "
        f"{fp32.max_difference:.2g} of torch's, accuracy {fp32.accuracy:.2f}% (torch {fp32.torch_accuracy:.2f}%)")
    result = {"fp32": fp32}
    if int8_path is not None:
        quantised = export_int8(fp32_path, int8_path, deployable.config.dataset)
        log(f"wrote {int8_path} ({quantised.bytes:,} bytes against {fp32.bytes:,}); int8 test accuracy "
            f"{quantised.accuracy:.2f}% against {fp32.accuracy:.2f}% in fp32 ({quantised.accuracy - fp32.accuracy:+.2f} pp)")
        result["int8"] = quantised
    return result


def check_c_layers(network) -> None:
    """One line naming the first layer model.c cannot hold."""
    for name, module in network.named_modules():
        if next(module.children(), None) is not None or type(module).__name__ in ("PixelsToLogits", "GraphModule"):
            continue
        if type(module).__name__ not in C_LAYERS:
            raise TinycnnError(f"model.c cannot hold the layer {name.removeprefix('net.')} ({type(module).__name__}); "
                               "tinycnn's C supports conv, BatchNorm, ReLU, max-pool, avg-pool / GAP, 1x1 conv, linear, "
                               "flatten, dropout and log_softmax")
