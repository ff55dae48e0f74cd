package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// commit is set at build time by the Makefile (-ldflags -X main.commit=...).
var commit = ""

func versionString() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
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
