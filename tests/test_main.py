"""`python -m licodec` is the `licodec` command."""

import subprocess
import sys


def test_python_m_licodec_help():
    result = subprocess.run([sys.executable, "-m", "licodec", "--help"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"Usage: licodec ") and b"compress" in result.stdout
