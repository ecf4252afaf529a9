"""licodec's import of CompressAI checkpoints against CompressAI itself, on the same weights.

For each architecture, a CompressAI model (random, and trained here for a few hundred steps) is imported with
`licodec.interop.compressai`, then both code the same Kodak crops:

- size: licodec's real .lic file against CompressAI's `compress()` strings plus licodec's header and checksums;
- PSNR: of licodec's decode against CompressAI's `decompress()`;
- determinism: licodec's bytes and pixels at 1 and 2 threads.

CompressAI 1.2.8 cannot be installed beside licodec (numpy), so run this from a separate environment that has both:

    PYTHONPATH=$PWD /path/to/venv-with-compressai/bin/python benchmarks/compressai_import.py [--steps 300]
"""

from __future__ import annotations

import argparse
import io
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"
TRAIN = ROOT.parent / "shared" / "data" / "train"
IMAGES = ("kodim01", "kodim05", "kodim15", "kodim23")


def crops(size: int) -> list[torch.Tensor]:
    from licodec.io import read_image

    out = []
    for name in IMAGES:
        x, _ = read_image(KODAK / f"{name}.png")
        top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
        out.append(x[..., top : top + size, left : left + size].contiguous())
    return out


def training_batches(size: int, batch: int, seed: int):
    from licodec.data.folder import list_images
    from licodec.io import read_image

    paths = list_images(TRAIN)
    rng = random.Random(seed)
    images = [read_image(p)[0] for p in rng.sample(paths, min(64, len(paths)))]
    images = [x for x in images if min(x.shape[-2:]) >= size]
    while True:
        chosen = []
        for x in rng.choices(images, k=batch):
            top, left = rng.randrange(x.shape[-2] - size + 1), rng.randrange(x.shape[-1] - size + 1)
            chosen.append(x[0, :, top : top + size, left : left + size])
        yield torch.stack(chosen)


def train(net, steps: int, lmbda: float, seed: int) -> None:
    """A few hundred steps of CompressAI's usual recipe: rate + lambda * 255^2 * MSE, Adam, aux loss."""
    parameters = [p for n, p in net.named_parameters() if not n.endswith(".quantiles")]
    quantiles = [p for n, p in net.named_parameters() if n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)  # a short run: CompressAI's 1e-4 barely moves
    aux_optimizer = torch.optim.Adam(quantiles, lr=1e-3)
    net.train()
    batches = training_batches(128, 4, seed)
    for _ in range(steps):
        x = next(batches)
        out = net(x)
        pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
        bpp = sum(-torch.log2(v).sum() for v in out["likelihoods"].values()) / pixels
        loss = bpp + lmbda * 255**2 * torch.mean((out["x_hat"] - x) ** 2)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        aux_optimizer.zero_grad()
        net.aux_loss().backward()
        aux_optimizer.step()
    for _ in range(2000):  # the quantiles settle much later than the transforms
        aux_optimizer.zero_grad()
        net.aux_loss().backward()
        aux_optimizer.step()
    net.eval()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    a8 = torch.round(a.clamp(0, 1) * 255).double()
    b8 = torch.round(b.clamp(0, 1) * 255).double()
    return float(10 * torch.log10(255**2 / torch.mean((a8 - b8) ** 2)))


def with_threads(threads: int, function):
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return function()
    finally:
        torch.set_num_threads(saved)


def compare(arch: str, net, images: list[torch.Tensor], rounding: str) -> dict:
    from licodec import zoo
    from licodec.api import compress_tensor, decompress_tensor
    from licodec.interop.compressai import convert

    net.update(force=True)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)  # what a user's checkpoint file holds
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    imported = convert(arch, state, 0.013, rounding)
    codec = zoo.from_bytes(zoo.to_bytes(imported, {"benchmark": "compressai_import"}, half=False))
    theirs_bytes = ours_bytes = headers = 0
    psnr_theirs, psnr_ours, exact = [], [], True
    for x in images:
        with torch.no_grad():
            out = net.compress(x)
            theirs = net.decompress(out["strings"], out["shape"])["x_hat"]
        strings = sum(len(s[0]) for s in out["strings"])
        data = with_threads(1, lambda x=x: compress_tensor(x, 3, codec, 1))
        data2 = with_threads(2, lambda x=x: compress_tensor(x, 3, codec, 1))
        ours, header = with_threads(1, lambda data=data: decompress_tensor(data, weights=codec))
        ours2, _ = with_threads(2, lambda data=data: decompress_tensor(data, weights=codec))
        exact &= data == data2 and torch.equal(ours, ours2)
        theirs_bytes += strings
        ours_bytes += len(data)
        headers += len(data) - sum(header.section_lengths)
        psnr_theirs.append(psnr(x, theirs))
        psnr_ours.append(psnr(x, ours))
    pixels = sum(x.shape[-2] * x.shape[-1] for x in images)
    return {"bpp_theirs": 8 * theirs_bytes / pixels, "bpp_ours": 8 * ours_bytes / pixels,
            "size": ours_bytes / (theirs_bytes + headers) - 1,
            "psnr_theirs": float(np.mean(psnr_theirs)), "psnr_ours": float(np.mean(psnr_ours)),
            "max_psnr_gap": max(abs(a - b) for a, b in zip(psnr_theirs, psnr_ours)), "exact": exact}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps of the trained models (0: none)")
    parser.add_argument("--size", type=int, default=256, help="side of the Kodak crops")
    args = parser.parse_args()
    try:
        import compressai
        from compressai.models import (
            FactorizedPrior,
            JointAutoregressiveHierarchicalPriors,
            MeanScaleHyperprior,
            ScaleHyperprior,
        )
    except ImportError:
        print("compressai_import: needs CompressAI (run from an environment with compressai 1.2.8)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    images = crops(args.size)
    rows = []
    for arch, cls in (("bmshj2018-factorized", FactorizedPrior), ("bmshj2018-hyperprior", ScaleHyperprior),
                      ("mbt2018-mean", MeanScaleHyperprior), ("mbt2018", JointAutoregressiveHierarchicalPriors)):
        for kind, (N, M), steps in (("random", (128, 192), 0), ("trained", (64, 96), args.steps)):
            if kind == "trained" and not steps:
                continue
            torch.manual_seed(0)
            net = cls(N, M)
            start = time.perf_counter()
            if steps:
                train(net, steps, 0.013, 0)
            net.eval()
            for rounding in ("up", "nearest") if arch != "bmshj2018-factorized" else ("up",):
                result = compare(arch, net, images, rounding)
                label = f"{kind} {N}/{M}" + (f", {steps} steps" if steps else "")
                if arch != "bmshj2018-factorized":
                    label += f", scales {rounding}"
                rows.append((arch, label, result, time.perf_counter() - start))
    print(f"CompressAI {compressai.__version__}, torch {torch.__version__}, {platform.processor() or 'CPU'}; "
          f"{len(images)} Kodak crops of {args.size}x{args.size} ({', '.join(IMAGES)}), 1 thread")
    print("| CompressAI arch | model | CompressAI bpp | licodec bpp (real files) | size vs CompressAI + header | "
          "PSNR CompressAI | PSNR licodec | largest PSNR gap | bit-exact 1 vs 2 threads |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for arch, model, r, _ in rows:
        print(f"| {arch} | {model} | {r['bpp_theirs']:.4f} | {r['bpp_ours']:.4f} | {100 * r['size']:+.2f} % | "
              f"{r['psnr_theirs']:.3f} | {r['psnr_ours']:.3f} | {r['max_psnr_gap']:.3f} dB | "
              f"{'yes' if r['exact'] else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
