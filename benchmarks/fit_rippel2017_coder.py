"""Fit rippel2017's bitplane coder (`licodec.entropy.bitplane`) to a trained model's bitplanes, and write weights
that use it:

    python benchmarks/fit_rippel2017_coder.py [--weights FILE] [--images 12] [--steps 200] [--out FILE]

The transforms are the given weights' (default: the zoo's rippel2017), unchanged. The coder's integer tables are
fitted by logistic regression, per plane (Adam on the mean bits per bit, full batch, cosine learning rate), on the
bits of all the planes of training images (`--data`, default ../shared/data/train; Kodak refused), with exactly the
coder's features and batch order, then rounded to 1/32 nat. The output is a weights file with `coder="bitplane"`
and without the 3D context network (its bytes make the coder's room in the zoo). One thread; about 10 minutes for
12 images on a busy core.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from licodec import zoo  # noqa: E402
from licodec.codecs.base import Codec  # noqa: E402
from licodec.entropy.bitplane import BitplaneContext, table_shapes  # noqa: E402
from licodec.io import read_image  # noqa: E402
from licodec.train.hardware import machine  # noqa: E402

EXTENSIONS = {".png", ".jpg", ".jpeg"}


def training_images(folder: Path, count: int, seed: int) -> list[Path]:
    """`count` images of `folder` (recursively, sorted, then a seeded sample); refuses Kodak."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS)
    if any("kodak" in str(p).lower() for p in paths):
        raise SystemExit(f"{folder}: holds Kodak images; the coder is fitted on training images only")
    return sorted(random.Random(seed).sample(paths, min(count, len(paths))))


@torch.no_grad()
def codes_of(codec: Codec, path: Path) -> np.ndarray:
    """The (C, H, W) codes of all the codec's bitplanes for one image, as `compress` computes them."""
    x, _ = read_image(path)
    y = codec.transform(codec.analysis, codec.layout(codec.pad(x)))
    _, codes = codec.quantize(y, torch.tensor([codec.config["bitplanes"]]))
    return codes[0].numpy().astype(np.int64)


def fit_plane(context: BitplaneContext, codes: list[np.ndarray], plane: int, steps: int, lr: float) -> dict:
    """Fit plane `plane`'s tables; returns its bits per bit before (all tables 0: 1 bit) and after rounding."""
    parts = [context.samples(c, plane) for c in codes]
    features = {k: torch.from_numpy(np.concatenate([f[k] for f, _ in parts])) for k in parts[0][0]}
    for k in ("sig_in", "bit_in"):
        features[k] = features[k].float()
    bits = torch.from_numpy(np.concatenate([b for _, b in parts])).float()
    tables = {name: torch.zeros(shape, requires_grad=True) for name, shape in table_shapes(context.channels).items()}
    optimizer = torch.optim.Adam(tables.values(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 100)
    for _ in range(steps):
        optimizer.zero_grad()
        logits = BitplaneContext.float_logits(tables, features)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, bits)
        loss.backward()
        optimizer.step()
        schedule.step()
    context.set_tables(plane, {k: v.detach() for k, v in tables.items()})
    ones = float(bits.mean())
    return {"plane": plane, "bits": len(bits), "ones": round(ones, 4),
            "fitted_bits_per_bit": round(float(loss.detach()) / np.log(2), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(zoo.weights_path("rippel2017")))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "train"))
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="rippel2017-bitplane.safetensors")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    source_bytes = Path(args.weights).read_bytes()
    source = zoo.from_bytes(source_bytes)
    config = {k: v for k, v in source.config.items() if k != "coder"}
    codec = zoo.build(type(source), {**config, "coder": "bitplane"})
    state = {k: v for k, v in source.state_dict().items() if not k.startswith(("context.", "bitplane_context."))}
    missing, unexpected = codec.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("bitplane_context.") for k in missing), (missing, unexpected)
    codec.eval()
    paths = training_images(Path(args.data), args.images, args.seed)
    codes = [codes_of(codec, p) for p in paths]
    print(f"{len(paths)} images, {sum(c.size for c in codes)} coefficients ({time.time() - start:.0f} s)")
    report = []
    for plane in range(codec.config["bitplanes"]):
        report.append(fit_plane(codec.bitplane_context, codes, plane, args.steps, args.lr))
        print(json.dumps(report[-1]), f"({time.time() - start:.0f} s)", flush=True)
    provenance = {**source.provenance,
                  "bitplane_coder": {"fitted_by": "benchmarks/fit_rippel2017_coder.py",
                                     "from": zoo.digest(source_bytes), "data": args.data,
                                     "images": [str(p.relative_to(args.data)) for p in paths],
                                     "steps": args.steps, "lr": args.lr, "planes": report,
                                     "seconds": round(time.time() - start),
                                     "on": machine(threads=1, device="cpu", precision="fp32")}}
    digest = zoo.save(codec, args.out, provenance)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes, weights {digest}) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
