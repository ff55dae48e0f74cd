// Package size parses and prints byte sizes the way LVM and mock users
// write them: "8G" is 8 GiB (LVM's units are powers of 1024), while the
// explicit forms "8 GiB" and "8 GB" mean what they say.
package size

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// Parse reads a size: a plain number of bytes, a number with one LVM unit
// letter (b, k, m, g, t, p, e; either case; powers of 1024), or anything
// go-humanize understands ("8 GiB", "1.5GB", "300 MB").
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("size %q: empty", s)
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("size %q: negative", s)
		}
		return n, nil
	}
	last := t[len(t)-1] | 0x20
	if i := strings.IndexByte("bkmgtpe", last); i >= 0 {
		num := strings.TrimSpace(t[:len(t)-1])
		if f, err := strconv.ParseFloat(num, 64); err == nil {
			if f < 0 {
				return 0, fmt.Errorf("size %q: negative", s)
			}
			v := f * float64(uint64(1)<<(10*i))
			if v > 1<<62 {
				return 0, fmt.Errorf("size %q: too large", s)
			}
			return int64(v), nil
		}
	}
	n, err := humanize.ParseBytes(t)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if n > 1<<62 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(n), nil
}

// Format prints a size in binary units ("8.0 GiB").
func Format(n int64) string {
	if n < 0 {
		return "-" + humanize.IBytes(uint64(-n))
	}
	return humanize.IBytes(uint64(n))
}
