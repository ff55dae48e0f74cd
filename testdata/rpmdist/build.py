#!/usr/bin/python3
"""Builds thinroot's test RPM distribution ("testdist") from the Debian
packages installed on this host. See README.md beside this file.

    build.py closure          the Debian packages it would use: "NAME VERSION" lines
    build.py build OUT        builds OUT/repo, OUT/repo-v2 and OUT/srpms (OUT must not exist)
    build.py populate MANIFEST BUILDROOT
                              (internal: the %install of debian.spec)

Every Debian package in the Depends/Pre-Depends closure of `seeds` becomes
one RPM whose payload is that package's files as installed on this host,
moved under /usr (the distribution is usrmerged the Fedora way), with
Requires mirroring the Debian dependencies and no scriptlets. The
distribution's own packages (filesystem, testdist-release,
testdist-rpm-config, thinroot-test-dep) come from the specs here, and the
test source packages from srpms/*.spec.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RELEASEVER = "1"

# Paths moved under /usr, as Fedora's filesystem package lays them out.
USRMERGE = ("/bin/", "/sbin/", "/lib/", "/lib64/", "/lib32/", "/libx32/")

T0 = time.monotonic()


def log(*args):
    print("[%6.1fs]" % (time.monotonic() - T0), *args, flush=True)


# ---------------------------------------------------------------------------
# The recipe's configuration


class Conf:
    def __init__(self):
        self.seeds = []
        self.provides = {}  # pkg -> [name]
        self.requires = {}  # pkg -> [name]
        self.links = {}  # pkg -> [(path, target)]
        self.drops = set()  # (pkg, dep)
        self.skips = []
        for line in read_lines("seeds"):
            self.seeds.append(line)
        for line in read_lines("packages.conf"):
            f = line.split()
            kind, pkg = f[0], f[1] if len(f) > 1 else ""
            if kind == "provides" and len(f) >= 3:
                self.provides.setdefault(pkg, []).extend(f[2:])
            elif kind == "requires" and len(f) >= 3:
                self.requires.setdefault(pkg, []).extend(f[2:])
            elif kind == "link" and len(f) == 4:
                self.links.setdefault(pkg, []).append((f[2], f[3]))
            elif kind == "drop" and len(f) == 3:
                self.drops.add((pkg, f[2]))
            elif kind == "skip" and len(f) == 2:
                self.skips.append(f[1])
            else:
                sys.exit("packages.conf: bad line: %s" % line)


def read_lines(name):
    with open(os.path.join(HERE, name)) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                yield line


# ---------------------------------------------------------------------------
# The host's dpkg database


class DebPkg:
    def __init__(self, name, version, summary, provides, depends):
        self.name = name
        self.version = version
        self.summary = summary
        self.provides = provides
        self.depends = depends  # [[alternative names]]
        self.requires = []  # resolved names inside the closure


def parse_rel(s):
    """Parses a Depends-style field into [[name]] groups, dropping versions,
    architecture qualifiers and build profiles."""
    groups = []
    for group in s.split(","):
        alts = []
        for alt in group.split("|"):
            alt = re.sub(r"\(.*?\)|\[.*?\]|<.*?>", "", alt).strip()
            if alt:
                alts.append(alt.split(":", 1)[0])
        if alts:
            groups.append(alts)
    return groups


def dpkg_db():
    fmt = "${db:Status-Abbrev}\t${Package}\t${Architecture}\t${Version}\t${Provides}\t${Pre-Depends}\t${Depends}\t${binary:Summary}\n"
    out = subprocess.run(["dpkg-query", "-W", "-f=" + fmt], check=True, capture_output=True, text=True).stdout
    native = subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True).stdout.strip()
    db = {}
    for line in out.splitlines():
        f = line.split("\t")
        # Installed: wanted installed (or held) and unpacked and
        # configured, triggers pending or not (apt running elsewhere on
        # the host leaves libc-bin's ldconfig trigger pending for a while).
        if len(f) != 8 or len(f[0]) < 2 or f[0][0] not in "ih" or f[0][1] not in "itW":
            continue
        _, name, arch, version, provides, predeps, deps, summary = f
        if arch not in (native, "all"):
            continue
        db[name] = DebPkg(name, version, summary, [g[0] for g in parse_rel(provides)],
                          parse_rel(predeps) + parse_rel(deps))
    return db


def closure(conf):
    """The seeds and everything they depend on, as {name: DebPkg}."""
    db = dpkg_db()
    missing = [s for s in conf.seeds if s not in db]
    if missing:
        sys.exit("not installed on this host: %s (scripts/deps.sh installs them)" % " ".join(missing))
    virtual = {}
    for p in sorted(db):
        for v in db[p].provides:
            virtual.setdefault(v, []).append(p)

    def resolve(alts):
        for a in alts:
            if a in db:
                return a
        for a in alts:
            if a in virtual:
                return virtual[a][0]
        return None

    out = {}
    todo = list(conf.seeds)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        p = db[name]
        out[name] = p
        reqs = set()
        for alts in p.depends:
            if any((name, a) in conf.drops for a in alts):
                continue
            r = resolve(alts)
            if r is None:
                sys.exit("%s: no installed package satisfies %s" % (name, " | ".join(alts)))
            if r != name:
                reqs.add(r)
        p.requires = sorted(reqs)
        todo.extend(p.requires)
    return out


# ---------------------------------------------------------------------------
# Payloads


def canonical(path):
    """Where path lives in the usrmerged distribution: its parent resolved
    through the host's symlinks, then /bin, /lib, ... moved under /usr."""
    d = os.path.realpath(os.path.dirname(path))
    p = os.path.join(d, os.path.basename(path))
    for pre in USRMERGE:
        if p.startswith(pre):
            return "/usr" + p
    return p


def payload(name, conf):
    """{path in the RPM: (kind, source path or symlink target)}"""
    out = subprocess.run(["dpkg-query", "-L", name], check=True, capture_output=True, text=True).stdout
    files = {}
    for path in out.splitlines():
        if not path.startswith("/") or path == "/.":
            continue
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # a conffile the admin removed, a diverted path
        canon = canonical(path)
        if any(canon.startswith(s) for s in conf.skips):
            continue
        if stat.S_ISREG(st.st_mode):
            files[canon] = ("file", path)
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            if target.startswith("/etc/alternatives/"):
                target = os.path.realpath(path)
            files[canon] = ("link", target)
    for path, target in conf.links.get(name, []):
        files[path] = ("link", target)
    return files


def populate(manifest, buildroot):
    """Copies the payloads into the build root (the %install of debian.spec)."""
    with open(manifest) as f:
        entries = json.load(f)
    made = set()
    for path, (kind, src) in sorted(entries.items()):
        dst = buildroot + path
        d = os.path.dirname(dst)
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        if kind == "file":
            shutil.copy2(src, dst, follow_symlinks=False)
        else:
            os.symlink(src, dst)


def rpm_escape(path):
    """A path as a %files line. rpm takes a path it sees as a glob (rpmIsGlob:
    a * or ?, a [...] or {...}) as a pattern, in which a backslash escapes,
    and any other path literally; % is a macro either way."""
    p = path
    if re.search(r"[*?]|\[.*\]|\{.*\}", p):
        p = re.sub(r"([\\?*\[\]{}])", r"\\\1", p)
    p = p.replace("%", "%%")
    return '"%s"' % p if re.search(r"\s", p) else p


def evr(version):
    """Debian version -> (epoch, version, release) for RPM."""
    epoch = ""
    if ":" in version:
        epoch, version = version.split(":", 1)
    if "-" in version:
        version, release = version.rsplit("-", 1)
    else:
        release = "0"
    return epoch, version.replace("-", "_"), release.replace("-", "_")


def write_debian_spec(pkgs, conf, work):
    """debian.spec: one subpackage per Debian package, its file list in
    work/lists/NAME.files, and the manifest populate reads."""
    manifest = {}
    lists = os.path.join(work, "lists")
    os.makedirs(lists)
    sections = []
    for name in sorted(pkgs):
        p = pkgs[name]
        files = payload(name, conf)
        flist = os.path.join(lists, name + ".files")
        with open(flist, "w") as f:
            for path, (kind, src) in sorted(files.items()):
                manifest.setdefault(path, (kind, src))
                conf_file = kind == "file" and path.startswith("/etc/")
                f.write(("%%config(noreplace) %s\n" if conf_file else "%s\n") % rpm_escape(path))
        epoch, version, release = evr(p.version)
        s = ["%%package -n %s" % name]
        if epoch:
            s.append("Epoch: %s" % epoch)
        s += ["Version: %s" % version, "Release: %s" % release,
              "Summary: %s" % (p.summary.replace("%", "%%") or name),
              "AutoReqProv: no",
              "Provides: debian(%s) = %s%s-%s" % (name, epoch + ":" if epoch else "", version, release),
              "Requires: filesystem"]
        s += ["Requires: %s" % r for r in p.requires + conf.requires.get(name, [])]
        s += ["Provides: %s" % v for v in conf.provides.get(name, [])]
        s += ["", "%%description -n %s" % name,
              "Debian's %s %s as installed on the host that built this distribution." % (name, p.version), "",
              # rpm refuses an empty -f list; an empty package is fine
              "%%files -n %s" % name + (" -f " + flist if files else ""),
              "%defattr(-,root,root,-)", ""]
        sections.append("\n".join(s))
    manifest_path = os.path.join(work, "manifest.json")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    with open(os.path.join(HERE, "debian.spec.in")) as f:
        head = f.read()
    spec = os.path.join(work, "debian.spec")
    with open(spec, "w") as f:
        f.write(head.replace("@MANIFEST@", manifest_path).replace("@BUILD_PY@", os.path.abspath(__file__)))
        f.write("\n" + "\n".join(sections))
    return spec, len(manifest)


# ---------------------------------------------------------------------------
# The build


class Builder:
    def __init__(self, out):
        self.out = out
        self.work = os.path.join(out, ".work")
        self.home = os.path.join(self.work, "home")
        os.makedirs(self.home)
        # A private HOME: the host user's ~/.rpmmacros must not change the
        # result, and Debian's rpm keeps a database in ~/.rpmdb.
        with open(os.path.join(self.home, ".rpmmacros"), "w") as f:
            f.write("%%_dbpath %s/rpmdb\n" % self.home)
        self.env = dict(os.environ, HOME=self.home, LC_ALL="C", TZ="UTC")
        self.procs = []

    def start(self, name, argv):
        """Starts argv in the background, its output in work/NAME.log."""
        logf = open(os.path.join(self.work, name + ".log"), "w")
        log("start", name)
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=self.env, cwd=self.work)
        self.procs.append((name, p, logf, time.monotonic()))

    def wait(self):
        """Waits for every started command, logging each as it ends."""
        failed = []
        while self.procs:
            for item in list(self.procs):
                name, p, logf, t = item
                rc = p.poll()
                if rc is None:
                    continue
                self.procs.remove(item)
                logf.close()
                log("done", name, "rc=%d" % rc, "(%.1fs)" % (time.monotonic() - t))
                if rc != 0:
                    failed.append(name)
                    with open(os.path.join(self.work, name + ".log")) as f:
                        sys.stdout.write(f.read()[-6000:])
            time.sleep(0.05)
        if failed:
            sys.exit("failed: " + " ".join(failed))

    def rpmbuild(self, name, mode, spec, *defines):
        top = os.path.join(self.work, "top-" + name)
        src = os.path.dirname(spec)
        argv = ["rpmbuild", mode, "--quiet", "--nodeps", "--define", "_topdir " + top,
                "--define", "_sourcedir " + src, "--define", "_specdir " + src]
        for d in defines:
            argv += ["--define", d]
        self.start(name, argv + [spec])
        return top


def rpms_in(top, sub):
    out = []
    for d, _, files in os.walk(os.path.join(top, sub)):
        out += [os.path.join(d, f) for f in files if f.endswith(".rpm")]
    return sorted(out)


def build(out):
    conf = Conf()
    if os.path.exists(out):
        sys.exit("%s exists" % out)
    os.makedirs(out)
    b = Builder(out)
    pkgs = closure(conf)
    log("closure: %d Debian packages" % len(pkgs))
    with open(os.path.join(out, "debian-packages.txt"), "w") as f:
        f.writelines("%s %s\n" % (n, pkgs[n].version) for n in sorted(pkgs))
    spec, nfiles = write_debian_spec(pkgs, conf, b.work)
    log("debian.spec: %d paths" % nfiles)

    tops = {
        "debian": b.rpmbuild("debian", "-bb", spec),
        "testdist": b.rpmbuild("testdist", "-bb", os.path.join(HERE, "testdist.spec"),
                               "releasever " + RELEASEVER),
        "dep1": b.rpmbuild("dep1", "-bb", os.path.join(HERE, "thinroot-test-dep.spec"), "dep_release 1"),
        "dep2": b.rpmbuild("dep2", "-bb", os.path.join(HERE, "thinroot-test-dep.spec"), "dep_release 2"),
    }
    srpm_dir = os.path.join(HERE, "srpms")
    for s in sorted(os.listdir(srpm_dir)):
        if s.endswith(".spec"):
            tops["srpm-" + s[:-5]] = b.rpmbuild("srpm-" + s[:-5], "-bs", os.path.join(srpm_dir, s))
    b.wait()

    repo = os.path.join(out, "repo")
    repo2 = os.path.join(out, "repo-v2")
    srpms = os.path.join(out, "srpms")
    for d in (repo, repo2, srpms):
        os.makedirs(d)
    for key, top in tops.items():
        if key.startswith("srpm-"):
            for r in rpms_in(top, "SRPMS"):
                os.rename(r, os.path.join(srpms, os.path.basename(r)))
            continue
        for r in rpms_in(top, "RPMS"):
            base = os.path.basename(r)
            if key != "dep2":
                os.rename(r, os.path.join(repo, base))
            if key == "dep2":
                os.rename(r, os.path.join(repo2, base))
            elif key != "dep1":
                os.link(os.path.join(repo, base), os.path.join(repo2, base))
    log("%d RPMs" % len(os.listdir(repo)))

    comps = os.path.join(HERE, "comps.xml")
    for name, d in (("createrepo", repo), ("createrepo-v2", repo2)):
        b.start(name, ["createrepo_c", "--quiet", "--no-database", "--workers", "2",
                       "--groupfile", comps, d])
    b.wait()
    shutil.rmtree(b.work)
    log("built", out)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "closure":
        pkgs = closure(Conf())
        for n in sorted(pkgs):
            print(n, pkgs[n].version)
    elif len(sys.argv) == 3 and sys.argv[1] == "build":
        build(os.path.abspath(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "populate":
        populate(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
