"""The `licodec` command through a subprocess: exit codes, one-line messages, no partial output files."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def run(*args, stdin=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "licodec.cli", *args], input=stdin, capture_output=True,
                          cwd=cwd, timeout=300)


@pytest.fixture
def photo(tmp_path):
    y, x = np.mgrid[0:48, 0:70]
    array = np.stack([(x * 3) % 256, (y * 5) % 256, (x * y) % 256], axis=2).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(array).save(path)
    return path


def _one_line_error(result, fragment):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("licodec: ") and fragment in lines[0], lines
    assert b"Traceback" not in result.stderr


def test_compress_decompress_info(photo, tmp_path):
    result = run("compress", str(photo), "-q", "2")
    assert result.returncode == 0, result.stderr
    lic = tmp_path / "photo.lic"
    assert lic.exists() and b"bpp" in result.stderr
    info = run("info", str(lic))
    assert info.returncode == 0 and b"balle2018-hyperprior" in info.stdout and b"70" in info.stdout
    out = tmp_path / "back.png"
    result = run("decompress", str(lic), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (70, 48)


def test_stdin_and_stdout(photo):
    encoded = run("compress", "-", stdin=photo.read_bytes())
    assert encoded.returncode == 0 and encoded.stdout[:4] == b"\x89LIC"
    decoded = run("decompress", "-", stdin=encoded.stdout)
    assert decoded.returncode == 0 and decoded.stdout[:8] == b"\x89PNG\r\n\x1a\n"


def test_existing_output_is_not_overwritten(photo, tmp_path):
    target = tmp_path / "photo.lic"
    target.write_bytes(b"mine")
    _one_line_error(run("compress", str(photo)), "exists")
    assert target.read_bytes() == b"mine"
    assert run("compress", str(photo), "--force").returncode == 0
    assert target.read_bytes()[:4] == b"\x89LIC"


def test_errors_are_one_line_and_leave_no_file(tmp_path):
    _one_line_error(run("compress", str(tmp_path / "missing.png")), "no such file")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"definitely not an image")
    _one_line_error(run("compress", str(junk)), "not an image")
    assert not (tmp_path / "junk.lic").exists()
    fake = tmp_path / "fake.lic"
    fake.write_bytes(b"\x89LIC\x01garbage")
    _one_line_error(run("decompress", str(fake)), "truncated")
    assert not (tmp_path / "fake.png").exists()
    _one_line_error(run("decompress", str(junk)), "not a .lic file")
    _one_line_error(run("info", str(junk)), "not a .lic file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.lic", "junk.png"]


def test_bad_options(photo):
    _one_line_error(run("compress", str(photo), "--codec", "nope"), "unknown codec")
    _one_line_error(run("compress", str(photo), "--quality", "0"), "quality")
    assert run("compress", str(photo), "--quality", "x").returncode == 2


def test_transparency_is_refused(tmp_path):
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (8, 8), (1, 2, 3, 0)).save(path)
    _one_line_error(run("compress", str(path)), "transparency")
    assert not (tmp_path / "alpha.lic").exists()


def test_folder(photo, tmp_path):
    Image.open(photo).convert("L").save(tmp_path / "gray.png")
    (tmp_path / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    result = run("compress", str(tmp_path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["gray.lic", "photo.lic"]


def test_zoo_and_taxonomy():
    result = run("zoo")
    assert result.returncode == 0 and b"balle2018-hyperprior" in result.stdout
    result = run("taxonomy", "--markdown")
    assert result.returncode == 0 and b"| balle2017-factorized |" in result.stdout


def test_target_bpp_and_conflicting_options(photo, tmp_path):
    out = tmp_path / "t.lic"
    result = run("compress", str(photo), "-o", str(out), "--target-bpp", "2.0")
    assert result.returncode == 0, result.stderr
    assert b"quality" in result.stderr and b"encodes" in result.stderr
    assert 8 * out.stat().st_size / (48 * 70) <= 2.0
    _one_line_error(run("compress", str(photo), "-o", str(tmp_path / "u.lic"), "--target-bpp", "1",
                        "--quality", "2"), "give one of")
    _one_line_error(run("compress", str(photo), "-o", str(tmp_path / "v.lic"), "--target-psnr", "99"),
                    "above what this codec reaches")
    assert not (tmp_path / "u.lic").exists() and not (tmp_path / "v.lic").exists()


def test_options_of_other_codec_families_are_clear_errors(photo, tmp_path):
    """--preserve needs a generative codec and --iterations a progressive one."""
    out = tmp_path / "p.lic"
    mask = tmp_path / "mask.png"
    Image.fromarray(np.full((48, 70), 255, dtype=np.uint8)).save(mask)
    _one_line_error(run("compress", str(photo), "-o", str(out), "--preserve", str(mask)), "selective generation")
    assert not out.exists()
    assert run("compress", str(photo), "-o", str(out)).returncode == 0
    _one_line_error(run("decompress", str(out), "-o", str(tmp_path / "p.png"), "--iterations", "2"),
                    "not progressive")
    assert not (tmp_path / "p.png").exists()


def _one_line(result, fragment, status=1):
    assert result.returncode == status, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("licodec: ") and fragment in lines[0], lines


def test_usage_errors_are_one_line(photo):
    _one_line(run("compress", str(photo), "--bogus"), "No such option", status=2)
    _one_line(run("compress"), "Missing argument", status=2)
    _one_line(run("compress", str(photo), "-q", "x"), "not a valid float", status=2)
    _one_line(run("frobnicate"), "No such command", status=2)
    assert run("--version").returncode == 0 and run("info", "--help").returncode == 0


def test_unwritable_outputs_are_one_line(photo, tmp_path):
    # /proc refuses new files even to root, for whom a read-only folder is writable.
    lic = tmp_path / "photo.lic"
    assert run("compress", str(photo), "-o", str(lic)).returncode == 0
    _one_line(run("compress", str(photo), "-o", "/proc/photo.lic"), "cannot write")
    _one_line(run("decompress", str(lic), "-o", "/proc/photo.png"), "cannot write")
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(photo.read_bytes())
    _one_line(run("compress", str(folder), "-o", "/proc/out"), "cannot create the output folder")
    (tmp_path / "afile").write_bytes(b"")
    _one_line(run("compress", str(folder), "-o", str(tmp_path / "afile" / "out")), "cannot create")


def _shell(command, tmp_path):
    import os

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.run(["bash", "-c", command], capture_output=True, cwd=tmp_path, timeout=300, env=env)


def test_stdout_full_or_closed_is_one_line(photo, tmp_path):
    lic = tmp_path / "photo.lic"
    assert run("compress", str(photo), "-o", str(lic)).returncode == 0
    cli = f"{sys.executable} -m licodec.cli decompress {lic} -o -"
    _one_line(_shell(f"{cli} > /dev/full", tmp_path), "No space left on device")
    _one_line(_shell(f"{cli} >&-", tmp_path), "stdout")


def test_pixel_limit_flag(photo, tmp_path):
    _one_line(run("compress", str(photo), "--max-pixels", "1000"), "--max-pixels")
    assert run("compress", str(photo), "--max-pixels", "4000", "-f").returncode == 0
    _one_line(run("decompress", str(tmp_path / "photo.lic"), "--max-pixels", "1000"), "limit")


def test_metadata_kept_unless_strip(tmp_path):
    from tests.test_io import _tagged_jpeg

    data, icc, _ = _tagged_jpeg(orientation=6)
    (tmp_path / "phone.jpg").write_bytes(data)
    assert run("compress", str(tmp_path / "phone.jpg"), "-q", "1").returncode == 0
    assert run("decompress", str(tmp_path / "phone.lic"), "-o", str(tmp_path / "back.jpg")).returncode == 0
    back = Image.open(tmp_path / "back.jpg")
    assert back.size == (40, 64) and back.info.get("icc_profile") == icc
    assert back.getexif().get(0x010F) == "TestCam"
    assert run("compress", str(tmp_path / "phone.jpg"), "-q", "1", "--strip", "-f").returncode == 0
    assert run("decompress", str(tmp_path / "phone.lic"), "-o", str(tmp_path / "bare.png")).returncode == 0
    assert "icc_profile" not in Image.open(tmp_path / "bare.png").info


def test_16_bit_needs_its_flag_and_warns_in_one_line(tmp_path):
    from tests.test_io import png16

    (tmp_path / "deep.png").write_bytes(png16(np.full((16, 16, 3), 30000, np.uint16)))
    _one_line(run("compress", str(tmp_path / "deep.png")), "--reduce-to-8-bit")
    result = run("compress", str(tmp_path / "deep.png"), "--reduce-to-8-bit")
    assert result.returncode == 0
    assert result.stderr.decode().splitlines()[0].startswith("licodec: warning: ")


def test_new_outputs_follow_the_umask_and_force_keeps_the_mode(photo, tmp_path):
    import os
    import stat

    result = _shell(f"umask 027; {sys.executable} -m licodec.cli compress {photo} -o new.lic", tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "new.lic").st_mode) == 0o640
    os.chmod(tmp_path / "new.lic", 0o644)
    result = _shell(f"umask 077; {sys.executable} -m licodec.cli compress {photo} -o new.lic -f", tmp_path)
    assert result.returncode == 0 and stat.S_IMODE(os.stat(tmp_path / "new.lic").st_mode) == 0o644


@pytest.mark.slow
def test_out_of_memory_is_one_line(tmp_path):
    import resource

    Image.new("RGB", (4000, 3000), (90, 120, 30)).save(tmp_path / "big.png")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    result = subprocess.run([sys.executable, "-m", "licodec.cli", "compress", str(tmp_path / "big.png")],
                            capture_output=True, timeout=300, preexec_fn=limit)
    _one_line(result, "out of memory")
    assert not (tmp_path / "big.lic").exists()
def test_renamed_flags_warn_and_still_work(tmp_path):
    from licodec.cli import _rename_flags

    assert _rename_flags("eval", ["--codecs", "jpeg", "--out=x", "--", "--out"]) == [
        "--codec", "jpeg", "--output=x", "--", "--out"]
    assert _rename_flags("compress", ["--out", "x"]) == ["--out", "x"]
    result = run("eval", "--codecs", "jpeg", "--dataset", str(tmp_path / "none"))
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1 and "--codecs is now --codec" in lines[0] and "unknown dataset" in lines[1]


def test_named_dataset_found_without_root(tmp_path):
    result = subprocess.run([sys.executable, "-m", "licodec.cli", "eval", "--dataset", "kodak"], capture_output=True,
                            env={**os.environ, "LICODEC_DATA": str(tmp_path)}, timeout=60)
    _one_line_error(result, f"kodak: not in {tmp_path / 'kodak'}")


def test_decompress_output_formats_by_suffix(photo, tmp_path):
    lic = tmp_path / "photo.lic"
    assert run("compress", str(photo), "-q", "1", "-o", str(lic)).returncode == 0
    for suffix, image_format in ((".heic", "HEIF"), (".jpg", "JPEG"), (".webp", "WEBP")):
        out = tmp_path / f"back{suffix}"
        result = run("decompress", str(lic), "-o", str(out))
        assert result.returncode == 0, result.stderr
        import pillow_heif

        pillow_heif.register_heif_opener()
        with Image.open(out) as image:
            assert image.format == image_format and image.size == (70, 48)
    _one_line_error(run("decompress", str(lic), "-o", str(tmp_path / "back.xyz")), "unknown image suffix '.xyz'")
    assert not (tmp_path / "back.xyz").exists()


def test_decompress_folder_into_folder(photo, tmp_path):
    coded = tmp_path / "coded"
    (coded / "sub").mkdir(parents=True)
    assert run("compress", str(photo), "-q", "1", "-o", str(coded / "a.lic")).returncode == 0
    (coded / "sub" / "b.lic").write_bytes((coded / "a.lic").read_bytes())
    result = run("decompress", str(coded), "-o", str(tmp_path / "decoded"), "--format", "png")
    assert result.returncode == 0, result.stderr
    assert b"decompressing" in result.stderr and b"2 files" in result.stderr
    for name in ("a.png", "sub/b.png"):
        assert Image.open(tmp_path / "decoded" / name).size == (70, 48)


def test_emulated_bf16_warns_once_and_auto_picks_fp32(photo, tmp_path):
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}  # oneDNN may not use native bf16: it emulates it
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(photo.read_bytes())
    result = subprocess.run([sys.executable, "-m", "licodec.cli", "compress", str(folder), "-q", "1",
                             "--precision", "bf16"], capture_output=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(b"warning: bf16 is emulated") == 1
    auto = subprocess.run([sys.executable, "-m", "licodec.cli", "compress", str(photo), "-q", "1", "-o", "-",
                           "--precision", "auto"], capture_output=True, env=env, timeout=120)
    fp32 = run("compress", str(photo), "-q", "1", "-o", "-")
    assert auto.returncode == 0 and b"warning" not in auto.stderr and auto.stdout == fp32.stdout
