package mockcfg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Templates that would loop for minutes or recurse until the Go stack
// overflows (which ends the process) fail with the reason instead.
func TestTemplateBudget(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"{% for i in range(2000) %}{% for j in range(2000) %}{% endfor %}{% endfor %}x", "templates take more than 200000 steps"},
		{"{% for i in range(100000) %}{% if i %}{% endif %}{% endfor %}{% for i in range(100000) %}{% endfor %}x", "templates take more than 200000 steps"},
		{"{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "calls of macro m nested more than 64 deep"},
		{"{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}", "nested more than 64 deep"},
	} {
		start := time.Now()
		out, err := RenderTemplate(c.src, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %q, %v; want an error saying %q", c.src, out, err, c.want)
		}
		if len(err.Error()) > 200 {
			t.Errorf("%s: the error runs to %d characters: %.200s...", c.src, len(err.Error()), err)
		}
		t.Logf("%s: %v in %v", c.src, err, time.Since(start).Round(time.Millisecond))
	}
	// What mock's templates do stays well within it.
	out, err := RenderTemplate("{% macro m(n) %}{% if n > 0 %}{{ n }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(10) }}"+
		"{% for i in range(50000) %}{% endfor %}", nil)
	if err != nil || out != "10987654321" {
		t.Fatalf("a recursion 10 deep and a 50000 range: %q %v", out, err)
	}
}

// A config file that builds huge values or runs too long fails with the
// reason, quickly, instead of exhausting the host. Each case has the time
// bound that leaves the other bound to stop it: the memory case may take
// seconds on a loaded host (a CI run on a fresh machine took over 2 s to
// grow the heap by 512 MiB), and builds no more than 2 GiB should its
// bound fail.
func TestFileBudget(t *testing.T) {
	dir := t.TempDir()
	l := &Loader{ConfigDir: dir, Home: t.TempDir()}
	savedTime, savedSteps := maxFileTime, maxSteps
	// The step bound is not under test here.
	maxSteps = 1 << 62
	t.Cleanup(func() { maxFileTime, maxSteps = savedTime, savedSteps })
	for _, c := range []struct {
		name, text, want string
		limit            time.Duration
	}{
		{"memory", "config_opts['root'] = 'x'\nconfig_opts['big'] = ['a' * 10000000 for i in range(200)]\n", "more than 512 MiB of memory", time.Minute},
		// Small ints allocate nothing: only the time bound can stop this.
		{"time", "config_opts['root'] = 'x'\nx = 0\nfor i in range(1000000000):\n  x = (x + i) % 7\n", "ran for more than 2s", 2 * time.Second},
	} {
		if err := os.WriteFile(filepath.Join(dir, c.name+".cfg"), []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		maxFileTime = c.limit
		start := time.Now()
		_, err := l.Load(c.name)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error saying %q", c.name, err, c.want)
		}
		t.Logf("%s: %v after %v", c.name, err, time.Since(start).Round(time.Millisecond))
	}
}
