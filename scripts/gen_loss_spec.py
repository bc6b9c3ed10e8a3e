"""Regenerate the loss table of docs/losses.md from the registry (``segbench.losses.spec``).

Usage: ``python scripts/gen_loss_spec.py [--check] [--path docs/losses.md]``. ``--check`` exits
with status 1 (and writes nothing) when the file is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segbench.io_utils import atomic_write_text
from segbench.losses.spec import replace_block

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", type=Path, default=ROOT / "docs" / "losses.md")
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    args = parser.parse_args(argv)
    old = args.path.read_text(encoding="utf-8")
    new = replace_block(old)
    if args.check:
        if new != old:
            print(
                f"{args.path} is out of date; run python scripts/gen_loss_spec.py", file=sys.stderr
            )
            return 1
        return 0
    if new != old:
        atomic_write_text(args.path, new)
        print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
