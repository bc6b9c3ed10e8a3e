"""Fetch, verify and extract registry datasets (Snakemake script and command line).

Under Snakemake (workflow/rules/download.smk) this runs rule ``download_file`` (one file into
``data/downloads/{raw}/{file}``) or rule ``extract_dataset`` (``data/raw/{raw}``).

Command line (from the repository root)::

    python scripts/download.py list
    python scripts/download.py info DATASET
    python scripts/download.py fetch DATASET [--mirror DIR_OR_URL]   # download + extract + verify
    python scripts/download.py verify DATASET                        # check data/raw/DATASET
    python scripts/download.py manifest DATASET [--write]            # (re)generate its manifest

Errors (unknown dataset, missing registry file, missing raw folder, failed download, bad
archive or manifest) print one line ``error: ...`` naming the value and exit with status 1.
``SEGBENCH_OFFLINE=1`` never uses the official URLs: it needs ``--mirror`` / ``SEGBENCH_MIRROR``.
"""

import argparse
import logging
import os
import sys
from pathlib import Path

from segbench.data.archive import ArchiveError
from segbench.data.extract import extract_dataset
from segbench.data.fetch import DownloadError, fetch_dataset_file
from segbench.data.manifest import ManifestError, compute_manifest, write_manifest
from segbench.data.recipes import RECIPES
from segbench.data.registry import (
    DEFAULT_REGISTRY,
    DatasetEntry,
    DatasetRegistry,
    RegistryError,
    default_manifest_path,
    load_registry,
)
from segbench.data.verify import verify_raw
from segbench.paths import DOWNLOAD_FILE, RAW_DIR
from segbench.smk import script_main

log = logging.getLogger("segbench.download")


def _settings(cfg: dict) -> dict:
    dl = cfg.get("download") or {}
    return {
        "registry": dl.get("registry", DEFAULT_REGISTRY),
        "mirror": dl.get("mirror") or os.environ.get("SEGBENCH_MIRROR") or None,
        "retries": int(dl.get("retries", 5)),
        "timeout": float(dl.get("timeout_s", 60)),
        "backoff": float(dl.get("backoff_s", 1.0)),
        "allow_unpinned": bool(dl.get("allow_unpinned", True)),
    }


def run_snakemake(smk) -> None:  # noqa: ANN001 (the Snakemake object)
    """Entry point under Snakemake's ``script:`` directive."""
    s = _settings(dict(smk.config))
    registry = load_registry(s["registry"], recipe_names=RECIPES.names())
    raw = smk.wildcards["raw"]
    entry = registry[raw]
    if smk.rule == "download_file":
        res = fetch_dataset_file(
            entry,
            smk.wildcards["file"],
            smk.output[0],
            mirror=s["mirror"],
            retries=s["retries"],
            timeout=s["timeout"],
            backoff=s["backoff"],
        )
        log.info("%s: %d bytes from %s, sha256 %s", res.path, res.size, res.url, res.sha256)
    elif smk.rule == "extract_dataset":
        downloads = {
            f.name: Path(DOWNLOAD_FILE.format(raw=entry.id, file=f.name)) for f in entry.files
        }
        report = extract_dataset(
            entry,
            downloads,
            smk.output[0],
            manifest=default_manifest_path(registry, entry.id),
            manifest_out=getattr(smk.log, "manifest", None),
            allow_unpinned=s["allow_unpinned"],
        )
        log.info("%s: %s", smk.output[0], report)
    else:
        raise ValueError(f"scripts/download.py does not handle rule {smk.rule!r}")


USER_ERRORS = (RegistryError, DownloadError, ManifestError, ArchiveError, FileExistsError)
"""Errors reported as one ``error: ...`` line (no traceback) on the command line."""


class CliError(RuntimeError):
    """A command-line mistake, reported as one line."""


def _require_raw(registry: DatasetRegistry, entry: DatasetEntry, raw_dir: Path, cmd: str) -> None:
    """Refuse ``verify`` / ``manifest`` when the raw folder is not there, saying how to get it."""
    if raw_dir.is_dir():
        return
    src = registry[entry.raw_id]
    via = f" (dataset {entry.id!r} uses the raw folder of {src.id!r})" if src.id != entry.id else ""
    instructions = " ".join(src.instructions.split())
    if src.access == "download":
        how = f"run `python scripts/download.py fetch {src.id}` first"
    elif src.files:
        how = (
            f"{src.id!r} is a manual download: {instructions} Then run "
            f"`python scripts/download.py fetch {src.id}` (it unpacks and verifies the files)"
        )
    else:
        how = f"{src.id!r} is a manual download: {instructions} Put its files in {raw_dir}/"
    raise CliError(f"{cmd} {entry.id}: raw folder {raw_dir} does not exist{via}; {how}.")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--registry", default=DEFAULT_REGISTRY, help="dataset registry YAML")
    p.add_argument("--mirror", default=os.environ.get("SEGBENCH_MIRROR"), help="folder or base URL")
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--timeout", type=float, default=60.0)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list datasets")
    for name in ("info", "fetch", "verify", "manifest"):
        sp = sub.add_parser(name)
        sp.add_argument("dataset")
        if name == "manifest":
            sp.add_argument(
                "--write", action="store_true", help="write config/manifests/<id>.sha256"
            )
    args = p.parse_args(argv)
    registry = load_registry(args.registry, recipe_names=RECIPES.names())
    if args.cmd == "list":
        for e in registry.values():
            recipe = e.recipe_name or "-"
            print(f"{e.id:22s} {e.access:8s} recipe={recipe:13s} {e.title}")
        return 0
    entry = registry[args.dataset]
    raw_dir = Path(RAW_DIR.format(raw=entry.raw_id))
    manifest = default_manifest_path(registry, entry.id)
    if args.cmd == "info":
        print(f"{entry.id}: {entry.title}\n  access: {entry.access}\n  licence: {entry.licence}")
        print(f"  citation: {entry.citation}\n  classes: {list(entry.classes)}")
        for f in entry.files:
            print(f"  file {f.name}: sha256={f.sha256 or '(none pinned)'} urls={list(f.urls)}")
        print(f"  manifest: {manifest} ({'pinned' if manifest.is_file() else 'not pinned yet'})")
        if entry.instructions:
            print(f"  instructions: {entry.instructions}")
        return 0
    if args.cmd == "fetch":
        src = registry[entry.raw_id]
        downloads = {}
        for f in src.files:
            dest = Path(DOWNLOAD_FILE.format(raw=src.id, file=f.name))
            fetch_dataset_file(
                src, f.name, dest, mirror=args.mirror, retries=args.retries, timeout=args.timeout
            )
            downloads[f.name] = dest
        if raw_dir.exists():
            print(f"{raw_dir} exists; verifying it instead of extracting again")
            print(verify_raw(src, raw_dir, manifest))
            return 0
        print(extract_dataset(src, downloads, raw_dir, manifest=manifest))
        return 0
    if args.cmd == "verify":
        _require_raw(registry, entry, raw_dir, "verify")
        print(verify_raw(entry, raw_dir, manifest, allow_unpinned=False))
        return 0
    if args.cmd == "manifest":
        _require_raw(registry, entry, raw_dir, "manifest")
        entries = compute_manifest(raw_dir)
        if args.write:
            write_manifest(manifest, entries)
            print(f"wrote {len(entries)} entries to {manifest}")
        else:
            sys.stdout.write("".join(f"{h}  {r}\n" for r, h in entries.items()))
        return 0
    return 2


if __name__ == "__main__":
    script_main(globals(), run_snakemake, main, (CliError, *USER_ERRORS))
