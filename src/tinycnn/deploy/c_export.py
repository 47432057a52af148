"""The int8 network as C99 for a microcontroller: model.h and model.c, integer arithmetic
only, no malloc, fixed buffers.

    int tinycnn_predict(const unsigned char pixels[784]);   /* MNIST bytes, 0 paper ... 255 ink */

The C is compiled from the int8 ONNX model that onnxruntime's static quantisation makes
(deploy/onnx_export.py, QOperator form), so that both compute the same thing:

- the input's normalisation and quantisation: a 256-entry table, computed here exactly as
  onnxruntime computes it in float32;
- QLinearConv (and QGemm): int32 sums of (x - x_zero) * w, plus the int32 bias, requantised
  by a per-channel fixed-point multiplier and shift, as TFLite Micro and CMSIS-NN do;
- MaxPool on int8 values; QLinearAveragePool by integer sums;
- a float stretch of the graph between DequantizeLinear and QuantizeLinear (BatchNorm after a
  ReLU, a mean over the map, a max-pool or a reshape in float) in int32 fixed point: the
  values in units of the output's scale, times 2**16.

onnxruntime rounds its float requantisation half to even and the C rounds half up, so the two
may differ by one step where a value falls exactly half way: the tests hold their predictions
to at least 99.9% agreement on the test set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinycnn.errors import TinycnnError

SUPPORTED = "conv, BatchNorm (folded), ReLU, max-pool, avg-pool / GAP, 1x1 conv, linear, flatten, dropout, log_softmax"
FRACTION = 16  # fixed-point bits of a float stretch's values
SHIFT = 30  # bits of the stretch's multipliers


# ---------------------------------------------------------------------- the layers


@dataclass
class Tensor:
    shape: tuple[int, ...]  # per image: (C, H, W) or (F,)
    scale: float
    zero: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class Step:
    """One call of model.c, with the constant arrays it reads."""

    call: str  # a C statement, with {x} / {y} for its input and output buffers
    arrays: list[tuple[str, str, np.ndarray]] = field(default_factory=list)  # (C type, name, values)
    source: str = "q"  # the buffer kind it reads: "q" (int8) or "r" (int32 fixed point)
    target: str = "q"
    out_size: int = 0


def quantize_multiplier(real: float) -> tuple[int, int]:
    """real = m / 2**31 * 2**-shift with m in [2**30, 2**31): TFLite's QuantizeMultiplier."""
    if real <= 0:
        return 0, 0
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2**exponent, mantissa in [0.5, 1)
    m = round(mantissa * (1 << 31))
    if m == 1 << 31:
        m //= 2
        exponent += 1
    return m, -exponent


def _out_side(size: int, pad_before: int, pad_after: int, kernel: int, stride: int) -> int:
    """A convolution's or pool's output side (floor, as ONNX's default)."""
    return (size + pad_before + pad_after - kernel) // stride + 1


def _whole_map(shape: tuple) -> str:
    """The `struct pool_shape` literal of a pool over the whole map (GAP)."""
    c, h, w = shape
    return f"&(const struct pool_shape){{{c}, {h}, {w}, {h}, {w}, 1, 1, 0, 0, 1, 1}}"


def _requantised(base: str, w: np.ndarray, bias: np.ndarray, real_multipliers) -> list[tuple[str, str, np.ndarray]]:
    """The arrays of a requantised convolution or linear layer: int8 weights, int32 bias, and
    per output channel the fixed-point multiplier and shift of x_scale * w_scale / y_scale."""
    mult, shift = zip(*(quantize_multiplier(float(r)) for r in real_multipliers))
    return [("int8_t", f"{base}_w", w.astype(np.int8)), ("int32_t", f"{base}_b", bias),
            ("int32_t", f"{base}_m", np.array(mult, np.int64)), ("int8_t", f"{base}_s", np.array(shift, np.int64))]


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Compiler:
    """Walks the int8 ONNX graph in order and turns it into Steps."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.graph = model.graph
        self.values = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        for node in self.graph.node:  # constants the exporter left as nodes
            if node.op_type == "Constant":
                self.values[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
        self.tensors: dict[str, Tensor] = {}
        self.steps: list[Step] = []
        self.count = 0
        self.output: Tensor | None = None
        self.output_kind = "q"

    def const(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise TinycnnError(f"the int8 graph computes {name} at run time; model.c needs it constant")
        return self.values[name]

    def scalar(self, name: str) -> float:
        return float(np.asarray(self.const(name)).reshape(-1)[0])

    def new_name(self, what: str) -> str:
        self.count += 1
        return f"L{self.count}_{what}"

    def unsupported(self, node) -> TinycnnError:
        return TinycnnError(f"model.c cannot hold the layer {node.name or node.output[0]} (ONNX {node.op_type}); "
                            f"tinycnn's C supports {SUPPORTED}")

    # -------------------------------------------------------------- walking

    def compile(self) -> None:
        nodes = [n for n in self.graph.node if n.op_type != "Constant"]
        graph_input = self.graph.input[0].name
        prefix, i = [], 0
        while i < len(nodes) and nodes[i].op_type != "QuantizeLinear":
            prefix.append(nodes[i])
            i += 1
        if i == len(nodes):
            raise TinycnnError("the int8 graph has no QuantizeLinear: it is not onnxruntime's static int8 form")
        self.input_table(graph_input, prefix, nodes[i])
        i += 1
        while i < len(nodes):
            node = nodes[i]
            if node.op_type == "DequantizeLinear":
                island = [node]
                i += 1
                while i < len(nodes) and nodes[i].op_type != "QuantizeLinear":
                    island.append(nodes[i])
                    i += 1
                end = nodes[i] if i < len(nodes) else None
                self.float_stretch(island, end)
                i += 1
                continue
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None:
                raise self.unsupported(node)
            handler(node)
            i += 1

    def input_table(self, graph_input: str, prefix: list, quantize) -> None:
        """Bytes 0..255 through the float ops before the first QuantizeLinear, in float32 as
        onnxruntime computes them, then quantised: a table."""
        values = {graph_input: (np.arange(256, dtype=np.float32) / np.float32(255.0))}
        for node in prefix:
            ops = {"Sub": np.subtract, "Div": np.divide, "Mul": np.multiply, "Add": np.add}
            if node.op_type not in ops:
                raise self.unsupported(node)
            a, b = (values[n] if n in values else np.asarray(self.const(n), dtype=np.float32) for n in node.input)
            values[node.output[0]] = ops[node.op_type](a, b).astype(np.float32)
        x = values[quantize.input[0]]
        scale, zero = np.float32(self.scalar(quantize.input[1])), int(self.scalar(quantize.input[2]))
        table = np.clip(np.rint(x / scale) + zero, -128, 127).astype(np.int8)  # rint: half to even, as onnxruntime
        name = self.new_name("input")
        self.steps.append(Step(f"input_table(pixels, {name}, {{y}}, 784);", [("int8_t", name, table)], source="pixels", out_size=784))
        self.tensors[quantize.output[0]] = Tensor((1, 28, 28), float(scale), zero)

    # -------------------------------------------------------------- int8 layers

    def op_QLinearConv(self, node) -> None:
        a = _attrs(node)
        x = self.tensors[node.input[0]]
        if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise TinycnnError(f"model.c cannot hold the layer {node.name} (a grouped or dilated convolution); "
                               f"tinycnn's C supports {SUPPORTED}")
        w = self.const(node.input[3]).astype(np.int32)
        w_scale = np.broadcast_to(np.asarray(self.const(node.input[4]), dtype=np.float64).reshape(-1), (w.shape[0],))
        w_zero = np.asarray(self.const(node.input[5])).reshape(-1)
        if np.any(w_zero != 0):
            raise TinycnnError("the int8 weights are not symmetric (a weight zero point is not 0)")
        y_scale, y_zero = self.scalar(node.input[6]), int(self.scalar(node.input[7]))
        bias = self.const(node.input[8]).astype(np.int32) if len(node.input) > 8 and node.input[8] else np.zeros(w.shape[0], np.int32)
        cout, cin, kh, kw = w.shape
        stride = a.get("strides", [1, 1])
        pads = a.get("pads", [0, 0, 0, 0])
        if cin != x.shape[0] or len(x.shape) != 3:
            raise TinycnnError(f"{node.name}: a convolution of {cin} channels after a tensor of shape {x.shape}")
        _, h, wd = x.shape
        oh, ow = _out_side(h, pads[0], pads[2], kh, stride[0]), _out_side(wd, pads[1], pads[3], kw, stride[1])
        base = self.new_name("conv")
        arrays = _requantised(base, w, bias, x.scale * np.asarray(w_scale, np.float64) / y_scale)
        call = (f"conv(&(const struct conv_shape){{{cin}, {h}, {wd}, {cout}, {kh}, {kw}, {stride[0]}, {stride[1]}, {pads[0]}, {pads[1]}, "
                f"{oh}, {ow}, {x.zero}, {y_zero}}}, {{x}}, {{y}}, {base}_w, {base}_b, {base}_m, {base}_s);")
        self.steps.append(Step(call, arrays, out_size=cout * oh * ow))
        self.tensors[node.output[0]] = Tensor((cout, oh, ow), y_scale, y_zero)

    def op_MaxPool(self, node) -> None:
        x = self.tensors[node.input[0]]
        pool, out, _ = self.pool_geometry(node, x.shape)
        self.steps.append(Step(f"max_pool({pool}, {{x}}, {{y}});", out_size=math.prod(out)))
        self.tensors[node.output[0]] = Tensor(out, x.scale, x.zero)

    def pool_geometry(self, node, shape: tuple, average: bool = False) -> tuple[str, tuple, list]:
        """A pool's `struct pool_shape` literal, its output's shape and its kernel; one line for
        what the C's pools do not do."""
        a = _attrs(node)
        if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise TinycnnError(f"model.c cannot hold the layer {node.name} (a pool with ceil_mode or dilation)")
        k = a["kernel_shape"]
        stride, pads = a.get("strides", k), a.get("pads", [0, 0, 0, 0])
        if average and any(pads) and not a.get("count_include_pad", 0):
            raise TinycnnError(f"model.c cannot hold the layer {node.name} (an average pool that leaves its padding out)")
        c, h, w = shape
        oh, ow = _out_side(h, pads[0], pads[2], k[0], stride[0]), _out_side(w, pads[1], pads[3], k[1], stride[1])
        literal = (f"&(const struct pool_shape){{{c}, {h}, {w}, {k[0]}, {k[1]}, {stride[0]}, {stride[1]}, "
                   f"{pads[0]}, {pads[1]}, {oh}, {ow}}}")
        return literal, (c, oh, ow), k

    def op_QLinearAveragePool(self, node) -> None:
        x = self.tensors[node.input[0]]
        pool, out, k = self.pool_geometry(node, x.shape, average=True)
        y_scale, y_zero = self.scalar(node.input[3]), int(self.scalar(node.input[4]))
        m, s = quantize_multiplier(x.scale / (y_scale * k[0] * k[1]))
        self.steps.append(Step(f"avg_pool({pool}, {{x}}, {{y}}, {x.zero}, {y_zero}, {m}, {s});", out_size=math.prod(out)))
        self.tensors[node.output[0]] = Tensor(out, y_scale, y_zero)

    def op_QLinearGlobalAveragePool(self, node) -> None:
        x = self.tensors[node.input[0]]
        c, h, w = x.shape
        y_scale, y_zero = self.scalar(node.input[3]), int(self.scalar(node.input[4]))
        m, s = quantize_multiplier(x.scale / (y_scale * h * w))
        self.steps.append(Step(f"avg_pool({_whole_map(x.shape)}, {{x}}, {{y}}, {x.zero}, {y_zero}, {m}, {s});", out_size=c))
        self.tensors[node.output[0]] = Tensor((c, 1, 1), y_scale, y_zero)

    def op_QGemm(self, node) -> None:
        a = _attrs(node)
        x = self.tensors[node.input[0]]
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
            raise TinycnnError(f"model.c cannot hold the layer {node.name} (a Gemm with transA or alpha)")
        w = self.const(node.input[3]).astype(np.int32)
        if not a.get("transB", 0):
            w = w.T
        cout, cin = w.shape
        if cin != x.size:
            raise TinycnnError(f"{node.name}: a linear layer of {cin} inputs after a tensor of {x.size}")
        w_scale = np.broadcast_to(np.asarray(self.const(node.input[4]), dtype=np.float64).reshape(-1), (cout,))
        if np.any(np.asarray(self.const(node.input[5])) != 0):
            raise TinycnnError("the int8 weights are not symmetric (a weight zero point is not 0)")
        bias = self.const(node.input[6]).astype(np.int32) if len(node.input) > 6 and node.input[6] else np.zeros(cout, np.int32)
        if len(node.input) < 9 or not node.input[7]:
            raise TinycnnError(f"{node.name}: a linear layer with a float output; model.c needs it quantised")
        y_scale, y_zero = self.scalar(node.input[7]), int(self.scalar(node.input[8]))
        base = self.new_name("linear")
        arrays = _requantised(base, w, bias, x.scale * w_scale / y_scale)
        call = (f"conv(&(const struct conv_shape){{{cin}, 1, 1, {cout}, 1, 1, 1, 1, 0, 0, 1, 1, {x.zero}, {y_zero}}}, "
                f"{{x}}, {{y}}, {base}_w, {base}_b, {base}_m, {base}_s);")
        self.steps.append(Step(call, arrays, out_size=cout))
        self.tensors[node.output[0]] = Tensor((cout, 1, 1), y_scale, y_zero)

    def op_Reshape(self, node) -> None:
        x = self.tensors[node.input[0]]
        self.tensors[node.output[0]] = Tensor((x.size,), x.scale, x.zero)  # C buffers are flat: nothing moves

    op_Flatten = op_Reshape
    op_Squeeze = op_Reshape

    # -------------------------------------------------------------- a float stretch

    def float_stretch(self, nodes: list, end) -> None:
        """DequantizeLinear, float ops, then QuantizeLinear (or the graph's end), in int32
        values of the output's scale times 2**FRACTION."""
        dequantize = nodes[0]
        x = self.tensors[dequantize.input[0]]
        if end is not None:
            y_scale, y_zero = self.scalar(end.input[1]), int(self.scalar(end.input[2]))
        else:
            y_scale, y_zero = x.scale, 0  # the graph's end: only the order of the values matters
        shape = x.shape
        factor = round(x.scale / y_scale * (1 << (FRACTION + SHIFT)))
        name = self.new_name("dequantize")
        self.steps.append(Step(f"to_fixed({{x}}, {{y}}, {x.size}, {x.zero}, {name});",
                               [("int64_t", name, np.array([factor], np.int64))], source="q", target="r", out_size=x.size))
        last = dequantize.output[0]
        for node in nodes[1:]:
            if node.input[0] != last:
                raise TinycnnError(f"model.c cannot hold the layer {node.name}: a float stretch that branches")
            shape = self.fixed_op(node, shape, y_scale, end is None and node is nodes[-1])
            last = node.output[0]
        if end is None:
            self.output, self.output_kind = Tensor(shape, y_scale, 0), "r"
            return
        self.steps.append(Step(f"from_fixed({{x}}, {{y}}, {math.prod(shape)}, {y_zero});", source="r", target="q",
                               out_size=math.prod(shape)))
        self.tensors[end.output[0]] = Tensor(shape, y_scale, y_zero)

    def fixed_op(self, node, shape: tuple, y_scale: float, is_last: bool) -> tuple:
        op = node.op_type
        size = math.prod(shape)
        if op == "BatchNormalization":
            gamma, beta, mean, var = (np.asarray(self.const(n), dtype=np.float64) for n in node.input[1:5])
            eps = _attrs(node).get("epsilon", 1e-5)
            a = gamma / np.sqrt(var + eps)
            b = beta - a * mean
            name = self.new_name("batchnorm")
            arrays = [("int64_t", f"{name}_a", np.rint(a * (1 << SHIFT)).astype(np.int64)),
                      ("int64_t", f"{name}_b", np.rint(b / y_scale * (1 << FRACTION)).astype(np.int64))]
            self.steps.append(Step(f"fixed_affine({{x}}, {shape[0]}, {size // shape[0]}, {name}_a, {name}_b);", arrays,
                                   source="r", target="same", out_size=size))
            return shape
        if op == "Relu":
            self.steps.append(Step(f"fixed_relu({{x}}, {size});", source="r", target="same", out_size=size))
            return shape
        if op in ("MaxPool", "AveragePool"):
            pool, out, _ = self.pool_geometry(node, shape, average=op == "AveragePool")
            kind = "fixed_max_pool" if op == "MaxPool" else "fixed_avg_pool"
            self.steps.append(Step(f"{kind}({pool}, {{x}}, {{y}});", source="r", target="r", out_size=math.prod(out)))
            return out
        if op in ("GlobalAveragePool", "ReduceMean"):
            axes = list(np.asarray(self.const(node.input[1])).reshape(-1)) if op == "ReduceMean" and len(node.input) > 1 else _attrs(node).get("axes", [2, 3])
            if op == "ReduceMean" and sorted(int(a) % 4 for a in axes) != [2, 3]:
                raise TinycnnError(f"model.c cannot hold the layer {node.name} (a mean over other axes than the map's)")
            self.steps.append(Step(f"fixed_avg_pool({_whole_map(shape)}, {{x}}, {{y}});", source="r", target="r", out_size=shape[0]))
            return (shape[0], 1, 1)
        if op in ("Reshape", "Flatten", "Squeeze", "Identity"):
            return (size,)
        if op in ("LogSoftmax", "Softmax") and is_last:
            return shape  # monotonic: the digit is the largest value either way
        raise self.unsupported(node)


# ---------------------------------------------------------------------- C


def compile_to_c(int8_onnx: Path) -> tuple[str, str, dict]:
    """(model.h, model.c, sizes) for the int8 ONNX model at `int8_onnx`."""
    import onnx

    compiler = Compiler(onnx.load(str(int8_onnx)))
    compiler.compile()
    steps = compiler.steps
    if compiler.output is None:  # the last int8 tensor holds the logits
        last = [t for t in compiler.tensors.values()][-1]
        compiler.output, compiler.output_kind = last, "q"
    classes = compiler.output.size
    q_size = max([784] + [s.out_size for s in steps if s.target == "q"])
    r_size = max([0] + [s.out_size for s in steps if s.target in ("r", "same") or s.source == "r"])
    arrays = [a for s in steps for a in s.arrays]
    flash = sum(values.size * {"int8_t": 1, "int32_t": 4, "int64_t": 8}[ctype] for ctype, _, values in arrays)
    ram = 2 * q_size + (2 * 4 * r_size if r_size else 0)
    body, q_bufs, r_bufs = [], ["buf_q0", "buf_q1"], ["buf_r0", "buf_r1"]
    where = "pixels"
    qi = ri = 0
    for step in steps:
        if step.target == "same":
            body.append("    " + step.call.replace("{x}", where))
            continue
        out = q_bufs[qi] if step.target == "q" else r_bufs[ri]
        if step.target == "q":
            qi ^= 1
        else:
            ri ^= 1
        body.append("    " + step.call.replace("{x}", where).replace("{y}", out))
        where = out
    argmax = "argmax_q" if compiler.output_kind == "q" else "argmax_r"
    body.append(f"    return {argmax}({where}, {classes});")
    header = _HEADER.format(flash=flash, ram=ram, classes=classes)
    source = _source_start(q_size, max(r_size, 1))
    source += "".join(_array(ctype, name, values) for ctype, name, values in arrays)
    source += "\n" + kernels_for("\n".join(body)) + "\n"
    source += "int tinycnn_predict(const unsigned char pixels[784])\n{\n" + "\n".join(body) + "\n}\n"
    return header, source, {"flash": flash, "ram": ram, "classes": classes, "layers": len(steps)}


def kernels_for(code: str) -> str:
    """The kernels of kernels.c that `code` calls, with those they call, in the file's order."""
    import re

    text = (Path(__file__).parent / "kernels.c").read_text()
    pieces: dict[str, tuple[list[str], str]] = {}
    for chunk in re.split(r"^//@ (?=\w+\n)", text, flags=re.M)[1:]:
        name, _, rest = chunk.partition("\n")
        needs: list[str] = []
        match = re.match(r"//@ needs (.*)\n", rest)
        if match:
            needs = [n.strip() for n in match.group(1).split(",")]
            rest = rest[match.end():]
        pieces[name.strip()] = (needs, rest.rstrip() + "\n")
    wanted: set[str] = set()
    todo = [name for name in pieces if re.search(rf"\b{name}\(", code)]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(pieces[name][0])
    return "\n".join(code_ for name, (_, code_) in pieces.items() if name in wanted)


def _array(ctype: str, name: str, values: np.ndarray) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    suffix = "LL" if ctype == "int64_t" else ""
    lines = [", ".join(f"{v}{suffix}" if v != -(2**31) else "(-2147483647 - 1)" for v in flat[i:i + 16]) for i in range(0, len(flat), 16)]
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


_HEADER = """/* A digit classifier exported by tinycnn: int8 weights and activations, integer
 * arithmetic only, no dynamic memory. C99. */
#ifndef TINYCNN_MODEL_H
#define TINYCNN_MODEL_H

#define TINYCNN_FLASH_BYTES {flash}  /* the constant tables: weights, biases, requantisation */
#define TINYCNN_RAM_BYTES {ram}  /* the activation buffers */
#define TINYCNN_CLASSES {classes}

/* pixels: a 28x28 image, row by row, as MNIST stores it: 0 is the paper, 255 the ink.
 * Returns the digit, 0 to 9 (or the index of the largest of the network's outputs). */
int tinycnn_predict(const unsigned char pixels[784]);

#endif
"""

def _source_start(q_size: int, r_size: int) -> str:
    return f"""/* Generated by tinycnn export --format c; see model.h. */
#include <stdint.h>
#include "model.h"

#define FRACTION {FRACTION}
#define SHIFT {SHIFT}

static int8_t buf_q0[{q_size}], buf_q1[{q_size}];
static int32_t buf_r0[{r_size}], buf_r1[{r_size}];

struct conv_shape {{ int cin, h, w, cout, kh, kw, sh, sw, ph, pw, oh, ow, in_zero, out_zero; }};
struct pool_shape {{ int c, h, w, kh, kw, sh, sw, ph, pw, oh, ow; }};

"""


HARNESS = """#include <stdio.h>
#include "model.h"
int main(void)
{
    unsigned char image[784];
    while (fread(image, 1, 784, stdin) == 784)
        printf("%d\\n", tinycnn_predict(image));
    return 0;
}
"""


def c_predictions(directory: Path, images: np.ndarray) -> np.ndarray:
    """The digits the exported C (DIR/model.c, model.h) predicts for uint8 images (N, 28, 28):
    compiled with cc as strictly as a microcontroller's toolchain would be, beside a harness
    that reads images from stdin."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "main.c").write_text(HARNESS)
        binary = Path(tmp) / "predict"
        subprocess.run(["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror", "-I", str(directory),
                        str(Path(tmp) / "main.c"), str(Path(directory) / "model.c"), "-o", str(binary)],
                       check=True, capture_output=True)
        out = subprocess.run([str(binary)], input=images.astype(np.uint8).tobytes(), capture_output=True, check=True).stdout
    return np.array([int(v) for v in out.split()])
