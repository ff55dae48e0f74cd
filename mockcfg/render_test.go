package mockcfg

import (
	"reflect"
	"strings"
	"testing"
)

func TestRenderTemplate(t *testing.T) {
	ctx := map[string]any{
		"releasever": "41", "target_arch": "x86_64", "mirrored": true, "none_value": pyNone,
		"l": List{"a", "b"}, "tup": Tuple{"t"}, "d": Dict{"k": "v"}, "n": int64(5), "f": 1.5,
	}
	for _, tc := range []struct{ name, tpl, want string }{
		{"variable", "{{ releasever }}", "41"},
		{"undefined is empty", "a{{ nope }}b", "ab"},
		{"if elif else", "{% if target_arch == 'i686' %}a{% elif target_arch in ['x86_64'] %}b{% else %}c{% endif %}", "b"},
		{"set", "{% set x = 'p' %}{% set x = x + ',' + target_arch %}{{ x }}", "p,x86_64"},
		{"for over range", "{% for i in range(3,6) %}{{ i }}{% endfor %}{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}{{ range(3)|length }}", "3455313"},
		{"for over list", "{% for i in l %}{{ i }}.{% endfor %}", "a.b."},
		{"int filter", "{% if releasever|int >= 40 %}new{% endif %}{{ releasever|int + 1 }}", "new42"},
		{"macro and whitespace control", "{%- macro k() -%}\n  x\n{%- for v in [1, 2]\n%} y{{ v }}\n{%- endfor %}\n{%- endmacro %}\n[{{ k() }}]", "\n[x y1 y2]"},
		{"keeps trailing newline", "a\n", "a\n"},
		{"no trim_blocks", "{% if true %}\nx\n{% endif %}\n", "\nx\n\n"},
		{"bool prints as Python", "{{ not mirrored }}|{{ mirrored }}", "False|True"},
		{"None prints as Python", "{{ none_value }}|{{ None }}", "None|None"},
		{"None vs undefined", "{{ none_value == None }} {{ nope == None }} {{ nope != none }} {{ none_value is none }} {{ nope is none }}", "True False True True False"},
		{"None is defined", "{{ none_value is defined }} {{ nope is defined }}", "True False"},
		{"default filter", "{{ nope|default('d') }} {{ none_value|default('d') }}", "d None"},
		{"containers print as Python", "{{ l }} {{ tup }} {{ d }}", "['a', 'b'] ('t',) {'k': 'v'}"},
		{"numbers", "{{ n }} {{ f }} {{ n * 2 }}", "5 1.5 10"},
		{"str methods", "{{ releasever.replace('4', 'X') }} {{ 'a-b'.split('-')[1] }} {{ target_arch.upper() }}", "X1 b X86_64"},
		{"format filter", "{{ '%s-%s'|format(releasever, target_arch) }}", "41-x86_64"},
		{"comment", "a{# hidden #}b", "ab"},
		{"nil is just a name", "{{ nil }}|{{ nil == None }}", "|False"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderTemplate(tc.tpl, ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestRenderSandboxRange(t *testing.T) {
	// Jinja2's sandbox, which mock renders in, refuses ranges over 100000.
	if _, err := RenderTemplate("{% for i in range(100001) %}{% endfor %}", nil); err == nil || !strings.Contains(err.Error(), "Range too big") {
		t.Errorf("got %v", err)
	}
	if _, err := RenderTemplate("{{ range(1, 2, 0) }}", nil); err == nil {
		t.Error("range with step 0 must fail")
	}
}

func TestRenderUntilStable(t *testing.T) {
	c := mustLoadTree(t, map[string]string{"x.cfg": `
config_opts['root'] = 'x'
config_opts['a'] = '{{ b }}1'
config_opts['b'] = '{{ c }}2'
config_opts['c'] = '{{ d }}3'
config_opts['d'] = '4'
config_opts['nested'] = {'list': ['{{ a }}', ('{{ a }}',)], 'dict': {'k': '{{ root }}'}}
config_opts['tuple'] = ('{{ root }}',)
`}, "x")
	if got := mustGet(t, c, "a"); got != "4321" {
		t.Errorf("a = %v", got)
	}
	want := Dict{"list": List{"4321", Tuple{"{{ a }}"}}, "dict": Dict{"k": "x"}}
	if got := mustGet(t, c, "nested"); !reflect.DeepEqual(got, want) {
		t.Errorf("nested = %#v", got)
	}
	if got := mustGet(t, c, "tuple"); !reflect.DeepEqual(got, Tuple{"{{ root }}"}) {
		t.Errorf("tuple = %#v (tuples are not rendered)", got)
	}
}

func TestRenderTooDeep(t *testing.T) {
	chain := "config_opts['root'] = 'x'\nconfig_opts['k0'] = 'end'\n"
	for n := 1; n <= 6; n++ {
		chain += "config_opts['k" + string(rune('0'+n)) + "'] = '{{ k" + string(rune('0'+n-1)) + " }}'\n"
	}
	// k4 needs 4 renders and a fifth to see it is stable: fine.
	c := mustLoadTree(t, map[string]string{"x.cfg": chain + "config_opts['k5'] = 'x'\nconfig_opts['k6'] = 'x'\n"}, "x")
	if got := mustGet(t, c, "k4"); got != "end" {
		t.Errorf("k4 = %v", got)
	}
	// k5 needs 5 renders plus one: mock gives up after 5.
	_, err := loadTree(t, map[string]string{"x.cfg": chain}, "x")
	if err == nil || !strings.Contains(err.Error(), "too deep jinja re-evaluation on '{{ k4 }}'") ||
		!strings.Contains(err.Error(), "config_opts['k5']") || !strings.Contains(err.Error(), "x.cfg:7") {
		t.Errorf("got %v", err)
	}
	// jinja_max_recursion raises the limit, as in mock.
	c = mustLoadTree(t, map[string]string{"x.cfg": chain + "config_opts['jinja_max_recursion'] = 10\n"}, "x")
	if got := mustGet(t, c, "k6"); got != "end" {
		t.Errorf("k6 = %v", got)
	}
	// A self reference never settles.
	_, err = loadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\nconfig_opts['loop'] = '<{{ loop }}>'\n"}, "x")
	if err == nil || !strings.Contains(err.Error(), "too deep") {
		t.Errorf("got %v", err)
	}
}

func TestRenderErrorNamesKey(t *testing.T) {
	_, err := loadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\n\nconfig_opts['bad'] = {'k': ['{% if %}']}\n"}, "x")
	if err == nil || !strings.Contains(err.Error(), "x.cfg:3: config_opts['bad']['k'][0]: ") {
		t.Errorf("got %v", err)
	}
}

func TestRenderSharedContainers(t *testing.T) {
	// One list held by two keys is rendered in place once for both, as
	// mock renders containers in place.
	c := mustLoadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\nl = ['{{ root }}']\nconfig_opts['a'] = l\nconfig_opts['b'] = l\n"}, "x")
	if a, b := mustGet(t, c, "a"), mustGet(t, c, "b"); !reflect.DeepEqual(a, List{"x"}) || !reflect.DeepEqual(b, List{"x"}) {
		t.Errorf("a = %v b = %v", a, b)
	}
	_, err := loadTree(t, map[string]string{"x.cfg": "config_opts['root'] = 'x'\nl = []\nl.append(l)\nconfig_opts['a'] = l\n"}, "x")
	if err == nil || !strings.Contains(err.Error(), "contains itself") {
		t.Errorf("got %v", err)
	}
}
