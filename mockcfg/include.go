package mockcfg

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// origin is where a line of expanded text came from.
type origin struct {
	file string
	line int // 1-based
}

func (o origin) String() string {
	if o.file == "" {
		return "<defaults>"
	}
	return fmt.Sprintf("%s:%d", o.file, o.line)
}

// srcText is text with the origin of each of its lines
// (len(lines) == strings.Count(text, "\n")+1).
type srcText struct {
	text  string
	lines []origin
}

func newSrcText(text, file string) srcText {
	n := strings.Count(text, "\n") + 1
	lines := make([]origin, n)
	for k := range lines {
		lines[k] = origin{file, k + 1}
	}
	return srcText{text, lines}
}

// includeRe is the pattern mock uses to find include lines. It is applied
// to the whole text, so it also matches inside triple-quoted strings, and
// its leading \s* swallows blank lines before the include.
var includeRe = regexp.MustCompile(`(?m)^\s*include\((.*)\)`)

// pyJoin is Python's os.path.join for two parts (no cleaning).
func pyJoin(dir, name string) string {
	if strings.HasPrefix(name, "/") || dir == "" {
		return name
	}
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

// maxFileSize bounds the size of a config file or template.
const maxFileSize = 16 << 20

// includer expands include() lines the way mock does before it runs a
// file: textually, relative to the config dir (not the including file),
// each path (as joined, not cleaned) once per top-level file.
type includer struct {
	searchPath string
	seen       map[string]bool
	readFile   func(string) ([]byte, error)
}

// expand returns the text of path with its includes replaced. from is the
// include line that asked for it (zero for the top-level file).
func (x *includer) expand(path string, from origin, depth int) (srcText, error) {
	if !strings.HasPrefix(path, "/") {
		path = pyJoin(x.searchPath, path)
	}
	if depth > 100 {
		return srcText{}, &Error{File: from.file, Line: from.line, Msg: "include nesting too deep at " + path}
	}
	st, err := os.Stat(path)
	if err != nil {
		return srcText{}, &Error{File: from.file, Line: from.line,
			Msg: "could not find included config file: " + path}
	}
	if x.seen[path] {
		// mock logs "Multiple inclusion of %s, skipping" and inserts nothing.
		return newSrcText("", from.file), nil
	}
	x.seen[path] = true
	// A device or a huge file would make this hang or exhaust memory.
	if !st.Mode().IsRegular() || st.Size() > maxFileSize {
		return srcText{}, &Error{File: from.file, Line: from.line,
			Msg: fmt.Sprintf("included config file %s is not a regular file of at most %d bytes", path, maxFileSize)}
	}
	data, err := x.readFile(path)
	if err != nil {
		return srcText{}, &Error{File: from.file, Line: from.line, Msg: err.Error(), Err: err}
	}
	cur := newSrcText(string(data), path)
	orig := cur.text
	for _, m := range includeRe.FindAllStringSubmatchIndex(orig, -1) {
		argLine := origin{path, strings.Count(orig[:m[3]], "\n") + 1}
		arg := orig[m[2]:m[3]]
		name, err := evalIncludeArg(arg)
		if err != nil {
			return srcText{}, &Error{File: argLine.file, Line: argLine.line, Msg: "include(" + arg + "): " + err.Error()}
		}
		sub, err := x.expand(name, argLine, depth+1)
		if err != nil {
			return srcText{}, err
		}
		// mock substitutes with re.sub(count=1) on the text as it is now,
		// so the first remaining match is this include.
		cm := includeRe.FindStringSubmatchIndex(cur.text)
		if cm == nil {
			return srcText{}, &Error{File: argLine.file, Line: argLine.line, Msg: "include line vanished during expansion"}
		}
		// re.sub treats the included text as a replacement template.
		repl, err := expandReplTemplate(sub, cur.text[cm[0]:cm[1]], cur.text[cm[2]:cm[3]])
		if err != nil {
			return srcText{}, &Error{File: argLine.file, Line: argLine.line,
				Msg: fmt.Sprintf("include(%s): %v (mock inserts included text with re.sub)", arg, err)}
		}
		cur = spliceSrc(cur, cm[0], cm[1], repl)
	}
	return cur, nil
}

// spliceSrc replaces cur.text[start:end] with repl; start is a line start.
func spliceSrc(cur srcText, start, end int, repl srcText) srcText {
	ls := strings.Count(cur.text[:start], "\n")
	le := strings.Count(cur.text[:end], "\n")
	lines := make([]origin, 0, len(cur.lines)+len(repl.lines))
	lines = append(lines, cur.lines[:ls]...)
	lines = append(lines, repl.lines[:len(repl.lines)-1]...)
	// the last line of repl continues with the rest of the include line
	lastRepl := repl.text[strings.LastIndexByte(repl.text, '\n')+1:]
	if lastRepl == "" {
		lines = append(lines, cur.lines[le])
	} else {
		lines = append(lines, repl.lines[len(repl.lines)-1])
	}
	lines = append(lines, cur.lines[le+1:]...)
	return srcText{cur.text[:start] + repl.text + cur.text[end:], lines}
}

// evalIncludeArg evaluates include()'s argument, a Python expression that
// mock eval()s; in practice a string literal.
func evalIncludeArg(arg string) (string, error) {
	src, err := pyToStarlark(arg)
	if err != nil {
		return "", err
	}
	th := &starlark.Thread{Name: "include"}
	th.SetMaxExecutionSteps(10000)
	v, err := starlark.EvalOptions(&syntax.FileOptions{}, th, "include", src, nil)
	if err != nil {
		return "", err
	}
	str, ok := v.(starlark.String)
	if !ok {
		return "", fmt.Errorf("argument is %s, want a string", v.Type())
	}
	return string(str), nil
}

// expandReplTemplate applies Python's re.sub replacement-template rules to
// the included text: \n, \t and friends become control characters, \\
// becomes \, \1 and \g<...> insert the include match, an unknown escape of
// an ASCII letter is an error, and any other escape is kept as it is.
// Line origins follow the text: a line that grows a newline keeps its origin.
func expandReplTemplate(sub srcText, group0, group1 string) (srcText, error) {
	if !strings.Contains(sub.text, `\`) {
		return sub, nil
	}
	parts := strings.Split(sub.text, "\n")
	var out strings.Builder
	lines := make([]origin, 0, len(sub.lines))
	for n, p := range parts {
		last := n == len(parts)-1
		r, err := replTemplateLine(p, last, group0, group1)
		if err != nil {
			return srcText{}, fmt.Errorf("%s: %w", sub.lines[n], err)
		}
		for k := 0; k <= strings.Count(r, "\n"); k++ {
			lines = append(lines, sub.lines[n])
		}
		out.WriteString(r)
		if !last {
			out.WriteByte('\n')
		}
	}
	return srcText{out.String(), lines}, nil
}

var replEscapes = map[byte]byte{'a': 7, 'b': 8, 'f': 12, 'n': 10, 'r': 13, 't': 9, 'v': 11, '\\': '\\'}

func isASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isOct(c byte) bool         { return c >= '0' && c <= '7' }
func isDigit(c byte) bool       { return c >= '0' && c <= '9' }

// replTemplateLine expands one line of a re.sub replacement template as
// Python's re module does. It is long because it is one scanner over the
// escapes and group references Python accepts, in Python's order.
func replTemplateLine(p string, last bool, group0, group1 string) (string, error) {
	if !strings.Contains(p, `\`) {
		return p, nil
	}
	group := func(n int) (string, error) {
		switch n {
		case 0:
			return group0, nil
		case 1:
			return group1, nil
		}
		return "", fmt.Errorf("invalid group reference %d", n)
	}
	var out strings.Builder
	for k := 0; k < len(p); k++ {
		c := p[k]
		if c != '\\' {
			out.WriteByte(c)
			continue
		}
		if k+1 >= len(p) {
			if last {
				return "", fmt.Errorf("bad escape (end of pattern)")
			}
			// a backslash before the newline is kept with it
			out.WriteByte(c)
			continue
		}
		k++
		e := p[k]
		switch {
		case e == 'g':
			if k+1 >= len(p) || p[k+1] != '<' {
				return "", fmt.Errorf("missing <")
			}
			j := strings.IndexByte(p[k+2:], '>')
			if j < 0 {
				return "", fmt.Errorf("missing >, unterminated name")
			}
			name := p[k+2 : k+2+j]
			n, err := strconv.Atoi(name)
			if err != nil || n < 0 {
				return "", fmt.Errorf("unknown group name '%s'", name)
			}
			g, err := group(n)
			if err != nil {
				return "", err
			}
			out.WriteString(g)
			k += 2 + j
		case e == '0':
			v := 0
			n := 0
			for n < 2 && k+1 < len(p) && isOct(p[k+1]) {
				k++
				v = v*8 + int(p[k]-'0')
				n++
			}
			out.WriteRune(rune(v & 0xff))
		case isDigit(e):
			if k+1 < len(p) && isDigit(p[k+1]) {
				if isOct(e) && isOct(p[k+1]) && k+2 < len(p) && isOct(p[k+2]) {
					v := int(e-'0')*64 + int(p[k+1]-'0')*8 + int(p[k+2]-'0')
					if v > 0o377 {
						return "", fmt.Errorf(`octal escape value \%s outside of range 0-0o377`, p[k:k+3])
					}
					out.WriteRune(rune(v))
					k += 2
					continue
				}
				g, err := group(int(e-'0')*10 + int(p[k+1]-'0'))
				if err != nil {
					return "", err
				}
				out.WriteString(g)
				k++
				continue
			}
			g, err := group(int(e - '0'))
			if err != nil {
				return "", err
			}
			out.WriteString(g)
		default:
			if r, ok := replEscapes[e]; ok {
				out.WriteByte(r)
			} else if isASCIILetter(e) {
				return "", fmt.Errorf(`bad escape \%c`, e)
			} else {
				out.WriteByte('\\')
				out.WriteByte(e)
			}
		}
	}
	return out.String(), nil
}
