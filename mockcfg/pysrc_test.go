package mockcfg

import (
	"strings"
	"testing"
)

func TestPyToStarlark(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"adjacent strings", `x = ("a" 'b')`, `x = (("a" + 'b'))`},
		{"adjacent across lines", "x = [\"a\"\n     \"b\", 'c']", "x = [(\"a\"\n     + \"b\"), 'c']"},
		{"adjacent with comment", "x = (\"a\"  # c\n \"b\")", "x = ((\"a\"  # c\n + \"b\"))"},
		{"statements stay apart", "'a'\n'b'", "'a'\n'b'"},
		{"unknown escape kept", `x = '\$ \d \n'`, `x = '\\$ \\d \n'`},
		{"raw string untouched", `x = r'\$ \d'`, `x = r'\$ \d'`},
		{"bytes keep backslash-u", `x = b'\u'`, `x = b'\\u'`},
		{"u prefix dropped", `x = u'a'`, `x = 'a'`},
		{"f-string", `x = f"{a}-{b!r}"`, `x = ("{}-{!r}".format(a, b))`},
		{"f-string braces", `x = f'{{{a}}}'`, `x = ('{{{}}}'.format(a))`},
		{"is not", `x = a is not None`, `x = a !=  None`},
		{"is", `x = a is None`, `x = a == None`},
		{"del", `del config_opts['a']['b']`, `config_opts['a'].pop('b')`},
		{"del after colon", `if x: del d[k]`, `if x: d.pop(k)`},
		{"tabs in indentation", "if x:\n\ty = 1\n", "if x:\n        y = 1\n"},
		{"import os", "import os\nimport os.path  # c\n", "pass\npass\n"},
		{"digit separators", `x = 1_000`, `x = 1000`},
		{"strings untouched", `x = "is del import"`, `x = "is del import"`},
		{"triple quoted", "x = '''a\n'b' \"c\"\n'''", "x = '''a\n'b' \"c\"\n'''"},
		{"names untouched", `island = isdel`, `island = isdel`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pyToStarlark(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
			if strings.Count(got, "\n") != strings.Count(tc.in, "\n") {
				t.Errorf("line count changed")
			}
		})
	}
}

func TestPyToStarlarkErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"x = 1\ny = 'abc\n", "line 2: unterminated string literal"},
		{"import sys", "line 1: import sys: only os and os.path"},
		{"x = 1\ndel x", "line 2: del: only `del container[key]`"},
		{"x = f'{a'", "f-string: expecting '}'"},
	} {
		_, err := pyToStarlark(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
		}
	}
}
