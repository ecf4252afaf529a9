"""`python -m licodec` is the `licodec` command."""

import subprocess
import sys


def test_python_m_licodec_help():
    result = subprocess.run([sys.executable, "-m", "licodec", "--help"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"Usage: licodec ") and b"compress" in result.stdout


def test_quick_commands_import_no_torch(tmp_path):
    """--help, info, zoo and taxonomy answer without PyTorch (which takes seconds to import)."""
    from licodec.bitstream import Header, pack

    lic = tmp_path / "x.lic"
    lic.write_bytes(pack(Header("balle2018-hyperprior", "00" * 8, 16, 16, 3, 1.0), [b"ab"]))
    code = ("import sys; from licodec.cli import main\n"
            "try: main()\nfinally: print('torch' in sys.modules, file=sys.stderr)")
    for args in (["--help"], ["info", str(lic)], ["zoo"], ["taxonomy"], ["compress", "--help"]):
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr.strip().splitlines()[-1] == "False", args
