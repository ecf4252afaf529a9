"""Time one overfitting iteration of ladune2023-coolchic (forward, backward, Adam step) at 768x512, beside a
straightforward PyTorch implementation of the same decoder in the same run, and (with --efforts) the encode time of
one image at each effort.

The straightforward version is what one writes first: the ARM as a masked 5x9 convolution over each grid followed
by 1x1 convolutions, each grid upsampled to full resolution on its own by repeated transposed convolutions, the
synthesis as 1x1 and 3x3 convolutions. licodec's gathers the contexts of all grids by fixed shifted views into one
matrix, runs the MLPs as matrix products over it, and upsamples the grids as one cascade.

    OMP_NUM_THREADS=1 python benchmarks/bench_overfit.py --threads 1 [--image kodim01.png] [--efforts 1,2]
    OMP_NUM_THREADS=1 python benchmarks/bench_overfit.py --threads 1 --image kodim23.png --rd 2,4,6,7 --crop 256

`--rd` skips the timing and codes the image (its centre crop with --crop) at those qualities and --effort for
real, beside JPEG and AVIF on the same pixels, and prints the points and the BD-rates.

Times are printed with the CPU's name; compare them as ratios within one run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from licodec.codecs import ladune2023 as cc
from licodec.entropy import laplace


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def straightforward_pass(fit: cc.Fit, x: torch.Tensor, lmbda: float) -> torch.Tensor:
    """The same RD loss as `ladune2023.rd_pass` (noise phase), written with convolutions per grid."""
    d = fit.decoder
    mask = torch.zeros(5, 9)
    for dy, dx in laplace.CONTEXT_OFFSETS:
        mask[dy + 2, dx + 4] = 1
    index = [(dy + 2) * 9 + dx + 4 for dy, dx in laplace.CONTEXT_OFFSETS]
    kernel = torch.zeros(laplace.CONTEXT, 45)
    kernel[:, index] = d.arm_w1
    kernel = (kernel * mask.reshape(1, 45)).reshape(laplace.CONTEXT, 1, 5, 9)
    bits = 0
    hats = [g + torch.rand_like(g) - 0.5 for g in fit.latents]
    full = []
    for level, y in enumerate(hats):
        y4 = y[None, None]
        h = torch.relu(F.conv2d(F.pad(y4, (4, 4, 2, 2)), kernel, d.arm_b1))  # masked: only causal taps
        h = torch.relu(F.conv2d(h, d.arm_w2[:, :, None, None], d.arm_b2)) + h
        out = F.conv2d(h, d.arm_w3[:, :, None, None], d.arm_b3)
        bits = bits + laplace.laplace_bits(y4[0, 0], out[0, 0], out[0, 1]).sum()
        u = y4
        for step in range(level - 1, -1, -1):  # this grid alone, through every upsampling step
            for dim in (3, 2):
                even = F.pad(d.up_even[step], (0, 1))
                odd = F.pad(d.up_odd[step], (1, 0))
                k = torch.stack([even, odd])[:, None, None] if dim == 3 else torch.stack([even, odd])[:, None, :, None]
                pad = (2, 2, 0, 0) if dim == 3 else (0, 0, 2, 2)
                phases = F.conv2d(F.pad(u, pad, mode="replicate"), k)
                u = torch.stack([phases[:, 0], phases[:, 1]], dim).flatten(dim - 1, dim)[:, None]
        full.append(u)
    features = torch.cat(full, 1)
    hidden = torch.relu(F.conv2d(features, d.syn_w1[:, :, None, None], d.syn_b1))
    xh = F.conv2d(hidden, d.syn_w2[:, :, None, None], d.syn_b2)
    xh = xh + F.conv2d(torch.relu(xh), d.syn_wa, d.syn_ba, padding=1)
    xh = xh + F.conv2d(xh, d.syn_wb, d.syn_bb, padding=1)
    height, width = x.shape[-2:]
    return F.mse_loss(xh, x) + lmbda * bits / (height * width)


def _iteration_times(step, fit: cc.Fit, repeats: int) -> list[float]:
    optimizer = torch.optim.Adam([*fit.latents, *fit.decoder.parameters()], lr=cc.LEARNING_RATE)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss = step()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times[1:]  # the first warms up


def main() -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=None, help="A 768x512 image (default: random pixels of that size).")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--efforts", default="", help="Comma-separated efforts to time a whole encode at.")
    parser.add_argument("--quality", type=float, default=4)
    parser.add_argument("--rd", default="", help="Comma-separated qualities: code them and compare (see above).")
    parser.add_argument("--effort", type=int, default=1, help="The effort of --rd.")
    parser.add_argument("--crop", type=int, default=0, help="--rd on the centre SIZE x SIZE crop (0: whole image).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.image:
        from licodec.io import read_image

        x = read_image(args.image)[0]
    else:
        x = torch.rand(1, 3, 512, 768)
    codec = cc.CoolChic()
    codec.progress = False
    if args.rd:
        return _rd(codec, x, [float(q) for q in args.rd.split(",")], args.effort, args.crop)
    target = codec.pad(x)
    height, width = x.shape[-2:]
    lmbda = codec.lmbda(args.quality - 1)
    fit = codec._start(target, 0)
    with torch.no_grad():  # latents away from zero, so that every path does real work
        for g in fit.latents:
            g.normal_(0, 2)
    schedule = cc._Schedule(10)
    ours = lambda: cc.rd_pass(fit, target, height, width, lmbda, schedule.quantizer(0))[0]  # noqa: E731
    plain = lambda: straightforward_pass(fit, target, lmbda)  # noqa: E731
    with torch.no_grad():
        a, b = float(ours()), float(plain())
    print(f"{_cpu()}, {torch.get_num_threads()} threads, image {width}x{height}")
    print(f"loss check (random noise differs): licodec {a:.5f}, straightforward {b:.5f}")
    results = {"licodec": [], "straightforward": []}
    for _ in range(2):  # interleaved, so that a change of load hits both
        results["licodec"] += _iteration_times(ours, fit, args.repeats)
        results["straightforward"] += _iteration_times(plain, fit, args.repeats)
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in results.items():
        print(f"{k:16s} median {med[k]:.3f} s / iteration (min {min(v):.3f}, max {max(v):.3f})")
    print(f"ratio straightforward / licodec: {med['straightforward'] / med['licodec']:.2f}x")
    for effort in [int(e) for e in args.efforts.split(",") if e.strip()]:
        start = time.perf_counter()
        encoded = codec.compress(x, args.quality, effort=effort)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        codec.decompress(encoded)
        decode = time.perf_counter() - start
        bpp = 8 * sum(map(len, encoded.sections)) / (height * width)
        print(f"effort {effort} ({cc.EFFORT_ITERATIONS[effort]} iterations): encode {seconds:.0f} s, "
              f"decode {decode:.2f} s, {bpp:.4f} bpp (sections only)")


def _rd(codec: cc.CoolChic, x: torch.Tensor, qualities: list[float], effort: int, crop: int) -> None:
    import numpy as np

    from licodec.api import compress_tensor, decompress_tensor
    from licodec.eval.bdrate import bd_rate
    from licodec.eval.classical import CLASSICAL
    from licodec.eval.metrics import psnr
    from licodec.io import to_uint8

    if crop:
        height, width = x.shape[-2:]
        top, left = (height - crop) // 2, (width - crop) // 2
        x = x[..., top : top + crop, left : left + crop].contiguous()
    pixels = x.shape[-2] * x.shape[-1]
    print(f"{_cpu()}, {torch.get_num_threads()} threads, {x.shape[-1]}x{x.shape[-2]} pixels, effort {effort}")
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for quality in qualities:
        start = time.perf_counter()
        data = compress_tensor(x, 3, codec, quality, effort=effort)
        middle = time.perf_counter()
        x_hat, _ = decompress_tensor(data)
        bpp, value = 8 * len(data) / pixels, psnr(x, x_hat)
        curves.setdefault("coolchic", ([], []))[0].append(bpp)
        curves["coolchic"][1].append(value)
        print(f"ladune2023-coolchic q{quality:g}: {bpp:.4f} bpp {value:.2f} dB, encode {middle - start:.0f} s, "
              f"decode {time.perf_counter() - middle:.2f} s", flush=True)
    image = to_uint8(x)
    for name in ("jpeg", "avif"):
        rates, values = curves.setdefault(name, ([], []))
        for setting in CLASSICAL[name].settings:
            data = CLASSICAL[name].encode(image, setting)
            decoded = torch.from_numpy(np.array(CLASSICAL[name].decode(data))).permute(2, 0, 1)[None].float() / 255
            rates.append(8 * len(data) / pixels)
            values.append(psnr(x, decoded))
        print(f"BD-rate (PSNR, cubic) of ladune2023-coolchic against {name}: "
              f"{bd_rate(curves[name], curves['coolchic']):+.1f} % (NaN: under 4 points or no overlap)")


if __name__ == "__main__":
    main()
