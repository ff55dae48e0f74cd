#!/usr/bin/python3
"""Dump what mock itself computes for every config of a config dir.

Usage: mock_reference.py MOCK_PY_DIR CONFIG_DIR > reference.json

MOCK_PY_DIR is mock's "mock/py" source directory; the templated_dictionary
module (python3-templated-dictionary) and jinja2 must be importable. The
output maps each config name (NAME or eol/NAME) to {"keys": {...}} with
every top-level key as mock renders it, or to {"error": "..."}.
acceptance_test.go compares it with this package (THINROOT_MOCK_REFERENCE).
"""
import glob
import json
import logging
import os
import sys
import types

sys.path.insert(0, sys.argv[1])
# Modules mock's util imports but config loading never uses.
for name, attrs in (("distro", {}), ("pyroute2", {"IPRoute": None})):
    try:
        __import__(name)
    except ImportError:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
logging.disable(logging.CRITICAL)
import mockbuild.config as mockconfig  # noqa: E402


def plain(value):
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def main():
    cfgdir = sys.argv[2]
    names = []
    for pattern in ("*.cfg", "eol/*.cfg"):
        for path in sorted(glob.glob(os.path.join(cfgdir, pattern))):
            name = os.path.relpath(path, cfgdir)[:-4]
            if name not in ("site-defaults", "chroot-aliases"):
                names.append(name)
    out = {}
    for name in names:
        try:
            opts = mockconfig.load_config(cfgdir, name)
            # What set_config_opts_per_cmdline derives without options.
            if opts["rpmbuild_arch"] is None:
                opts["rpmbuild_arch"] = opts["target_arch"]
            if not opts["repo_arch"]:
                arch = opts["target_arch"]
                opts["repo_arch"] = opts["repo_arch_map"].get(arch, arch)
            keys = {}
            for key in list(opts.keys()):
                if key in ("_aliases", "__jinja_expand"):
                    continue
                try:
                    keys[key] = plain(opts[key])
                except Exception as exc:  # pylint: disable=broad-except
                    keys[key] = "<error %s>" % exc
            out[name] = {"keys": keys}
        except Exception as exc:  # pylint: disable=broad-except
            out[name] = {"error": "%s: %s" % (type(exc).__name__, exc)}
    json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)


main()
