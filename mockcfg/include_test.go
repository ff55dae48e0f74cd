package mockcfg

import (
	"errors"
	"strings"
	"testing"
)

func TestIncludeIsTextual(t *testing.T) {
	// The included text runs in the including file's scope: it sees the
	// includer's variables and defines variables the includer then uses.
	c := mustLoadTree(t, map[string]string{
		"t/part.tpl": "config_opts['from_part'] = before + '+part'\nafter = 'defined in part'\n",
		"x.cfg":      "config_opts['root'] = 'x'\nbefore = 'cfg'\ninclude('t/part.tpl')\nconfig_opts['after'] = after\n",
	}, "x")
	if got := mustGet(t, c, "from_part"); got != "cfg+part" {
		t.Errorf("from_part = %v", got)
	}
	if got := mustGet(t, c, "after"); got != "defined in part" {
		t.Errorf("after = %v", got)
	}
}

func TestIncludeOnceRelativeToConfigDir(t *testing.T) {
	c := mustLoadTree(t, map[string]string{
		// t/a.tpl names t/b.tpl relative to the config dir, not to t/
		"t/a.tpl": "config_opts['n'] += 1\ninclude('t/b.tpl')\n",
		"t/b.tpl": "config_opts['n'] += 10\n",
		"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['n'] = 0\n" +
			"include('t/a.tpl')\ninclude('t/a.tpl')\ninclude('t/b.tpl')\n",
	}, "x")
	if got := mustGet(t, c, "n"); got != int64(11) {
		t.Errorf("n = %v, want 11 (each file once)", got)
	}
	paths, _, _ := c.Strings("config_paths")
	if len(paths) != 3 {
		t.Errorf("config_paths = %v, want the config and two templates", paths)
	}
}

func TestIncludeOncePerTopLevelFile(t *testing.T) {
	// mock keeps the set of included files per file it reads, so a
	// template included by site-defaults.cfg runs again for the config.
	c := mustLoadTree(t, map[string]string{
		"t/count.tpl":       "config_opts['n'] = config_opts.get('n', 0) + 1\n",
		"site-defaults.cfg": "include('t/count.tpl')\n",
		"x.cfg":             "config_opts['root'] = 'x'\ninclude('t/count.tpl')\n",
	}, "x")
	if got := mustGet(t, c, "n"); got != int64(2) {
		t.Errorf("n = %v, want 2", got)
	}
}

func TestIncludeAbsolutePath(t *testing.T) {
	other := writeTree(t, map[string]string{"abs.tpl": "config_opts['abs'] = True\n"})
	c := mustLoadTree(t, map[string]string{
		"x.cfg": "include('" + other + "/abs.tpl')\nconfig_opts['root'] = 'x'\n",
	}, "x")
	if got := mustGet(t, c, "abs"); got != true {
		t.Errorf("abs = %v", got)
	}
}

func TestIncludeMissing(t *testing.T) {
	_, err := loadTree(t, map[string]string{
		"x.cfg": "config_opts['root'] = 'x'\n\ninclude('templates/nope.tpl')\n",
	}, "x")
	var e *Error
	if !errors.As(err, &e) || e.Line != 3 || !strings.HasSuffix(e.File, "/x.cfg") ||
		!strings.Contains(e.Msg, "could not find included config file: ") || !strings.Contains(e.Msg, "templates/nope.tpl") {
		t.Fatalf("got %v", err)
	}
}

func TestIncludeReplacementTemplate(t *testing.T) {
	// mock inserts included text with re.sub, so backslash escapes in an
	// included file are processed once more: \\ becomes \ (and then
	// Python keeps the unknown escape \y), \n becomes a newline, \$ stays.
	c := mustLoadTree(t, map[string]string{
		"t.tpl": "config_opts['a'] = 'x\\\\y'\nconfig_opts['b'] = '\\$'\nconfig_opts['c'] = '''1\\n2'''\n",
		"x.cfg": "config_opts['root'] = 'x'\ninclude('t.tpl')\n",
	}, "x")
	for k, want := range map[string]string{"a": `x\y`, "b": `\$`, "c": "1\n2"} {
		if got := mustGet(t, c, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	_, err := loadTree(t, map[string]string{
		"t.tpl": "config_opts['a'] = '\\d'\n",
		"x.cfg": "config_opts['root'] = 'x'\ninclude('t.tpl')\n",
	}, "x")
	if err == nil || !strings.Contains(err.Error(), `bad escape \d`) || !strings.Contains(err.Error(), "x.cfg:2") {
		t.Errorf("got %v, want bad escape at x.cfg:2", err)
	}
}

func TestIncludeAtRuntimeFails(t *testing.T) {
	_, err := loadTree(t, map[string]string{
		"t.tpl": "",
		"x.cfg": "config_opts['root'] = 'x'; include('t.tpl')\n",
	}, "x")
	if err == nil || !strings.Contains(err.Error(), "include() must start its own line") || !strings.Contains(err.Error(), "x.cfg:1") {
		t.Errorf("got %v", err)
	}
}

func TestIncludeLineOrigins(t *testing.T) {
	// An error in an included file names that file and its line, even
	// after blank lines were swallowed and other files inserted.
	_, err := loadTree(t, map[string]string{
		"t/one.tpl": "a = 1\nb = 2\n",
		"t/two.tpl": "c = 1\n\nd = undefined_name\n",
		"x.cfg":     "config_opts['root'] = 'x'\n\n\ninclude('t/one.tpl')\ninclude('t/two.tpl')\n",
	}, "x")
	var e *Error
	if !errors.As(err, &e) || !strings.HasSuffix(e.File, "t/two.tpl") || e.Line != 3 {
		t.Fatalf("got %v, want t/two.tpl:3", err)
	}
}
