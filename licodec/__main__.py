"""`python -m licodec`: the same command as `licodec`."""

from licodec.cli import main

if __name__ == "__main__":
    main(prog_name="licodec")
