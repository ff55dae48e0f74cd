package pkgmgr

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// HostRPM returns the host's rpm with args, reading a root's database
// (with --root) where the package manager wrote it: with the private
// HOME's macros given on the command line.
func HostRPM(ctx context.Context, args ...string) (*exec.Cmd, error) {
	var defs []string
	for _, l := range strings.Split(strings.TrimSpace(HostMacros()), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "%"), " "); ok {
			defs = append(defs, "--define", k+" "+v)
		}
	}
	cmd := exec.CommandContext(ctx, "rpm", append(defs, args...)...)
	cmd.Env = []string{"HOME=/nonexistent", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C.UTF-8"}
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

// Header is what the build reads from a package's header.
type Header struct {
	Name, Version, Release, Arch string
	Epoch                        string // "" when none
	// Requires lists the requirements (for a source package: its
	// BuildRequires) as "name [op version]", rpmlib() ones left out.
	Requires []string
	// Dynamic says a source package has %generate_buildrequires
	// (rpmlib(DynamicBuildRequires)).
	Dynamic bool
	// Source tells a source package.
	Source bool
}

// NVR is name-version-release.
func (h Header) NVR() string { return h.Name + "-" + h.Version + "-" + h.Release }

// ReadHeader reads a package file's header with the host's rpm.
func ReadHeader(ctx context.Context, file string) (Header, error) {
	const sep = "\x1f"
	cmd, err := HostRPM(ctx, "-qp", "--nosignature", "--nodigest", "--qf",
		"%{NAME}"+sep+"%{VERSION}"+sep+"%{RELEASE}"+sep+"%{ARCH}"+sep+"%|EPOCH?{%{EPOCH}}:{}|"+sep+"%|SOURCERPM?{binary}:{source}|\n"+
			"[%{REQUIRENAME} %{REQUIREFLAGS:deptype}"+sep+"%{REQUIRENEVRS}\n]", file)
	if err != nil {
		return Header{}, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Header{}, fmt.Errorf("read the header of %s: %v: %s", file, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	f := strings.Split(lines[0], sep)
	if len(f) != 6 {
		return Header{}, fmt.Errorf("read the header of %s: unexpected %q", file, lines[0])
	}
	h := Header{Name: f[0], Version: f[1], Release: f[2], Arch: f[3], Epoch: f[4], Source: f[5] == "source"}
	for _, l := range lines[1:] {
		kind, nevr, ok := strings.Cut(l, sep)
		if !ok {
			continue
		}
		name := strings.Fields(kind)
		if len(name) > 0 && strings.HasPrefix(name[0], "rpmlib(") {
			if name[0] == "rpmlib(DynamicBuildRequires)" {
				h.Dynamic = true
			}
			continue
		}
		if nevr = strings.TrimSpace(nevr); nevr != "" && !contains(h.Requires, nevr) {
			h.Requires = append(h.Requires, nevr)
		}
	}
	sort.Strings(h.Requires)
	return h, nil
}

// InstalledPackages lists a root's packages in mock's installed_pkgs.log
// format: "NEVRA BUILDTIME SIZE installed", one a line.
func InstalledPackages(ctx context.Context, root string) ([]byte, error) {
	cmd, err := HostRPM(ctx, "-qa", "--root", root, "--qf", "%{nevra} %{buildtime} %{size} installed\n")
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("rpm -qa --root %s: %v: %s", root, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ListFiles lists a package file's files (rpm -qpl).
func ListFiles(ctx context.Context, file string) ([]string, error) {
	cmd, err := HostRPM(ctx, "-qpl", "--nosignature", "--nodigest", file)
	if err != nil {
		return nil, err
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("rpm -qpl %s: %w", file, err)
	}
	return strings.Fields(string(out)), nil
}
