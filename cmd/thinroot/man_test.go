package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/builder"
	"github.com/thinroot/thinroot/lvm/lvmtest"
)

// thinroot(1) names every command and every flag the binary has (short
// forms too), every environment variable it reads and every one a build
// sees, and no command it lacks, so the page cannot drift from the code.
func TestManPageCoversCLI(t *testing.T) {
	page := readManPage(t, "thinroot.1.md")
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	g, _ := newGlobals()
	g.register(fs)
	fs.Bool("version", false, "")
	adHocFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(page, "**--"+f.Name+"**") {
			t.Errorf("flag --%s is not in thinroot(1)", f.Name)
		}
	})
	names := map[string]bool{}
	for _, c := range commands {
		names[c.name] = true
		if c.hidden {
			continue
		}
		if !strings.Contains(page, "**thinroot "+c.name+"**") {
			t.Errorf("command %q is not in thinroot(1)", c.name)
			continue
		}
		cfs := pflag.NewFlagSet("", pflag.ContinueOnError)
		c.addFlags(cfs, nil)
		cfs.VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(page, "**--"+f.Name+"**") {
				t.Errorf("flag --%s of %q is not in thinroot(1)", f.Name, c.name)
			}
			if f.Shorthand != "" && !strings.Contains(page, "**-"+f.Shorthand+"**") {
				t.Errorf("flag -%s of %q is not in thinroot(1)", f.Shorthand, c.name)
			}
		})
	}
	for _, m := range regexp.MustCompile(`\*\*thinroot ([a-z-]+(?: [a-z-]+)?)\*\*`).FindAllStringSubmatch(page, -1) {
		if !names[m[1]] {
			t.Errorf("thinroot(1) documents %q, which the binary does not have", m[1])
		}
	}
	env := section(t, page, "ENVIRONMENT")
	for _, v := range envVars {
		if !strings.Contains(env, "`"+v.name+"`") {
			t.Errorf("thinroot(1) ENVIRONMENT does not list %s", v.name)
		}
	}
	// The variables a build's command sees, as the builder sets them.
	src, err := os.ReadFile(filepath.Join(lvmtest.RepoRoot(t), "builder", "run.go"))
	if err != nil {
		t.Fatal(err)
	}
	benv := section(t, page, "BUILD ENVIRONMENT")
	found := regexp.MustCompile(`"([A-Z][A-Z_]+)="`).FindAllStringSubmatch(string(src), -1)
	if len(found) < 4 {
		t.Fatalf("found %d variables in builder/run.go", len(found))
	}
	for _, m := range found {
		if !strings.Contains(benv, "`"+m[1]+"`") {
			t.Errorf("thinroot(1) BUILD ENVIRONMENT does not list %s", m[1])
		}
	}
	for _, want := range []string{"result.old-", "/builddir/source", "/builddir/results"} {
		if !strings.Contains(benv, want) {
			t.Errorf("thinroot(1) BUILD ENVIRONMENT does not say %q", want)
		}
	}
	json := section(t, page, "JSON OUTPUT")
	for _, want := range []string{"snake_case", "RFC 3339", "_bytes", "config show", "--resolved"} {
		if !strings.Contains(json, want) {
			t.Errorf("thinroot(1) JSON OUTPUT does not say %q", want)
		}
	}
}

// thinroot-api(7) documents every route the daemon serves and no other,
// and every kind of error answer.
func TestAPIPageCoversRoutes(t *testing.T) {
	page := readManPage(t, "thinroot-api.7.md")
	routes := map[string]bool{}
	for _, r := range builder.Routes {
		routes[r] = true
		if !strings.Contains(page, "**"+r+"**") {
			t.Errorf("thinroot-api(7) does not document %s", r)
		}
	}
	for _, m := range regexp.MustCompile(`\*\*((?:GET|POST|PUT|DELETE) /v1/\S*)\*\*`).FindAllStringSubmatch(page, -1) {
		if !routes[m[1]] {
			t.Errorf("thinroot-api(7) documents %s, which the daemon does not serve", m[1])
		}
	}
	for _, k := range []string{builder.KindBadRequest, builder.KindUnknownConfig, builder.KindUnknownSnapshot,
		builder.KindNoBuild, builder.KindFinished, builder.KindForbidden} {
		if !strings.Contains(page, "`"+k+"`") {
			t.Errorf("thinroot-api(7) does not document the error kind %s", k)
		}
	}
	mk, err := os.ReadFile(filepath.Join(lvmtest.RepoRoot(t), "Makefile"))
	if err != nil || !strings.Contains(string(mk), "man/thinroot-api.7") {
		t.Errorf("the Makefile does not build and install thinroot-api(7)")
	}
}

// README tells a Fedora user what to install, and says what make check
// costs and what runs quickly.
func TestReadmeSaysHowToRunTheTests(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(lvmtest.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, want := range []string{"sudo dnf install", "make test-unit", "boots a VM", "minutes"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not say %q", want)
		}
	}
}

// section is the text of a man page's "# NAME" section.
func section(t *testing.T, page, name string) string {
	t.Helper()
	_, s, ok := strings.Cut(page, "\n# "+name+"\n")
	if !ok {
		t.Fatalf("no section %s", name)
	}
	s, _, _ = strings.Cut(s, "\n# ")
	return s
}
