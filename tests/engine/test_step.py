"""The training step's helpers."""

import subprocess
import sys

# Three networks compiled one after another in one process, dynamo's limit of cached
# compilations per function lowered to 2 so that the third would pass it.
COMPILE_ONE_AFTER_ANOTHER = """
import torch
import torch._dynamo
from tinycnn.engine.step import compile_model
torch._dynamo.config.recompile_limit = 2
for width in (2, 3, 4):
    model = compile_model(torch.nn.Sequential(torch.nn.Conv2d(1, width, 3), torch.nn.ReLU()), torch.device("cpu"))
    print(tuple(model(torch.ones(1, 1, 5, 5)).shape))
"""


def test_networks_compiled_one_after_another_on_the_cpu_all_compile_and_quietly():
    done = subprocess.run([sys.executable, "-c", COMPILE_ONE_AFTER_ANOTHER], check=False, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["(1, 2, 3, 3)", "(1, 3, 3, 3)", "(1, 4, 3, 3)"]
    # Past the limit dynamo runs the network eagerly and says so.
    assert "recompile_limit" not in done.stderr
    # A CUDA build of torch on a machine without a GPU warns when inductor builds its CPU
    # kernels; the run is a CPU run and the warning only confuses.
    assert "No CUDA runtime" not in done.stderr
