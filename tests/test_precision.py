"""licodec.precision: auto picks bf16 only with native support; bf16 without it warns."""

import warnings

import pytest

from licodec import precision


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_native_support(monkeypatch, native):
    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.resolve("auto") == ("bf16" if native else "fp32")
        assert precision.resolve("fp32") == "fp32"


def test_emulated_bf16_warns(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    with pytest.warns(precision.PrecisionWarning, match="emulated"):
        assert precision.resolve("bf16") == "bf16"
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.resolve("bf16") == "bf16"


def test_detection_agrees_with_cpu_flags():
    flags = precision._cpu_flags()
    if flags:
        assert precision.native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def test_onednn_isa_limit_means_emulated(monkeypatch):
    precision.native_bf16.cache_clear()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    try:
        assert not precision.native_bf16() and precision.resolve("auto") == "fp32"
    finally:
        precision.native_bf16.cache_clear()


def test_api_accepts_auto():
    import licodec

    image = licodec.decompress(licodec.compress(__import__("numpy").full((32, 32, 3), 128, "uint8"), quality=1,
                                                precision="auto"), precision="auto")
    assert image.size == (32, 32)
