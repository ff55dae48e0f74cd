package mockcfg

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Rendering follows mock's TemplatedDictionary: once every file is loaded,
// reading a key renders it with Jinja2 (keep_trailing_newline, otherwise
// default settings) using the raw top-level dict as context, again and
// again until the text stops changing; jinja_max_recursion (default 5)
// renders without reaching a fixed point are an error. Strings are
// rendered, lists and dicts are rendered element by element in place,
// tuples, sets and other values are left as they are. Undefined names
// render empty.

// noneName is what None literals in templates are rewritten to, so that
// they evaluate to the same pyNone that config values hold (gonja itself
// does not tell None from undefined).
const noneName = "__mockcfg_none__"

var jinjaConfig = func() *config.Config {
	c := config.New()
	c.KeepTrailingNewline = true
	return c
}()

// pyStrMethods are Python's str methods; gonja's are taken as they are,
// except where noted in strMethodOverrides.
var pyStrMethods = []string{"capitalize", "casefold", "center", "count", "encode",
	"endswith", "expandtabs", "find", "format", "format_map", "index", "isalnum",
	"isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
	"isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust",
	"lower", "lstrip", "partition", "removeprefix", "removesuffix", "replace",
	"rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
	"splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill"}

var strMethodOverrides = map[string]exec.Method[string]{
	// Python's count argument is optional (gonja requires it).
	"replace": func(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
		var old, repl string
		count := -1
		if err := args.Take(
			exec.PositionalArgument("old", nil, exec.StringArgument(&old)),
			exec.PositionalArgument("new", nil, exec.StringArgument(&repl)),
			exec.PositionalArgument("count", exec.AsValue(-1), exec.IntArgument(&count)),
		); err != nil {
			return nil, exec.ErrInvalidCall(err)
		}
		return strings.Replace(self, old, repl, count), nil
	},
}

func isPyNone(v *exec.Value) bool {
	_, ok := v.Interface().(noneT)
	return ok && !v.IsNil()
}

var jinjaEnv = func() *exec.Environment {
	str := map[string]exec.Method[string]{}
	for _, name := range pyStrMethods {
		if m, ok := builtins.Methods.Str.Get(name); ok {
			str[name] = m
		}
	}
	for name, m := range strMethodOverrides {
		str[name] = m
	}
	tests := exec.NewTestSet(map[string]exec.TestFunction{}).Update(builtins.Tests)
	_ = tests.Replace("none", func(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
		return isPyNone(in), nil
	})
	// gonja's defined/undefined already treat nil as undefined; pyNone is
	// a value, hence defined, as None is in Jinja2.
	filters := exec.NewFilterSet(map[string]exec.FilterFunction{}).Update(builtins.Filters)
	ctx := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	ctx.Set(noneName, pyNone)
	ctx.Set("range", safeRange)
	return &exec.Environment{
		Context:           ctx,
		Filters:           filters,
		Tests:             tests,
		ControlStructures: countedStructures,
		Methods: exec.Methods{
			Bool:  builtins.Methods.Bool,
			Int:   builtins.Methods.Int,
			Float: builtins.Methods.Float,
			Str:   exec.NewMethodSet(str),
			Dict:  builtins.Methods.Dict,
			List:  builtins.Methods.List,
		},
	}
}()

// maxRange is the size limit of Jinja2's sandbox on range(), which mock's
// templates run in.
const maxRange = 100000

// safeRange is range() as Jinja2's sandbox has it: at most maxRange items.
// (gonja's own feeds a channel from a goroutine, which leaks when a
// template stops early.)
func safeRange(e *exec.Evaluator, params *exec.VarArgs) ([]int, error) {
	var start, stop, step = 0, 0, 1
	for _, a := range params.Args {
		if !a.IsInteger() {
			return nil, fmt.Errorf("range: %s is not an integer", a.String())
		}
	}
	switch len(params.Args) {
	case 1:
		stop = params.Args[0].Integer()
	case 2, 3:
		start, stop = params.Args[0].Integer(), params.Args[1].Integer()
		if len(params.Args) == 3 {
			step = params.Args[2].Integer()
		}
	default:
		return nil, fmt.Errorf("range expected 1 to 3 arguments, got %d", len(params.Args))
	}
	if step == 0 {
		return nil, fmt.Errorf("range() arg 3 must not be zero")
	}
	n := 0
	if step > 0 && stop > start {
		n = (stop - start + step - 1) / step
	} else if step < 0 && stop < start {
		n = (start - stop - step - 1) / -step
	}
	if n > maxRange {
		return nil, fmt.Errorf("Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", maxRange)
	}
	if e != nil {
		if err := budgetOf(e.Environment.Context).spend(int64(n)); err != nil {
			return nil, err
		}
	}
	out := make([]int, n)
	for k := range out {
		out[k] = start + k*step
	}
	return out, nil
}

// srcLoader hands one template text to gonja.
type srcLoader struct{ src string }

func (l *srcLoader) Read(string) (io.Reader, error)         { return strings.NewReader(l.src), nil }
func (l *srcLoader) Resolve(name string) (string, error)    { return name, nil }
func (l *srcLoader) Inherit(string) (loaders.Loader, error) { return l, nil }

// hasJinja reports whether s has any Jinja delimiter; text without one
// renders to itself, which saves parsing most values.
func hasJinja(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%") || strings.Contains(s, "{#")
}

// rewriteNone replaces the None literal (None or none, as Jinja2 spells
// it) in template expressions with noneName, and gonja's extra nil literal
// (an ordinary, undefined, name in Jinja2) with a name that is never set.
func rewriteNone(src string) string {
	if !strings.Contains(src, "one") && !strings.Contains(src, "nil") {
		return src
	}
	stream := tokens.LexAll(src, jinjaConfig)
	var out strings.Builder
	last := 0
	var prev, prev2 *tokens.Token
	for !stream.End() {
		tok := stream.Current()
		stream.Next()
		if tok.Type == tokens.Name && (tok.Val == "None" || tok.Val == "none" || tok.Val == "nil") &&
			tok.Pos >= last && tok.Pos+len(tok.Val) <= len(src) && src[tok.Pos:tok.Pos+len(tok.Val)] == tok.Val {
			// not after '.', '|', "is" or "is not": there it names an
			// attribute, a filter or the none test
			skip := prev != nil && (prev.Type == tokens.Dot || prev.Type == tokens.Pipe || prev.Val == "is" ||
				(prev.Val == "not" && prev2 != nil && prev2.Val == "is"))
			if !skip {
				repl := noneName
				if tok.Val == "nil" {
					repl = "__mockcfg_undefined_nil__"
				}
				out.WriteString(src[last:tok.Pos])
				out.WriteString(repl)
				last = tok.Pos + len(tok.Val)
			}
		}
		if tok.Type != tokens.Whitespace {
			prev2, prev = prev, tok
		}
	}
	if last == 0 {
		return src
	}
	out.WriteString(src[last:])
	return out.String()
}

// renderer renders the values of one config.
type renderer struct {
	env      *exec.Environment
	cache    map[string]*exec.Template
	maxDepth int
}

func newRenderer(raw Dict) *renderer {
	ctx := jinjaEnv.Context.Inherit()
	for k, v := range raw {
		ctx.Set(k, v)
	}
	// mock passes func=lambda: None along with the dict.
	ctx.Set("func", func() any { return pyNone })
	ctx.Set(budgetKey, newBudget())
	maxDepth := 5
	if n, ok := raw["jinja_max_recursion"].(int64); ok {
		maxDepth = int(n)
	}
	return &renderer{
		env: &exec.Environment{
			Context:           ctx,
			Filters:           jinjaEnv.Filters,
			Tests:             jinjaEnv.Tests,
			ControlStructures: jinjaEnv.ControlStructures,
			Methods:           jinjaEnv.Methods,
		},
		cache:    map[string]*exec.Template{},
		maxDepth: maxDepth,
	}
}

// once renders a template text one time.
func (r *renderer) once(src string) (out string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("template engine panic: %v", p)
		}
	}()
	tpl, ok := r.cache[src]
	if !ok {
		tpl, err = exec.NewTemplate("value", jinjaConfig, &srcLoader{rewriteNone(src)}, r.env)
		if err != nil {
			return "", cleanJinjaErr(err)
		}
		if len(r.cache) > 4096 {
			clear(r.cache)
		}
		r.cache[src] = tpl
	}
	out, err = tpl.ExecuteToString(nil)
	if err != nil {
		return "", cleanJinjaErr(err)
	}
	return out, nil
}

// cleanJinjaErr drops the template source that gonja pastes into its
// messages (a whole dnf.conf), keeping the reason.
func cleanJinjaErr(err error) error {
	msg := err.Error()
	// A budget error is wrapped once per nesting level: keep the reason.
	for _, reason := range []string{budgetStepsMsg, budgetDepthMsg} {
		if i := strings.LastIndex(msg, reason); i >= 0 {
			return fmt.Errorf("%s", msg[i:])
		}
	}
	if i := strings.Index(msg, "failed to parse template '"); i >= 0 {
		if j := strings.LastIndex(msg, "': "); j > i {
			msg = msg[:i] + "parse error: " + msg[j+3:]
		}
	}
	return fmt.Errorf("%s", strings.ReplaceAll(msg, noneName, "None"))
}

// renderString renders until the text is stable, as mock does.
func (r *renderer) renderString(s string) (string, error) {
	last := s
	for n := 0; n < r.maxDepth; n++ {
		if !hasJinja(last) {
			return last, nil
		}
		v, err := r.once(last)
		if err != nil {
			return "", err
		}
		if v == last {
			return v, nil
		}
		last = v
	}
	return "", fmt.Errorf("too deep jinja re-evaluation on %s", pyQuote(s))
}

// renderValue renders v: strings are returned rendered, lists and dicts
// are rendered in place (their elements), other values are returned as
// they are.
func (r *renderer) renderValue(v any, path string, depth int) (any, error) {
	if depth > 200 {
		return nil, fmt.Errorf("%s: value nested too deep", path)
	}
	switch x := v.(type) {
	case string:
		out, err := r.renderString(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return out, nil
	case List:
		for n := range x {
			e, err := r.renderValue(x[n], fmt.Sprintf("%s[%d]", path, n), depth+1)
			if err != nil {
				return nil, err
			}
			x[n] = e
		}
	case Dict:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e, err := r.renderValue(x[k], path+"["+pyQuote(k)+"]", depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
	}
	return v, nil
}

// RenderTemplate renders one Jinja2 template text once, with vars as its
// context, with the same engine and settings as config values. It exists
// for tests and tools; configs are rendered by Load.
func RenderTemplate(src string, vars map[string]any) (string, error) {
	raw := Dict{}
	for k, v := range vars {
		raw[k] = v
	}
	return newRenderer(raw).once(src)
}
