package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version and commit are set at build time by the Makefile
// (-ldflags -X main.version=... -X main.commit=...).
var version, commit = "", ""

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "" && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	c := commit
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("thinroot %s (commit %s)", v, c)
}

func init() {
	register(&command{
		name: "version", summary: "print the version and commit",
		run: func(ctx context.Context, a *app, args []string) error {
			_, err := fmt.Fprintln(a.stdout, versionString())
			return err
		},
	})
}
