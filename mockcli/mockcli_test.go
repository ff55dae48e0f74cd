package mockcli

import (
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/thinroot/thinroot/internal/testguard"
)

func TestMain(m *testing.M) { os.Exit(testguard.Main(m)) }

// The argv lines kojid and copr-rpmbuild pass (farm-contract §1.2-1.3,
// §2.1-2.2), after the program name, and what mock makes of them.
func TestFarmArgv(t *testing.T) {
	koji := []string{"-r", "koji/f40-build-123456-7890"}
	tests := []struct {
		name string
		argv []string
		want Options
	}{
		{"A init", append(koji, "--init"), Options{Root: "koji/f40-build-123456-7890", Mode: ModeInit}},
		{"A init new-chroot image-ready", append(koji, "--new-chroot", "--bootstrap-image-ready", "--init"),
			Options{Root: "koji/f40-build-123456-7890", Mode: ModeInit, NewChroot: true, BootstrapImageReady: true}},
		{"B chroot one word", append(koji, "--chroot", "uname -r"),
			Options{Root: "koji/f40-build-123456-7890", Mode: ModeChroot, Args: []string{"uname -r"}}},
		{"C source_cmd", append(koji, "--no-clean", "--unpriv", "--cwd", "/chroot_tmpdir/scmroot/pkg", "--chroot", "make", "sources"),
			Options{Root: "koji/f40-build-123456-7890", Mode: ModeChroot, NoClean: true, Unpriv: true, Cwd: "/chroot_tmpdir/scmroot/pkg",
				Args: []string{"make", "sources"}}},
		{"D buildsrpm", append(koji, "--old-chroot", "--no-clean", "--buildsrpm", "--spec", "/var/lib/mock/x/root/chroot_tmpdir/scmroot/pkg/pkg.spec",
			"--sources", "/var/lib/mock/x/root/chroot_tmpdir/scmroot/pkg", "--target", "noarch"),
			Options{Root: "koji/f40-build-123456-7890", Mode: ModeBuildSRPM, NoClean: true, OldChroot: true,
				Spec: "/var/lib/mock/x/root/chroot_tmpdir/scmroot/pkg/pkg.spec", Sources: "/var/lib/mock/x/root/chroot_tmpdir/scmroot/pkg", Target: "noarch"}},
		{"E chroot after --", append(koji, "--no-clean", "--target", "noarch", "--chroot", "--", "rpm", "--define", "_topdir /chroot_tmpdir/srpm_unpacked",
			"-iv", "/chroot_tmpdir/srpm/x.src.rpm"),
			Options{Root: "koji/f40-build-123456-7890", Mode: ModeChroot, NoClean: true, Target: "noarch",
				Args: []string{"rpm", "--define", "_topdir /chroot_tmpdir/srpm_unpacked", "-iv", "/chroot_tmpdir/srpm/x.src.rpm"}}},
		{"G rebuild", append(koji, "--no-clean", "--target", "x86_64", "--rebuild", "/mnt/koji/work/tasks/1/2/pkg-1-1.src.rpm"),
			Options{Root: "koji/f40-build-123456-7890", Mode: ModeRebuild, NoClean: true, Target: "x86_64",
				Args: []string{"/mnt/koji/work/tasks/1/2/pkg-1-1.src.rpm"}}},
		{"G rebuild image-ready known", append(koji, "--bootstrap-image-ready", "--no-clean", "--rebuild", "/w/p.src.rpm"),
			Options{Root: "koji/f40-build-123456-7890", Mode: ModeRebuild, NoClean: true, BootstrapImageReady: true, Args: []string{"/w/p.src.rpm"}}},
		{"H install", append(koji, "--install", "maven", "java-devel"),
			Options{Root: "koji/f40-build-123456-7890", Mode: ModeInstall, Args: []string{"maven", "java-devel"}}},
		{"K runroot", append(koji, "--arch", "x86_64", "--chroot", "--", "/bin/sh", "-c", "{ true; } < /dev/null 2>&1 | /usr/bin/tee /builddir/runroot.log; exit ${PIPESTATUS[0]}"),
			Options{Root: "koji/f40-build-123456-7890", Mode: ModeChroot, Arch: "x86_64",
				Args: []string{"/bin/sh", "-c", "{ true; } < /dev/null 2>&1 | /usr/bin/tee /builddir/runroot.log; exit ${PIPESTATUS[0]}"}}},
		{"copr rpm build", []string{"--spec", "/w/pkg/pkg.spec", "--sources", "/w/pkg", "--resultdir", "/var/lib/copr-rpmbuild/results",
			"--uniqueext", "1733112345.123456", "-r", "/var/lib/copr-rpmbuild/results/configs/child.cfg", "--with", "tests", "--without", "docs", "--no-cleanup-after"},
			Options{Root: "/var/lib/copr-rpmbuild/results/configs/child.cfg", Mode: ModeRebuild, Spec: "/w/pkg/pkg.spec", Sources: "/w/pkg",
				ResultDir: "/var/lib/copr-rpmbuild/results", UniqueExt: "1733112345.123456", With: []string{"tests"}, Without: []string{"docs"}, NoCleanupAfter: true}},
		{"copr clean", []string{"-r", "/r/configs/child.cfg", "--uniqueext", "1733112345.123456", "--scrub", "bootstrap", "--scrub", "chroot", "--scrub", "root-cache", "--quiet"},
			Options{Root: "/r/configs/child.cfg", Mode: ModeClean, UniqueExt: "1733112345.123456", Scrub: []string{"bootstrap", "chroot", "root-cache"}, Quiet: true}},
		{"copr spec srpm", []string{"-r", "/r/mock-source-build.cfg", "--buildsrpm", "--spec", "/w/x.spec", "--resultdir", "/r", "--define", "copr_username alice"},
			Options{Root: "/r/mock-source-build.cfg", Mode: ModeBuildSRPM, Spec: "/w/x.spec", ResultDir: "/r", Defines: []string{"copr_username alice"}}},
		{"copr make_srpm", []string{"--uniqueext", "1.2", "-r", "/r/mock-source-build.cfg", `--plugin-option=bind_mount:dirs=(("/w", "/mnt/w"), ("/r", "/mnt/r"))`,
			"--chroot", "set -x && cd /w && make -f /w/.copr/Makefile srpm"},
			Options{Root: "/r/mock-source-build.cfg", Mode: ModeChroot, UniqueExt: "1.2", PluginOptions: []string{`bind_mount:dirs=(("/w", "/mnt/w"), ("/r", "/mnt/r"))`},
				Args: []string{"set -x && cd /w && make -f /w/.copr/Makefile srpm"}}},
		{"copr custom copyin", []string{"-r", "/r/mock-config.cfg", "--copyin", "/w/script", "/script"},
			Options{Root: "/r/mock-config.cfg", Mode: ModeCopyIn, Args: []string{"/w/script", "/script"}}},
		{"copr custom copyout", []string{"-r", "/r/mock-config.cfg", "--copyout", "/workdir/out", "/w/srcdir"},
			Options{Root: "/r/mock-config.cfg", Mode: ModeCopyOut, Args: []string{"/workdir/out", "/w/srcdir"}}},
		{"copr custom scrub all", []string{"-r", "/r/mock-config.cfg", "--scrub", "all"},
			Options{Root: "/r/mock-config.cfg", Mode: ModeClean, Scrub: []string{"all"}}},
		{"copr custom shell", []string{"-r", "/r/mock-config.cfg", "--shell", "chmod a+r /workdir/hook_payload"},
			Options{Root: "/r/mock-config.cfg", Mode: ModeShell, Args: []string{"chmod a+r /workdir/hook_payload"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.argv)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tc.argv, *got, tc.want)
			}
		})
	}
}

func TestInterleavedAndForms(t *testing.T) {
	o, err := Parse([]string{"pkg.src.rpm", "-nq", "--resul=/out", "-Dfoo 1", "--target=i686", "-r", "cfg"})
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Root: "cfg", Mode: ModeRebuild, Args: []string{"pkg.src.rpm"}, NoClean: true, Quiet: true, ResultDir: "/out",
		Defines: []string{"foo 1"}, Target: "i686"}
	if !reflect.DeepEqual(*o, want) {
		t.Fatalf("got %+v\nwant %+v", *o, want)
	}
	// A legacy first word names the mode.
	if o, _ := Parse([]string{"-r", "c", "shell", "ls"}); o.Mode != ModeShell || !reflect.DeepEqual(o.Args, []string{"ls"}) {
		t.Fatalf("legacy mode: %+v", o)
	}
	// An option mock does not know stays among the positionals, in place.
	o, _ = Parse([]string{"-r", "c", "--chroot", "make", "--frobnicate", "x"})
	if !reflect.DeepEqual(o.Args, []string{"make", "--frobnicate", "x"}) || !reflect.DeepEqual(o.Unknown, []string{"--frobnicate"}) {
		t.Fatalf("unknown option: %+v", o)
	}
	// The last mode option wins; --scrub makes the mode clean.
	if o, _ := Parse([]string{"--init", "--rebuild", "x.src.rpm"}); o.Mode != ModeRebuild {
		t.Fatalf("last mode: %s", o.Mode)
	}
	if o, _ := Parse([]string{"--rebuild", "--scrub=all"}); o.Mode != ModeClean {
		t.Fatalf("scrub mode: %s", o.Mode)
	}
	// -- that does not lead the positionals stays.
	o, _ = Parse([]string{"--chroot", "echo", "--", "-n"})
	if !reflect.DeepEqual(o.Args, []string{"echo", "--", "-n"}) || o.NoClean {
		t.Fatalf("inner --: %+v", o)
	}
}

func TestCommands(t *testing.T) {
	o, _ := Parse([]string{"--chroot", "uname -r"})
	if got := o.Command(); !reflect.DeepEqual(got, []string{"/bin/sh", "-c", "uname -r"}) {
		t.Fatalf("one word: %q", got)
	}
	o, _ = Parse([]string{"--chroot", "make", "sources"})
	if got := o.Command(); !reflect.DeepEqual(got, []string{"make", "sources"}) {
		t.Fatalf("several words: %q", got)
	}
	o, _ = Parse([]string{"--shell", "chmod", "a+r /x"})
	if got := o.ShellCommand(); !reflect.DeepEqual(got, []string{"/bin/sh", "-c", "chmod a+r /x"}) {
		t.Fatalf("shell: %q", got)
	}
	if o.ConfigName("/w") != "default" {
		t.Fatal("default config")
	}
	o, _ = Parse([]string{"-r", "sub/child.cfg"})
	if o.ConfigName("/w") != "/w/sub/child.cfg" {
		t.Fatalf("relative .cfg: %s", o.ConfigName("/w"))
	}
	o, _ = Parse([]string{"-r", "koji/f40-build-1-2"})
	if o.ConfigName("/w") != "koji/f40-build-1-2" {
		t.Fatalf("koji name: %s", o.ConfigName("/w"))
	}
}

func TestBindMounts(t *testing.T) {
	o, _ := Parse([]string{`--plugin-option=bind_mount:dirs=(("/w", "/mnt/w"), ('/r', '/mnt/r'))`, "--plugin-option", "tmpfs:keep_mounted=True",
		"--plugin-option", `bind_mount:dirs=[("/a b", "/c")]`})
	got, err := o.BindMounts()
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"/w", "/mnt/w"}, {"/r", "/mnt/r"}, {"/a b", "/c"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	o, _ = Parse([]string{"--plugin-option", "bind_mount:dirs=(('/a',),)"})
	if _, err := o.BindMounts(); err == nil {
		t.Fatal("a one-element tuple was taken as a pair")
	}
}

// Exit statuses of command lines mock refuses.
func TestRefusals(t *testing.T) {
	tests := []struct {
		argv []string
		code int
	}{
		{[]string{"--scrub", "everything"}, ExitParser},
		{[]string{"-r"}, ExitParser},
		{[]string{"--resultdir"}, ExitParser},
		{[]string{"--init=yes"}, ExitParser},
		{[]string{"--with"}, ExitParser},
		{[]string{"--re", "x"}, ExitParser}, // ambiguous: --rebuild, --remove, --resultdir, ...
		{[]string{"--rebuild", "a.src.rpm", "b.src.rpm"}, ExitBadCmdline},
		{[]string{"--no-clean", "--rebuild", "--bootstrap-imag", "a.src.rpm", "b.src.rpm"}, ExitBadCmdline},
		{[]string{"--buildsrpm"}, ExitBadCmdline},
		{[]string{"--snapshot", "x"}, ExitBadCmdline},
		{[]string{"--chroot"}, ExitModeArgs},
		{[]string{"--install"}, ExitModeArgs},
		{[]string{"--copyin", "/a"}, ExitModeArgs},
		{[]string{"--rebuild"}, ExitModeArgs},
		{[]string{}, ExitModeArgs},
	}
	for _, tc := range tests {
		o, err := Parse(tc.argv)
		if err == nil {
			err = o.Check()
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("%q: %v, want exit %d", tc.argv, err, tc.code)
		}
	}
	// Several SRPMs are fine with --resultdir.
	o, _ := Parse([]string{"--rebuild", "a.src.rpm", "b.src.rpm", "--resultdir", "/r"})
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
}
