package mockcfg

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// Errors name the original file and line, through include expansion.
func TestErrorLocations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		file  string
		line  int
		msg   string
	}{
		{"syntax error in template", map[string]string{
			"t/a.tpl": "config_opts['a'] = 1\nconfig_opts['b'] = = 2\n",
			"x.cfg":   "config_opts['root'] = 'x'\ninclude('t/a.tpl')\n",
		}, "t/a.tpl", 2, "syntax error"},
		{"runtime error after an include", map[string]string{
			"t/a.tpl": "a = 1\nb = 2\nc = 3\n",
			"x.cfg":   "include('t/a.tpl')\nconfig_opts['root'] = 'x'\nconfig_opts['n'] = int('nine')\n",
		}, "x.cfg", 3, "int: invalid literal"},
		{"unterminated string in nested include", map[string]string{
			"t/a.tpl": "include('t/b.tpl')\n",
			"t/b.tpl": "\n\nconfig_opts['s'] = 'open\n",
			"x.cfg":   "config_opts['root'] = 'x'\ninclude('t/a.tpl')\n",
		}, "t/b.tpl", 3, "unterminated string literal"},
		{"undefined name", map[string]string{
			"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['a'] = nope\n",
		}, "x.cfg", 2, "undefined: nope"},
		{"key error", map[string]string{
			"x.cfg": "config_opts['root'] = 'x'\n\nconfig_opts['no']['such'] = 1\n",
		}, "x.cfg", 3, "key \"no\" not in dict"},
		{"site-defaults", map[string]string{
			"site-defaults.cfg": "config_opts[",
			"x.cfg":             "config_opts['root'] = 'x'\n",
		}, "site-defaults.cfg", 1, "syntax error"},
		{"template error at the key's assignment", map[string]string{
			"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['t'] = '{% for %}'\n",
		}, "x.cfg", 2, "config_opts['t']: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			_, err := (&Loader{ConfigDir: dir, Home: t.TempDir()}).Load("x")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if e.File != filepath.Join(dir, tc.file) || e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got %s:%d: %s\nwant %s:%d: ...%s...", e.File, e.Line, e.Msg, tc.file, tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "load x: ") {
				t.Errorf("error %q lacks the config name", err)
			}
		})
	}
}

func TestUserConfigErrorNamesIt(t *testing.T) {
	home := writeTree(t, map[string]string{".config/mock.cfg": "\nconfig_opts['x'] = undefined_thing\n"})
	_, err := (&Loader{ConfigDir: writeTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\n"}), Home: home}).Load("x")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(home, ".config/mock.cfg")+":2:") {
		t.Errorf("got %v", err)
	}
}
