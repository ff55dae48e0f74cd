package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// thinroot(1) names every command and every flag the binary has, and no
// command it lacks, so the page cannot drift from the code.
func TestManPageCoversCLI(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "man", "thinroot.1.md"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	newGlobals().register(fs)
	fs.Bool("version", false, "")
	fs.VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(page, "**--"+f.Name+"**") {
			t.Errorf("global flag --%s is not in thinroot(1)", f.Name)
		}
	})
	names := map[string]bool{}
	for _, c := range commands {
		names[c.name] = true
		if !strings.Contains(page, "**thinroot "+c.name+"**") {
			t.Errorf("command %q is not in thinroot(1)", c.name)
			continue
		}
		cfs := pflag.NewFlagSet("", pflag.ContinueOnError)
		if c.flags != nil {
			c.flags(cfs)
		}
		cfs.VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(page, "**--"+f.Name+"**") {
				t.Errorf("flag --%s of %q is not in thinroot(1)", f.Name, c.name)
			}
		})
	}
	for _, m := range regexp.MustCompile(`\*\*thinroot ([a-z-]+(?: [a-z-]+)?)\*\*`).FindAllStringSubmatch(page, -1) {
		if !names[m[1]] {
			t.Errorf("thinroot(1) documents %q, which the binary does not have", m[1])
		}
	}
}
