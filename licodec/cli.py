"""The `licodec` command: compress, decompress, info, zoo, taxonomy, train, export, demo.

Every failure the user can cause ends in one line, `licodec: <what went wrong>`, and exit status 1 (2 for a
malformed command line). Output files are written atomically and never replace an existing file without --force.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from licodec.errors import LicodecError, is_out_of_memory

DEFAULT_CODEC = "balle2018-hyperprior"
DEFAULT_QUALITY = 4
PRECISION_OPTION = click.option(
    "--precision", type=click.Choice(["fp32", "bf16", "auto"]), default="fp32", show_default=True,
    help="fp32: the reference pixels. bf16: transforms in bfloat16, faster only on CPUs with AMX or AVX512-BF16 "
         "(elsewhere emulated, 5-15x slower, with a warning); pixels differ slightly from fp32's, and files decode "
         "in either precision. auto: bf16 where the CPU runs it natively, else fp32.")
MAX_PIXELS_OPTION = click.option(
    "--max-pixels", type=click.IntRange(min=1), default=1 << 26, show_default=True,
    help="Refuse images (and files claiming images) of more pixels than this.")
JOBS_OPTION = click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
                           help="Tiles of a large image coded in parallel (each job holds one tile).")


def _fail(message: str, status: int = 1) -> None:
    click.echo(f"licodec: {message}", err=True)
    sys.exit(status)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the exit's flush of what could not be written raises nothing more."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


#: Flag spellings renamed to the one vocabulary (`--codec`, `-o/--output`, `-j/--jobs`), per subcommand: the old
#: spelling still works for one release, with a warning.
RENAMED_FLAGS = {
    "eval": {"--codecs": "--codec", "--out": "--output"},
    "train": {"--threads": "--jobs"},
}


def _rename_flags(command: str, args: list[str]) -> list[str]:
    renamed = RENAMED_FLAGS.get(command, {})
    result = []
    for position, arg in enumerate(args):
        if arg == "--":
            return result + args[position:]
        old, equals, value = arg.partition("=")
        if old in renamed:
            click.echo(f"licodec: warning: {old} is now {renamed[old]}; the old spelling goes in the next release",
                       err=True)
            arg = renamed[old] + equals + value
        result.append(arg)
    return result


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"licodec: warning: {message}", err=True)


class _Group(click.Group):
    """The one place that turns every failure a user can cause into one line and an exit status: library errors,
    the operating system's (unwritable outputs, full disks, closed pipes), out of memory, and click's usage errors
    (status 2)."""

    def main(self, *args, **kwargs):  # noqa: D102
        kwargs["standalone_mode"] = False
        try:
            status = super().main(*args, **kwargs)
        except click.UsageError as error:
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
            _fail(f"{' '.join(error.format_message().split()).rstrip('.')}{hint}", error.exit_code)
        except click.ClickException as error:
            _fail(error.format_message(), error.exit_code)
        except click.Abort:
            _fail("aborted")
        except EOFError:
            _fail("unexpected end of input")
        sys.exit(status if isinstance(status, int) else 0)

    def resolve_command(self, ctx: click.Context, args: list[str]):  # noqa: D102
        name, command, rest = super().resolve_command(ctx, args)
        return name, command, _rename_flags(name or "", rest)

    def invoke(self, ctx: click.Context):  # noqa: D102
        import warnings

        warnings.showwarning = _show_warning
        warnings.filterwarnings("once", module="licodec")  # one line per warning, not one per image
        try:
            return super().invoke(ctx)
        except LicodecError as error:
            _fail(str(error))
        except KeyboardInterrupt:
            click.echo("licodec: interrupted", err=True)
            sys.exit(130)
        except MemoryError:
            _fail("out of memory (the image is too large for this machine)")
        except BrokenPipeError:
            _silence_stdout()
            sys.exit(1)
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            _fail(f"{where}{error.strerror or error}")
        except RuntimeError as error:
            if not is_out_of_memory(error):
                raise
            _fail("out of memory (the image is too large for this machine)")


@click.group(cls=_Group)
@click.version_option(package_name="licodec")
def main() -> None:
    """Learned image codecs of the JPEG survey N83058, writing real .lic files."""


def _read_input(source: str) -> bytes:
    if source == "-":
        if sys.stdin is None:
            raise LicodecError("cannot read stdin: it is closed")
        return sys.stdin.buffer.read()
    path = Path(source)
    if not path.exists():
        raise LicodecError(f"{source}: no such file")
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise LicodecError(f"{source}: is a directory") from None
    except OSError as error:
        raise LicodecError(f"{source}: cannot read ({error.strerror})") from None


def _write_output(target: str, data: bytes, force: bool) -> None:
    from licodec.io import write_atomic

    if target == "-":
        if sys.stdout is None:
            raise LicodecError("cannot write to stdout: it is closed")
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as error:
            _silence_stdout()
            raise LicodecError(f"cannot write to stdout ({getattr(error, 'strerror', None) or error})") from None
    else:
        write_atomic(target, data, overwrite=force)


def _refuse_existing(output: str, force: bool) -> None:
    if output != "-" and Path(output).exists() and not force:
        raise LicodecError(f"{output}: exists (use --force to overwrite)")


def _compress_one(data: bytes, name: str, codec, quality: float, precision: str,
                  target: tuple[str, float] | None, preserve=None, max_pixels: int = 1 << 26,
                  reading: dict | None = None, tile: int | None = None,
                  jobs: int = 1, effort: int | None = None) -> tuple[bytes, int, int, str]:
    """The .lic bytes of one image, its size, and a note on the quality used. `reading`: strip, reduce_to_8_bit,
    first_frame (see `licodec.api.compress`); `tile`, `jobs`: see `licodec.tiling`; `effort`: overfitted codecs'."""
    from licodec.api import compress_tensor, compress_to_target
    from licodec.io import read_image_bytes_with_metadata

    reading = dict(reading or {})
    strip = reading.pop("strip", False)
    x, channels, metadata = read_image_bytes_with_metadata(data, name, **reading)
    metadata = None if strip else metadata
    if target is None:
        return (compress_tensor(x, channels, codec, quality, precision, preserve, max_pixels=max_pixels,
                                metadata=metadata, tile=tile, jobs=jobs, effort=effort), x.shape[-2], x.shape[-1], "")
    encoded, reached = compress_to_target(x, channels, codec, *target, precision, max_pixels=max_pixels,
                                          metadata=metadata, tile=tile, jobs=jobs, effort=effort)
    unit = "bpp" if target[0] == "bpp" else "dB"
    note = (f", quality {reached.quality:g} ({reached.value:.4g} {unit}; {reached.evaluations} "
            f"{'encodes' if target[0] == 'bpp' else 'encodes and decodes'} in {reached.seconds:.1f} s)")
    return encoded, x.shape[-2], x.shape[-1], note


def _target(quality: float | None, target_bpp: float | None, target_psnr: float | None) -> tuple[str, float] | None:
    given = [t for t in (("bpp", target_bpp), ("psnr", target_psnr)) if t[1] is not None]
    if len(given) > 1 or (given and quality is not None):
        raise LicodecError("give one of --quality, --target-bpp and --target-psnr")
    return given[0] if given else None


@main.command()
@click.argument("source")
@click.option("-o", "--output", help="Output file (a folder when SOURCE is a folder); - for stdout.")
@click.option("--codec", "codec_name", default=None,
              help=f"Codec name (see `licodec zoo`), weights file or weights hash.  [default: {DEFAULT_CODEC}]")
@click.option("--weights", default=None, help="A weights file (or a hash in `licodec weights list`) to code with.")
@click.option("--quality", "-q", default=None, type=float,
              help=f"Quality: a trained level, or a number between two.  [default: {DEFAULT_QUALITY}]")
@click.option("--target-bpp", type=float, default=None, help="Search the quality that reaches this bpp (at most).")
@click.option("--target-psnr", type=float, default=None, help="Search the lowest quality that reaches this PSNR.")
@click.option("--preserve", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Generative codecs: a mask image (white = preserve); the rest may be synthesized.")
@click.option("--effort", type=click.IntRange(1, 5), default=None,
              help="Overfitted codecs (ladune2023-coolchic): 1 fast .. 5 best encoding.  [default: 3]")
@PRECISION_OPTION
@MAX_PIXELS_OPTION
@click.option("--strip", is_flag=True, help="Do not keep the ICC profile, EXIF and XMP of the image.")
@click.option("--reduce-to-8-bit", is_flag=True, help="Accept a 16-bit image, coded at 8 bits per channel.")
@click.option("--first-frame", is_flag=True, help="Accept an animated image, coding its first frame only.")
@click.option("--force", "-f", is_flag=True, help="Overwrite existing output files.")
@JOBS_OPTION
@click.option("--tile", type=int, default=None, help="Tile side in pixels, a multiple of the codec's stride; "
              "larger images are coded in overlapping tiles.  [default: 1024]")
def compress(source: str, output: str | None, codec_name: str | None, weights: str | None, quality: float | None,
             target_bpp: float | None, target_psnr: float | None, preserve: str | None, effort: int | None,
             precision: str, max_pixels: int, strip: bool, reduce_to_8_bit: bool, first_frame: bool, force: bool,
             jobs: int, tile: int | None) -> None:
    """Compress SOURCE (an image, a folder of images, or - for stdin) to .lic."""
    from licodec.api import load

    target = _target(quality, target_bpp, target_psnr)
    reading = {"strip": strip, "reduce_to_8_bit": reduce_to_8_bit, "first_frame": first_frame}
    quality = DEFAULT_QUALITY if quality is None else quality
    codec = load(weights or codec_name or DEFAULT_CODEC)
    if weights and codec_name and codec_name != codec.name:
        raise LicodecError(f"--weights {weights} holds {codec.name} weights, not {codec_name}")
    if not target:
        codec.check_quality(quality)
    mask = None
    if preserve is not None:
        from licodec.io import read_image

        if target is not None or (source != "-" and Path(source).is_dir()):
            raise LicodecError("--preserve codes one image at a given quality")
        mask = read_image(preserve)[0][0].mean(0) > 0.5
    if source != "-" and Path(source).is_dir():
        out = Path(output) if output else Path(source)
        _compress_folder(Path(source), out, codec, quality, precision, force, target, max_pixels, reading, tile,
                         jobs, effort)
        return
    data = _read_input(source)
    if output is None:
        output = "-" if source == "-" else str(Path(source).with_suffix(".lic"))
    _refuse_existing(output, force)
    encoded, height, width, note = _compress_one(data, source, codec, quality, precision, target, mask, max_pixels,
                                                 reading, tile, jobs, effort)
    _write_output(output, encoded, force)
    bpp = 8 * len(encoded) / (height * width)
    click.echo(f"{source} -> {output}: {width}x{height}, {len(encoded)} bytes, {bpp:.4f} bpp{note}", err=True)


def _compress_folder(folder: Path, out_folder: Path, codec, quality: float, precision: str, force: bool,
                     target: tuple[str, float] | None, max_pixels: int = 1 << 26, reading: dict | None = None,
                     tile: int | None = None, jobs: int = 1, effort: int | None = None) -> None:
    from tqdm import tqdm

    from licodec.data.folder import list_images

    paths = list_images(folder)
    if not paths:
        raise LicodecError(f"{folder}: no images found")
    try:
        out_folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LicodecError(f"{out_folder}: cannot create the output folder ({error.strerror or error})") from None
    failures = 0
    total_bytes = total_pixels = 0
    for path in tqdm(paths, desc="compressing", unit="image"):
        target_path = out_folder / path.relative_to(folder).with_suffix(".lic")
        try:
            target_path.parent.mkdir(parents=True, exist_ok=True)
            _refuse_existing(str(target_path), force)
            encoded, height, width, note = _compress_one(path.read_bytes(), str(path), codec, quality, precision,
                                                         target, max_pixels=max_pixels, reading=reading, tile=tile,
                                                         jobs=jobs, effort=effort)
            _write_output(str(target_path), encoded, force)
            if note:
                tqdm.write(f"{path.name}: {8 * len(encoded) / (height * width):.4f} bpp{note}", file=sys.stderr)
            total_bytes += len(encoded)
            total_pixels += height * width
        except LicodecError as error:
            failures += 1
            tqdm.write(f"licodec: {error}", file=sys.stderr)
        except OSError as error:
            failures += 1
            tqdm.write(f"licodec: {error.filename or target_path}: {error.strerror or error}", file=sys.stderr)
    done = len(paths) - failures
    if total_pixels:
        click.echo(f"{done} images -> {out_folder}: {total_bytes} bytes, "
                   f"{8 * total_bytes / total_pixels:.4f} bpp", err=True)
    if failures:
        _fail(f"{failures} of {len(paths)} images failed")


@main.command()
@click.argument("source")
@click.option("-o", "--output", help="Output image, its format from its suffix (see `--format`); a folder when "
                                     "SOURCE is a folder; - for stdout.")
@click.option("--format", "suffix", default=None, metavar="SUFFIX",
              help="Format of stdout and of the images a folder decodes to: png (default), jxl, webp, tiff, jp2 "
                   "(lossless), jpg, avif, heic (quality 95, 4:4:4), bmp, ppm, tga, qoi.")
@PRECISION_OPTION
@MAX_PIXELS_OPTION
@click.option("--force", "-f", is_flag=True, help="Overwrite existing output files.")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Progressive codecs: decode only the first K iterations.")
@click.option("--weights", default=None, help="The weights file (or hash) that made SOURCE, when the store lacks it.")
@JOBS_OPTION
def decompress(source: str, output: str | None, suffix: str | None, precision: str, max_pixels: int,
               force: bool, iterations: int | None, weights: str | None, jobs: int) -> None:
    """Decompress a .lic file (a folder of them, or - for stdin) to an image."""
    from licodec.bitstream import unpack
    from licodec.formats import output_format

    suffix = "." + (suffix or "png").lower().lstrip(".")
    output_format(suffix)  # an unknown format is refused before anything is read
    if source != "-" and Path(source).is_dir():
        _decompress_folder(Path(source), Path(output) if output else Path(source), suffix, precision, force,
                           iterations, max_pixels, weights, jobs)
        return
    if output is None:
        output = "-" if source == "-" else str(Path(source).with_suffix(suffix))
    image_format = output_format(suffix if output == "-" else output)
    data = _read_input(source)
    unpack(data, prefix=True)  # a damaged or foreign file is reported before anything else
    _refuse_existing(output, force)
    header = _decompress_one(data, output, image_format, precision, force, iterations, max_pixels, weights, jobs)
    click.echo(f"{source} -> {output}: {header.width}x{header.height}", err=True)


def _decompress_one(data: bytes, output: str, image_format: str, precision: str, force: bool,
                    iterations: int | None, max_pixels: int = 1 << 26, weights: str | None = None,
                    jobs: int = 1):
    from licodec.api import decompress_tensor
    from licodec.formats import encode
    from licodec.io import Metadata, to_pil

    x_hat, header = decompress_tensor(data, precision, iterations, max_pixels, weights, jobs)
    metadata = Metadata.from_chunks(header.chunks)
    _write_output(output, encode(to_pil(x_hat, header.channels), image_format, metadata), force)
    return header


def _decompress_folder(folder: Path, out_folder: Path, suffix: str, precision: str, force: bool,
                       iterations: int | None, max_pixels: int = 1 << 26, weights: str | None = None,
                       jobs: int = 1) -> None:
    from tqdm import tqdm

    from licodec.formats import output_format

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".lic" and p.is_file())
    if not paths:
        raise LicodecError(f"{folder}: no .lic files found")
    image_format = output_format(suffix)
    failures = 0
    for path in tqdm(paths, desc="decompressing", unit="file"):
        target = out_folder / path.relative_to(folder).with_suffix(suffix)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _refuse_existing(str(target), force)
            _decompress_one(_read_input(str(path)), str(target), image_format, precision, force, iterations,
                            max_pixels, weights, jobs)
        except LicodecError as error:
            failures += 1
            tqdm.write(f"licodec: {path}: {error}", file=sys.stderr)
    click.echo(f"{len(paths) - failures} files -> {out_folder}", err=True)
    if failures:
        _fail(f"{failures} of {len(paths)} files failed")


@main.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print the header as JSON.")
def info(source: str, as_json: bool) -> None:
    """Print the header of a .lic file."""
    from dataclasses import asdict

    from licodec.bitstream import unpack

    data = _read_input(source)
    header, _ = unpack(data)
    fields = asdict(header)
    fields["section_lengths"] = list(header.section_lengths)
    fields["chunks"] = {tag: f"{len(value)} bytes" for tag, value in header.chunks.items()}
    if "TILE" in header.chunks:
        from licodec.tiling import describe

        fields["chunks"]["TILE"] = describe(header.chunks["TILE"])
    fields["bytes"] = len(data)
    fields["bpp"] = round(8 * len(data) / (header.height * header.width), 6)
    if as_json:
        click.echo(json.dumps(fields, indent=2))
        return
    for key, value in fields.items():
        click.echo(f"{key:>16}: {value}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the index as JSON.")
def zoo(as_json: bool) -> None:
    """List the codecs: paper, known implementations, shipped weights and how they were trained; then datasets."""
    from licodec import catalog, survey  # no torch: the source and the safetensors headers
    from licodec.train.hardware import describe

    entries = catalog.zoo_index()
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    for name in catalog.names():
        taxonomy = catalog.taxonomy(name)
        click.echo(f"{name}  {taxonomy.reference}")
        for ref in taxonomy.refs:
            for implementation in survey.IMPLEMENTATIONS.get(ref, []):
                click.echo(f"    elsewhere [{ref}]: {implementation}")
        entry = entries.get(name)
        if entry is None:
            click.echo("    weights: none shipped")
            continue
        click.echo(f"    weights: {entry['file']} ({entry['bytes'] / 1e6:.1f} MB, hash {entry['hash']}), "
                   f"qualities 1-{entry['qualities']}"
                   + (f", lambdas {entry['lmbdas']}" if entry["lmbdas"] else ""))
        record, label = entry["provenance"], "trained"
        while record:  # the last run first, then the runs of the weights it started from
            earlier = record.get("init_provenance")
            click.echo(f"    {label}: " + ", ".join(f"{k} {v}" for k, v in record.items()
                                                  if k not in ("init_provenance", "trained_on")))
            click.echo(f"      on: {describe(record)}")
            record, label = earlier, "before that"
    click.echo("\ndatasets of the field:")
    for row in survey.DATASETS:
        click.echo(f"    {row.name:24} {row.images:>26} images  {row.resolution:22} {row.use}  ({row.source})")


@main.command()
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
def taxonomy(markdown: bool) -> None:
    """Print the survey's taxonomy of the implemented codecs."""
    from licodec import catalog  # no torch: read from the codecs' source

    rows = [{"codec": name, **catalog.taxonomy(name).row()} for name in catalog.names()]
    columns = list(rows[0])
    if markdown:
        click.echo("| " + " | ".join(columns) + " |")
        click.echo("|" + "---|" * len(columns))
        for row in rows:
            click.echo("| " + " | ".join(row[c] for c in columns) + " |")
        return
    for row in rows:
        click.echo(row["codec"])
        for column in columns[1:]:
            click.echo(f"    {column:>20}: {row[column]}")


@main.command()
@click.option("--codec", "codec_name", required=True, help="Codec to train.")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of images.")
@click.option("--lmbda", default=None, help="Lambda, or comma-separated lambdas for a variable-rate model.")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="Checkpoint file.")
@click.option("--resume", is_flag=True, help="Continue from --checkpoint.")
@click.option("--steps", default=20000, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--crop", default=128, show_default=True)
@click.option("--lr", default=1e-4, show_default=True)
@click.option("--final-lr", default=1e-5, show_default=True)
@click.option("--clip", default=1.0, show_default=True, help="Gradient norm clip.")
@click.option("--metric", type=click.Choice(["mse", "ms-ssim"]), default="mse", show_default=True)
@click.option("--channels", default=None, help="N,M channel counts (e.g. 128,192 or 192,320).")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--jobs", "-j", "threads", default=0, help="torch threads (0: PyTorch's default).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16: transforms in bfloat16 autocast (about 3x faster on CPUs with AMX).")
@click.option("--init", "init_from", default="", help="Start from the weights of a checkpoint or weights file.")
@click.option("--checkpoint-every", default=500, show_default=True)
@click.option("--stop-at", default=None, type=int, help="End this run at that step (resume later with --resume).")
@click.option("--export", type=click.Path(dir_okay=False), help="Write fp16 weights with tables here at the end.")
@click.option("--codec-option", "codec_options", multiple=True,
              help="KEY=VALUE passed to the codec's constructor (VALUE as JSON, e.g. iterations=8 or "
                   "encoder_widths=[32,64,128,128]).")
@click.option("--quantizer", default=None, type=click.Choice(["uniform", "admm", "nonuniform", "vq"]),
              help="balle2017-factorized: the quantizer of the survey's [10]-[13] to train with (options through "
                   "--codec-option quantizer_options={...}).")
@click.option("--only", default="", help="Train only the parameters under these comma-separated prefixes "
                                         "(e.g. gain,densities to fine-tune per-rate parameters, as [3] does).")
@click.option("--qualities", default="", help="Sample only these comma-separated 1-based quality levels (e.g. a "
                                              "level added to a variable-rate model, with --only gain,...).")
def train(codec_name: str, data: str, lmbda: str | None, checkpoint: str, resume: bool, steps: int,
          batch_size: int, crop: int, lr: float, final_lr: float, clip: float, metric: str, channels: str | None,
          seed: int, device: str, threads: int, precision: str, init_from: str, checkpoint_every: int,
          stop_at: int | None, export: str | None, codec_options: tuple[str, ...], quantizer: str | None,
          only: str, qualities: str) -> None:
    """Train a codec (run it under `torchrun` for data-parallel training)."""
    import os

    import torch
    import torch.distributed as dist

    from licodec.train import TrainConfig, fit

    if threads:
        torch.set_num_threads(threads)
    kwargs: dict = {}
    try:
        if lmbda:
            kwargs["lmbdas"] = [float(v) for v in lmbda.split(",")]
        if channels:
            kwargs["N"], kwargs["M"] = (int(v) for v in channels.split(","))
    except ValueError:
        raise click.BadParameter("expects comma-separated numbers") from None
    if quantizer:
        kwargs["quantizer"] = quantizer
    for option in codec_options:
        key, _, value = option.partition("=")
        if not key or not value:
            raise click.BadParameter(f"{option!r}: expected KEY=VALUE", param_hint="--codec-option")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    if resume and not Path(checkpoint).exists():
        raise LicodecError(f"{checkpoint}: no checkpoint to resume from")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    config = TrainConfig(codec=codec_name, data=data, checkpoint=checkpoint, steps=steps, batch_size=batch_size,
                         crop=crop, lr=lr, final_lr=final_lr, clip=clip, metric=metric, seed=seed, device=device,
                         checkpoint_every=checkpoint_every, precision=precision, init=init_from, codec_kwargs=kwargs,
                         only=only, qualities=qualities)
    try:
        codec = fit(config, resume=resume, stop_at=stop_at)
    except ValueError as error:
        raise LicodecError(str(error)) from None
    if export and (not dist.is_initialized() or dist.get_rank() == 0):
        # On resume, the run's own settings (--init, --only, ...) are those its checkpoint was started with.
        _export(codec.cpu(), export, _provenance(codec.train_config, codec.train_timing))
    if dist.is_initialized():
        # Every rank past its last collective and rank 0's export before any tears the group down: a rank that
        # left early made the other abort at exit ("terminate called without an active exception"), under load.
        dist.barrier()
        dist.destroy_process_group()
        # A torchrun worker then leaves at once: the interpreter's own teardown of gloo's threads can still abort
        # one rank at exit ("terminate called without an active exception") after all its work is written.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _provenance(config, timing: list | None = None) -> dict:
    """What a trained file records of its run: the schedule, where it ran and how fast (`trained_on`: CPU model,
    threads, precision, measured steps per second; `licodec.train.hardware`), and the history of the weights it
    started from (a weights file's own provenance, so that fine-tuning a shipped model keeps the record of its
    earlier runs)."""
    from licodec.train.hardware import trained_on

    record = {"steps": config.steps, "device": config.device, "data": config.data, "batch_size": config.batch_size,
              "crop": config.crop, "lr": config.lr, "final_lr": config.final_lr, "precision": config.precision,
              "metric": config.metric}
    record.update({key: value for key, value in (("only", config.only), ("qualities", config.qualities)) if value})
    if timing:
        record["trained_on"] = trained_on(timing)
    if config.init:
        record["init"] = config.init
        if config.init.endswith(".safetensors"):
            from licodec import zoo as weights

            record["init_provenance"] = weights.from_bytes(Path(config.init).read_bytes()).provenance
    return record


def _export(codec, path: str, provenance: dict, base: str | None = None) -> None:
    from licodec import zoo as weights
    from licodec.train.loop import fit_quantiles

    aux = fit_quantiles(codec)
    click.echo(f"quantiles fitted (aux loss {aux:.2f})", err=True)
    digest = weights.save(codec, path, provenance, base)
    click.echo(f"wrote {path} (hash {digest})", err=True)


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Weights file to write.")
@click.option("--note", multiple=True, help="key=value provenance to record (hardware, time, ...).")
@click.option("--base", default=None, help="An installed codec whose weights file this one shares tensors with "
                                           "(only the differing tensors are written).")
def export(checkpoint: str, output: str, note: tuple[str, ...], base: str | None) -> None:
    """Export a training checkpoint as fp16 safetensors with integer tables (a zoo file)."""
    import torch

    from licodec.registry import codec_class
    from licodec.train.loop import TrainConfig

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    codec = codec_class(state["codec"])(**state["train_config"]["codec_kwargs"])
    codec.load_state_dict(state["model"])
    config = TrainConfig.saved(state["train_config"])
    provenance = _provenance(config, state.get("timing"))  # what `train --export` records, with the steps reached
    if state["step"] != config.steps:
        provenance.update(steps=state["step"], schedule_steps=config.steps)
    for item in note:
        key, _, value = item.partition("=")
        provenance[key] = value
    _export(codec, output, provenance, base)


@main.command(name="eval")
@click.option("--codec", "--codecs", "codec_list", multiple=True,
              default=["balle2018-hyperprior,balle2017-factorized,jpeg"], show_default=True,
              help="Codecs, comma-separated or repeated: learned names, weights files (FILE, or LABEL=FILE to name "
                   "the curve) and classical codecs (jpeg, jpeg444, jpeg2000, webp, avif, heif, jpegxl).")
@click.option("--dataset", required=True, help="A dataset name (see `licodec datasets list`) or a folder of images.")
@click.option("--root", default=None, type=click.Path(file_okay=False),
              help="Local copy of a named dataset  [default: where `licodec datasets download` puts it].")
@click.option("--anchor", default="jpeg", show_default=True, help="Codec the BD-rates are measured against.")
@click.option("-o", "--output", "out_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder for results.json, points.csv, report.md, report.html and the plots.")
@click.option("--published", default=None, type=click.Path(exists=True, file_okay=False),
              help="Folder of published results (CompressAI's and TF Compression's) to draw beside ours.")
@click.option("--published-curves", default=None,
              help="Which published curves to draw: comma-separated full names, or fragments that name one curve "
                   "each  [default: the published twins of the evaluated codecs, e.g. compressai/jpeg for jpeg].")
@click.option("--published-dataset", default="kodak", show_default=True,
              help="Which dataset's published results to use (kodak, tecnick, clic2020-professional, ...).")
@click.option("--crop-bpp", default=0.3, show_default=True,
              help="Side-by-side crops: each codec at its rate nearest this (all its settings searched).")
@click.option("--limit", default=0, type=click.IntRange(min=0), help="Use only the first N images (0: all).")
@click.option("--qualities", "quality_specs", multiple=True, metavar="[CODEC=]Q1,Q2,...",
              help="Evaluate only these settings: CODEC=... for one codec (e.g. jpeg=10,50,90), or a bare list for "
                   "every learned codec; repeatable  [default: every trained level, each classical codec's sweep].")
@click.option("--thumbnails", default=0, type=click.IntRange(min=0),
              help="Evaluate on SIZE x SIZE thumbnails of the images (centre square, Lanczos; written to OUTPUT/"
                   "thumbnails), as [1] does with 32 (0: the images as they are).")
@click.option("--jobs", "-j", default=2, show_default=True,
              help="Worker processes, each coding one image with one codec at a time.")
@click.option("--reuse", is_flag=True,
              help="Keep the points of OUTPUT/points.csv made by the same weights (or classical libraries) on the same "
                   "images at the same settings; code only the rest (their times stay those of that run). The "
                   "file grows as each codec finishes an image (an overfitted codec: each encode), so an interrupted "
                   "run continues with --reuse.")
@click.option("--effort", type=click.IntRange(1, 5), default=None,
              help="Encoding effort of overfitted codecs (ladune2023-coolchic), 1 fast .. 5 best.  [default: 3]")
def evaluate(codec_list: tuple[str, ...], dataset: str, root: str | None, anchor: str, out_dir: str,
             published: str | None, published_curves: str | None, published_dataset: str, crop_bpp: float,
             limit: int, quality_specs: tuple[str, ...], thumbnails: int, jobs: int, reuse: bool,
             effort: int | None) -> None:
    """Evaluate codecs on a dataset: RD points, BD-rates, plots and an HTML report, from real file sizes."""
    from licodec.eval.report import write_report
    from licodec.eval.run import evaluate as run_evaluation
    from licodec.eval.run import make_thumbnails, parse_qualities, read_points, split_label

    names = [n.strip() for value in codec_list for n in value.split(",") if n.strip()]
    if anchor not in names and anchor not in [split_label(n)[0] for n in names]:
        names.append(anchor)
    anchor = split_label(anchor)[0]
    settings = parse_qualities(quality_specs, names)
    curves_to_draw = None if published_curves is None else [c.strip() for c in published_curves.split(",")
                                                            if c.strip()]
    if published is not None:  # a published curve that is not there is refused before anything is coded
        from licodec.eval.anchors import load_published
        from licodec.eval.report import choose_published

        choose_published(load_published(Path(published), published_dataset), curves_to_draw, names)
    found = _dataset_images(dataset, root)
    images = found[: limit or None]
    click.echo(f"evaluating {len(names)} codecs on {len(images)} images"
               + (f" (the first {len(images)} of {len(found)})" if len(images) < len(found) else ""), err=True)
    if thumbnails:
        images = make_thumbnails(images, thumbnails, Path(out_dir) / "thumbnails")
    points = run_evaluation(names, images, jobs=jobs, reuse=read_points(Path(out_dir) / "points.csv") if reuse else [],
                            settings=settings, effort=effort, save=Path(out_dir) / "points.csv")
    title = Path(dataset).name + (f" ({thumbnails}x{thumbnails} thumbnails)" if thumbnails else "")
    click.echo(f"writing the report to {out_dir}", err=True)
    report = write_report(Path(out_dir), points, images, anchor, published=Path(published) if published else None,
                          published_names=curves_to_draw, crop_bpp=crop_bpp, dataset=title,
                          published_dataset=published_dataset, available=len(found), thumbnails=thumbnails,
                          progress=True)
    click.echo(report)


def _dataset_images(dataset: str, root: str | None) -> list[Path]:
    from licodec.data import datasets
    from licodec.data.folder import list_images

    if root is None and Path(dataset).is_dir():
        found = list_images(dataset)
        if not found:
            raise LicodecError(f"{dataset}: no images found")
        return found
    if dataset not in datasets.dataset_names():
        raise LicodecError(f"unknown dataset {dataset!r} (and no such folder); known: "
                           f"{', '.join(datasets.dataset_names())}")
    if root is None:
        root = str(_data_root(dataset))
        if not Path(root).is_dir():
            raise LicodecError(f"{dataset}: not in {root} (get it with `licodec datasets download {dataset}`, or "
                               "give its folder with --root)")
    return datasets.images(dataset, root)


def _data_root(dataset: str) -> Path:
    """Where `datasets download` puts a dataset and `eval --dataset NAME` looks for it without --root:
    $LICODEC_DATA/NAME, else the user data folder ($XDG_DATA_HOME or ~/.local/share)/licodec/datasets/NAME."""
    import os

    base = os.environ.get("LICODEC_DATA") or Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share",
                                                  "licodec", "datasets")
    return Path(base) / dataset


@main.group()
def datasets() -> None:
    """The datasets of the field: list them, download them."""


@datasets.command(name="list")
def datasets_list() -> None:
    """Name, image count and source of every dataset licodec can find or download."""
    from licodec.data import datasets as table

    for name in table.dataset_names():
        entry = table.describe(name)
        click.echo(f"{name:30} {entry.count:>5} images  {entry.homepage}")
        click.echo(f"{'':30} {entry.description}")


@datasets.command(name="download")
@click.argument("name")
@click.option("--root", default=None, type=click.Path(file_okay=False),
              help="Where to put the images  [default: $LICODEC_DATA/NAME or ~/.local/share/licodec/datasets/NAME, "
                   "where `eval --dataset NAME` finds them].")
def datasets_download(name: str, root: str | None) -> None:
    """Download a dataset from its official source (needs internet)."""
    from licodec.data import datasets as table

    root = root or str(_data_root(name))
    found = table.download(name, root)
    click.echo(f"{name}: {len(found)} images in {root}", err=True)


@main.command()
@click.option("--codec", "codec_name", default=DEFAULT_CODEC, show_default=True)
@click.option("--quality", "-q", default=DEFAULT_QUALITY, show_default=True, type=float)
@click.option("--image", default=None, help="Image to use instead of the bundled sample.")
@PRECISION_OPTION
def demo(codec_name: str, quality: float, image: str | None, precision: str) -> None:
    """Compress and decompress the bundled sample image; print size, bpp and PSNR."""
    import time

    from licodec.api import compress_tensor, decompress_tensor, load
    from licodec.eval.metrics import psnr
    from licodec.io import read_image

    source = image or str(Path(__file__).parent / "samples" / "kodim23-crop.png")
    codec = load(codec_name, quality)
    x, channels = read_image(source)
    start = time.perf_counter()
    data = compress_tensor(x, channels, codec, quality, precision)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    x_hat, _ = decompress_tensor(data, precision, weights=codec)
    decode_s = time.perf_counter() - start
    height, width = x.shape[-2:]
    click.echo(f"image   {source} ({width}x{height})")
    click.echo(f"codec   {codec_name}, quality {quality:g}")
    click.echo(f"bytes   {len(data)}")
    click.echo(f"bpp     {8 * len(data) / (height * width):.4f}")
    click.echo(f"PSNR    {psnr(x, x_hat):.2f} dB")
    click.echo(f"time    encode {encode_s:.2f} s, decode {decode_s:.2f} s")


@main.group(name="weights")
def weights_group() -> None:
    """The weights store: the zoo, your data folder, LICODEC_WEIGHTS_PATH and the archive (docs/weights.md)."""


@weights_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def weights_list(as_json: bool) -> None:
    """Every weights file the store finds (hash, codec, folder, path), then the folders searched."""
    from licodec import store

    found = store.entries()
    if as_json:
        click.echo(json.dumps([{"hash": e.hash, "codec": e.codec, "where": e.where, "path": str(e.path),
                                "current": e.current} for e in found], indent=2))
        return
    for entry in found:
        note = "" if entry.current else "  (retired)"
        click.echo(f"{entry.hash}  {entry.codec:26} {entry.where:8} {entry.path}{note}")
    click.echo("searched: " + ", ".join(f"{kind} {folder}" for kind, folder in store.folders()), err=True)


@weights_group.command(name="add")
@click.argument("files", nargs=-1, required=True)
def weights_add(files: tuple[str, ...]) -> None:
    """Copy weights FILES into your data folder, where decoding finds them by hash."""
    from licodec import store

    for file in files:
        entry, new = store.add(file)
        state = f"added as {entry.path}" if new else f"already in the store ({entry.where}: {entry.path})"
        click.echo(f"{file}: {entry.codec} weights {entry.hash}, {state}", err=True)


@weights_group.command(name="remove")
@click.argument("weights_hash")
def weights_remove(weights_hash: str) -> None:
    """Delete the weights WEIGHTS_HASH (or a prefix of 6+ characters) that `add` put in your data folder."""
    from licodec import store

    entry = store.remove(weights_hash)
    click.echo(f"removed {entry.codec} weights {entry.hash} ({entry.path})", err=True)


@weights_group.command(name="verify")
def weights_verify() -> None:
    """Load every file of the store and check its hash against its name or manifest."""
    from licodec import store

    problems = store.verify(progress=True)
    for kind, path, problem in problems:
        click.echo(f"licodec: {kind} {path}: {problem}", err=True)
    if problems:
        _fail(f"{len(problems)} weights file{'s' if len(problems) > 1 else ''} failed")
    click.echo(f"{len(store.entries())} weights files load and match their hashes", err=True)


@main.group(name="import")
def import_group() -> None:
    """Bring weights of other toolkits into licodec's form (docs/weights.md)."""


@import_group.command(name="compressai")
@click.option("--arch", required=True, help="CompressAI architecture: bmshj2018-factorized or bmshj2018-hyperprior.")
@click.argument("checkpoints", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="Weights file to write (several checkpoints: one `stacked` file, "
                                                  "a level per checkpoint).")
@click.option("--lmbda", default=None, help="Comma-separated lambdas, one per checkpoint (default: from CompressAI "
                                           "zoo file names, <arch>-<quality>-<hash>.pth.tar).")
@click.option("--fp16", is_flag=True, help="Round the weights to fp16 as licodec's zoo does (half the size).")
@click.option("--scale-rounding", type=click.Choice(["up", "nearest"]), default="up", show_default=True,
              help="Hyperprior: code with the first table scale at or above the predicted one (CompressAI's rule) "
                   "or the nearest (licodec's; smaller files).")
@click.option("--force", "-f", is_flag=True, help="Overwrite existing output files.")
def import_compressai(arch: str, checkpoints: tuple[str, ...], output: str, lmbda: str | None, fp16: bool,
                      scale_rounding: str, force: bool) -> None:
    """Import CompressAI CHECKPOINTS (state dicts, one per quality) as licodec weights files."""
    from licodec import zoo
    from licodec.interop.compressai import import_checkpoints
    from licodec.io import write_atomic

    try:
        lmbdas = [float(v) for v in lmbda.split(",")] if lmbda else None
    except ValueError:
        raise click.BadParameter("expects comma-separated numbers", param_hint="--lmbda") from None
    if lmbdas is not None and len(lmbdas) != len(checkpoints):
        raise LicodecError(f"--lmbda gives {len(lmbdas)} lambdas for {len(checkpoints)} checkpoints")
    _refuse_existing(output, force)
    codecs = import_checkpoints(arch, list(checkpoints), lmbdas, scale_rounding)
    if len(codecs) == 1:
        codec = codecs[0]
    else:  # CompressAI's qualities are separate models; licodec's own levels share one model's transforms
        from licodec.codecs.stacked import Stacked

        codec = Stacked.of(codecs)
    provenance = {"imported_from": "compressai", "arch": arch, "checkpoints": [Path(c).name for c in checkpoints],
                  "lmbdas": list(codec.lmbdas)}
    data = zoo.to_bytes(codec, provenance, half=fp16)
    write_atomic(output, data, overwrite=force)
    shape = ", ".join(f"N={c.config['N']} M={c.config['M']}" for c in codecs)
    click.echo(f"{output}: {codec.name} weights {zoo.digest(data)}, {codec.qualities} level"
               f"{'s' if codec.qualities > 1 else ''} ({shape}; lambdas {', '.join(f'{v:g}' for v in codec.lmbdas)})",
               err=True)


if __name__ == "__main__":
    main()
