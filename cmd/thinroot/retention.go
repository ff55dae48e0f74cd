package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"github.com/thinroot/thinroot/builder"
)

// retentionFlags are the daemon's retention of finished builds.
func retentionFlags(fs *pflag.FlagSet) {
	fs.Var(&ageValue{}, "retain-age", "remove finished builds (record, log, results) this old: 30d, 12h (default: any age)")
	fs.Var(&countValue{min: 1, def: "any number"}, "retain-count", "keep at most the newest N finished builds")
	fs.Var(newSize(""), "retain-space", "remove the oldest finished builds while their records, logs and results take more than this: 20G")
}

func getRetention(fs *pflag.FlagSet) builder.Retention {
	r := builder.Retention{MaxCount: getCount(fs, "retain-count"), MaxBytes: getSize(fs, "retain-space")}
	if f := fs.Lookup("retain-age"); f != nil {
		r.MaxAge = builder.Duration(f.Value.(*ageValue).v)
	}
	return r
}

// pruneFlags are thinroot builds --prune's.
func pruneFlags(fs *pflag.FlagSet) {
	fs.Bool("prune", false, "remove finished builds (records, logs, results), oldest first: those --older-than, or past the newest --keep")
	fs.Var(&ageValue{}, "older-than", "with --prune: builds that finished longer ago than this: 30d, 12h")
	fs.Var(&countValue{min: 0}, "keep", "with --prune: keep the newest N finished builds")
	fs.Bool("kept-workdirs", false, "with --prune: builds whose workdir was kept go too, and that workdir with them")
}

// runPrune is thinroot builds --prune.
func runPrune(ctx context.Context, a *app) error {
	fl := a.flags
	r := builder.Retention{Kept: getBool(fl, "kept-workdirs")}
	if f := fl.Lookup("older-than"); f != nil {
		r.MaxAge = builder.Duration(f.Value.(*ageValue).v)
	}
	if changed(fl, "keep") {
		r.MaxCount = getCount(fl, "keep")
		if r.MaxCount == 0 {
			// The daemon reads 0 as "any number": keep none is one
			// that may not stay, however new.
			r.MaxAge = builder.Duration(time.Nanosecond)
		}
	}
	if r.IsZero() {
		return usageErr("--prune needs --older-than D or --keep N")
	}
	c := a.client()
	out, err := c.Prune(ctx, r)
	if err != nil {
		return c.wrap(err)
	}
	if a.jsonOut() {
		if out == nil {
			out = []builder.Pruned{}
		}
		return writeJSON(a.stdout, out)
	}
	var total int64
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCONFIG\tSIZE\tWHY")
	for _, p := range out {
		total += p.Bytes
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.Config, humanize.IBytes(uint64(p.Bytes)), p.Why)
	}
	tw.Flush()
	fmt.Fprintf(a.stderr, "thinroot: pruned %d builds, %s\n", len(out), humanize.IBytes(uint64(total)))
	return nil
}

// ageValue is a duration that also takes days: 30d, 36h, 90m.
type ageValue struct{ v time.Duration }

func (d *ageValue) String() string {
	if d.v == 0 {
		return ""
	}
	return d.v.String()
}
func (d *ageValue) Type() string { return "AGE" }
func (d *ageValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days float64
		if days, err = strconv.ParseFloat(n, 64); err == nil {
			v = time.Duration(days * 24 * float64(time.Hour))
		}
	}
	if err != nil || v <= 0 {
		return fmt.Errorf("want an age above zero such as 30d, 12h or 90m")
	}
	d.v = v
	return nil
}
