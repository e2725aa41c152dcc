import subprocess
import sys

# The engine's option declarations, which `dstbench.config` reads: plain Python, no torch, no training.
DECLARATIONS = ["dstbench.sparsity", "dstbench.sparsity.config", "dstbench.sparsity.distributions",
                "dstbench.sparsity.registry"]


def test_analysis_and_report_never_import_training_code():
    # a fresh interpreter: the test session itself has torch loaded by conftest
    code = ("import sys, dstbench.analysis, dstbench.report, dstbench.report.commands; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('dstbench.train', "
            "'dstbench.sparsity'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(DECLARATIONS)
