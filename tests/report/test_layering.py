import subprocess
import sys


def test_analysis_and_report_never_import_training_code():
    # a fresh interpreter: the test session itself has torch loaded by conftest
    code = ("import sys, dstbench.analysis, dstbench.report, dstbench.report.commands; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('dstbench.train', "
            "'dstbench.sparsity'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
