#!/usr/bin/env python3
"""Writes a FROM-scratch OCI image archive (an OCI image layout in a tar) from local files, for
`ctr images import`: the test node's pause image and the node tests' images. No registry, no
daemon, nothing pulled. One uncompressed layer; every timestamp 0, so the same inputs give the
same digests.

  scripts/oci-image.py --name registry.k8s.io/pause:3.10 --out pause.tar \\
      --entrypoint /pause --user 65535:65535 /path/to/pause:/pause
  scripts/oci-image.py --name localhost/sp-node-test:1 --out t.tar \\
      /usr/bin/busybox:/bin/busybox --link /bin/sh=busybox

A file argument is SOURCE:DEST (DEST absolute; the mode is the source's)."""
import argparse
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def tar_info(name, **fields):
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def layer_tar(files, links):
    """The layer: the parent folders of every entry, then files and links, sorted by path."""
    entries = {}
    for src, dest in files:
        entries[dest.lstrip("/")] = ("file", src)
    for dest, target in links:
        entries[dest.lstrip("/")] = ("link", target)
    folders = set()
    for path in entries:
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[:i + 1]) for i in range(len(parts)))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in sorted(folders - set(entries)):
            tar.addfile(tar_info(folder, type=tarfile.DIRTYPE, mode=0o755))
        for path in sorted(entries):
            kind, what = entries[path]
            if kind == "link":
                tar.addfile(tar_info(path, type=tarfile.SYMTYPE, linkname=what, mode=0o777))
                continue
            st = os.stat(what)
            with open(what, "rb") as f:
                tar.addfile(tar_info(path, size=st.st_size, mode=st.st_mode & 0o7777), f)
    return buf.getvalue()


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def image_archive(args, layer):
    layer_digest, _ = blob(layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {k: v for k, v in {
            "Entrypoint": args.entrypoint and [args.entrypoint],
            "Cmd": args.cmd or None,
            "User": args.user,
            "Env": args.env or ["PATH=/bin"],
            "WorkingDir": args.workdir,
        }.items() if v},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "scripts/oci-image.py"}],
    }
    config_digest, config_bytes = blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
    }
    manifest_digest, manifest_bytes = blob(json.dumps(manifest, sort_keys=True).encode())
    tag = args.name.rsplit(":", 1)[1] if ":" in args.name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            # containerd takes the full name from the first, other tools the tag from the second.
            "annotations": {"io.containerd.image.name": args.name,
                            "org.opencontainers.image.ref.name": tag},
        }],
    }
    out = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
    }
    for digest, data in ((layer_digest, layer), (config_digest, config_bytes),
                         (manifest_digest, manifest_bytes)):
        out["blobs/sha256/" + digest.split(":", 1)[1]] = data
    return out


def write_archive(path, members):
    tmp = path + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in ("blobs", "blobs/sha256"):
            tar.addfile(tar_info(folder, type=tarfile.DIRTYPE, mode=0o755))
        for name in sorted(members):
            data = members[name]
            tar.addfile(tar_info(name, size=len(data), mode=0o644), io.BytesIO(data))
    os.replace(tmp, path)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="the image reference, e.g. localhost/x:1")
    p.add_argument("--out", required=True, help="the archive to write")
    p.add_argument("--entrypoint", help="absolute path of the program to run")
    p.add_argument("--cmd", action="append", default=[], help="one argument of Cmd (repeatable)")
    p.add_argument("--user", help="uid[:gid] the image runs as")
    p.add_argument("--env", action="append", default=[], help="K=V (repeatable; default PATH=/bin)")
    p.add_argument("--workdir", help="working directory")
    p.add_argument("--link", action="append", default=[], metavar="DEST=TARGET",
                   help="a symbolic link in the image (repeatable)")
    p.add_argument("files", nargs="*", metavar="SOURCE:DEST", help="a file to copy into the image")
    args = p.parse_args(argv)
    args.file_pairs, args.link_pairs = [], []
    for spec in args.files:
        src, sep, dest = spec.rpartition(":")
        if not sep or not dest.startswith("/") or not os.path.isfile(src):
            p.error(f"{spec!r}: want SOURCE:DEST with an existing SOURCE file and an absolute DEST")
        args.file_pairs.append((src, dest))
    for spec in args.link:
        dest, sep, target = spec.partition("=")
        if not sep or not dest.startswith("/") or not target:
            p.error(f"--link {spec!r}: want /DEST=TARGET")
        args.link_pairs.append((dest, target))
    if not args.file_pairs:
        p.error("no files: an image needs at least one")
    return args


def main(argv):
    args = parse_args(argv)
    write_archive(args.out, image_archive(args, layer_tar(args.file_pairs, args.link_pairs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
