package mockcfg

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzTimeout is how long one input may take before it counts as a hang.
const fuzzTimeout = 20 * time.Second

// FuzzLoad runs arbitrary text as a config file: any input must give a
// config or an error, never a panic. The seed corpus is in
// testdata/fuzz/FuzzLoad; run with go test -fuzz FuzzLoad ./mockcfg/.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"config_opts['root'] = 'x'\n",
		"include('templates/t.tpl')\nconfig_opts['root'] = '{{ a }}'\n",
		"config_opts['a'] = ('a' 'b')\nconfig_opts['b'] = f'{1}'\ndel config_opts['a']\n",
		"config_opts['dnf.conf'] = '{% if x %}{{ y }}{% endif %}'\n",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	home := f.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		f.Fatal(err)
	}
	tpl := "config_opts['a'] = '{{ root }}'\nconfig_opts['chroot_setup_cmd'] += ' x'\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "t.tpl"), []byte(tpl), 0o644); err != nil {
		f.Fatal(err)
	}
	saved := maxSteps
	maxSteps = 100_000
	f.Cleanup(func() { maxSteps = saved })
	l := &Loader{ConfigDir: dir, Home: home}
	cfg := filepath.Join(dir, "x.cfg")
	f.Fuzz(func(t *testing.T, text string) {
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// A hang is a failure too: the fuzzer then keeps the input.
		done := make(chan error, 1)
		go func() {
			c, err := l.Load("x")
			if err == nil {
				if _, err := c.JSON(); err != nil {
					done <- err
					return
				}
				_, _ = c.Thinroot()
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("JSON of a loaded config: %v", err)
			}
		case <-time.After(fuzzTimeout):
			t.Fatalf("no result after %v", fuzzTimeout)
		}
	})
}

// FuzzRender renders arbitrary text as a config value with a config-like
// context: any input must render or fail, never panic. The seed corpus is
// in testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	for _, seed := range []string{
		"{{ releasever }}", "{% if x == None %}a{% else %}b{% endif %}",
		"{%- macro m() -%}{% for i in range(3) %}{{ i }}{% endfor %}{%- endmacro %}{{ m() }}",
		"{{ l|join(',') }} {{ d.k }} {{ t[0] }}", "{{ {{ }}", "{% raw %}{{ x }}{% endraw %}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tpl string) {
		raw := Dict{
			"releasever": "41", "target_arch": "x86_64", "x": pyNone, "n": int64(3), "f": 0.5,
			"l": List{"a", int64(1), Tuple{"b"}}, "d": Dict{"k": "{{ releasever }}"}, "t": Tuple{"t"},
			"value": tpl,
		}
		r := newRenderer(raw)
		_, _ = r.renderString(tpl)
		_, _ = r.renderValue(List{tpl, Dict{"k": tpl}}, "v", 0)
	})
}
