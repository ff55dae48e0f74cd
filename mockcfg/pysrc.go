package mockcfg

import (
	"fmt"
	"sort"
	"strings"
)

// This file rewrites the few Python constructs that mock config files use
// and that Starlark's grammar lacks, at the token level, before Starlark
// parses the text. Every rewrite keeps the line structure intact, so that
// Starlark's line numbers still map back through the include expansion.
//
// Rewrites (each one unavoidable: Starlark's scanner or parser rejects the
// Python form outright):
//   - adjacent string literals ("a" "b", used by chroot-aliases.cfg) become
//     ("a" + "b");
//   - unknown backslash escapes in non-raw strings ('\$', used by
//     opensuse-tumbleweed.tpl) keep their backslash, as Python does;
//   - the u/U string prefix is dropped (Starlark strings are unicode);
//   - f-strings become "...".format(...) calls;
//   - "x is not y" / "x is y" become != / == (Starlark has no identity);
//   - "del a[k]" becomes "a.pop(k)" (Starlark has no del statement);
//   - tabs in indentation are expanded to the next multiple of 8, as
//     Python's tokenizer does;
//   - "import os" / "import os.path" lines are dropped: mock runs configs in
//     a namespace where os is already imported, and so do we (see osModule).

// patch replaces src[start:end] of the output with text.
type patch struct {
	start, end int
	text       string
}

// pyError is a rewrite error at a line of the rewritten text (1-based).
type pyError struct {
	line int
	msg  string
}

func (e *pyError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

type pyRewriter struct {
	src  string
	pos  int
	line int
	out  strings.Builder
	pat  []patch

	depth int // bracket nesting
	// last significant token: "str", "name", "newline", ";", ":", "op", "" (start)
	last string
	// adjacent string literal group
	grpStart int // output offset of the group's first literal
	grpEnd   int // output offset after the group's last literal
	grpN     int
	// del statement in progress
	delStart int // output offset of "del", -1 when none
	delEnd   int // output offset after "del" and its spaces
	delDepth int
	delOpen  int // output offset of the last depth-0 '[' in the del statement
	delClose int // output offset of its matching ']'
	delLast  string
	delComma bool
	delLine  int
	delBrk   []int // stack of '[' offsets in the del statement
}

// pyToStarlark rewrites Python source text into Starlark source text.
func pyToStarlark(src string) (string, error) {
	r := &pyRewriter{src: src, line: 1, delStart: -1}
	if err := r.run(); err != nil {
		return "", err
	}
	out := r.out.String()
	if len(r.pat) == 0 {
		return out, nil
	}
	sort.SliceStable(r.pat, func(i, j int) bool { return r.pat[i].start > r.pat[j].start })
	for _, p := range r.pat {
		out = out[:p.start] + p.text + out[p.end:]
	}
	return out, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func (r *pyRewriter) errf(format string, a ...any) error {
	return &pyError{line: r.line, msg: fmt.Sprintf(format, a...)}
}

// significant records a significant token, closing a string group or a del
// statement when the token ends it.
func (r *pyRewriter) significant(kind string) {
	if kind != "str" {
		r.closeGroup()
	}
	r.last = kind
}

func (r *pyRewriter) closeGroup() {
	if r.grpN >= 2 {
		r.pat = append(r.pat, patch{r.grpStart, r.grpStart, "("}, patch{r.grpEnd, r.grpEnd, ")"})
	}
	r.grpN = 0
}

func (r *pyRewriter) atLineStart() bool {
	return r.last == "" || r.last == "newline" || r.last == ";" || (r.last == ":" && r.depth == 0)
}

func (r *pyRewriter) run() error {
	lineStart := true
	for r.pos < len(r.src) {
		if lineStart {
			lineStart = false
			if err := r.indent(); err != nil {
				return err
			}
			continue
		}
		c := r.src[r.pos]
		switch {
		case c == '\n':
			r.out.WriteByte('\n')
			r.pos++
			r.line++
			lineStart = true
			if r.depth == 0 {
				if err := r.endStatement(); err != nil {
					return err
				}
				r.significant("newline")
			}
		case c == '#':
			end := strings.IndexByte(r.src[r.pos:], '\n')
			if end < 0 {
				end = len(r.src) - r.pos
			}
			r.out.WriteString(r.src[r.pos : r.pos+end])
			r.pos += end
		case c == '\\' && r.pos+1 < len(r.src) && r.src[r.pos+1] == '\n':
			r.out.WriteString("\\\n")
			r.pos += 2
			r.line++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			r.out.WriteByte(c)
			r.pos++
		case c == '"' || c == '\'':
			if err := r.str(""); err != nil {
				return err
			}
		case isIdentStart(c):
			if err := r.ident(); err != nil {
				return err
			}
		case c >= '0' && c <= '9' || (c == '.' && r.pos+1 < len(r.src) && r.src[r.pos+1] >= '0' && r.src[r.pos+1] <= '9'):
			start := r.pos
			for r.pos < len(r.src) && (isIdentChar(r.src[r.pos]) || r.src[r.pos] == '.' ||
				((r.src[r.pos] == '+' || r.src[r.pos] == '-') && (r.src[r.pos-1] == 'e' || r.src[r.pos-1] == 'E'))) {
				r.pos++
			}
			// Python allows digit separators; Starlark does not.
			r.out.WriteString(strings.ReplaceAll(r.src[start:r.pos], "_", ""))
			r.significant("num")
		default:
			r.op(c)
		}
	}
	if err := r.endStatement(); err != nil {
		return err
	}
	r.closeGroup()
	return nil
}

// indent copies the leading whitespace of a line, expanding tabs as Python's
// tokenizer does (Starlark rejects tabs in indentation).
func (r *pyRewriter) indent() error {
	col := 0
	start := r.pos
	hasTab := false
	for r.pos < len(r.src) && (r.src[r.pos] == ' ' || r.src[r.pos] == '\t' || r.src[r.pos] == '\f') {
		switch r.src[r.pos] {
		case ' ':
			col++
		case '\t':
			hasTab = true
			col = (col/8 + 1) * 8
		case '\f':
			col = 0
		}
		r.pos++
	}
	if hasTab && r.depth == 0 {
		r.out.WriteString(strings.Repeat(" ", col))
	} else {
		r.out.WriteString(r.src[start:r.pos])
	}
	// "import os" is a no-op here: os is predeclared, as in mock's namespace.
	if r.depth == 0 && r.atLineStart() && strings.HasPrefix(r.src[r.pos:], "import ") {
		end := strings.IndexByte(r.src[r.pos:], '\n')
		if end < 0 {
			end = len(r.src) - r.pos
		}
		stmt := r.src[r.pos : r.pos+end]
		if i := strings.IndexByte(stmt, '#'); i >= 0 {
			stmt = stmt[:i]
		}
		for _, m := range strings.Split(strings.TrimPrefix(stmt, "import "), ",") {
			switch strings.TrimSpace(m) {
			case "os", "os.path":
			default:
				return r.errf("import %s: only os and os.path can be imported in a config", strings.TrimSpace(m))
			}
		}
		r.out.WriteString("pass")
		r.pos += end
		r.significant("name")
	}
	return nil
}

func (r *pyRewriter) op(c byte) {
	start := r.out.Len()
	r.out.WriteByte(c)
	r.pos++
	switch c {
	case '(', '[', '{':
		if r.delStart >= 0 && r.depth == r.delDepth && c == '[' {
			r.delBrk = append(r.delBrk, start)
		} else if r.delStart >= 0 && r.depth == r.delDepth {
			r.delBrk = append(r.delBrk, -1)
		}
		r.depth++
		r.significant("open")
	case ')', ']', '}':
		if r.depth > 0 {
			r.depth--
		}
		if r.delStart >= 0 && r.depth == r.delDepth && len(r.delBrk) > 0 {
			open := r.delBrk[len(r.delBrk)-1]
			r.delBrk = r.delBrk[:len(r.delBrk)-1]
			if c == ']' && open >= 0 {
				r.delOpen, r.delClose = open, start
				r.significant("close")
				r.delLast = "subscript"
				return
			}
		}
		r.significant("close")
	case ';':
		if r.depth == 0 {
			_ = r.endStatement()
		}
		r.significant(";")
	case ':':
		r.significant(":")
	case ',':
		if r.delStart >= 0 && r.depth == r.delDepth {
			r.delComma = true
		}
		r.significant("op")
	default:
		r.significant("op")
	}
	if r.delStart >= 0 {
		r.delLast = "other"
	}
}

// endStatement finishes a del statement: del base[key] -> base.pop(key).
func (r *pyRewriter) endStatement() error {
	if r.delStart < 0 {
		return nil
	}
	defer func() { r.delStart = -1; r.delBrk = nil }()
	if r.delLast != "subscript" || r.delComma || r.delOpen <= r.delEnd {
		return &pyError{line: r.delLine, msg: "del: only `del container[key]` is supported"}
	}
	r.pat = append(r.pat,
		patch{r.delStart, r.delEnd, ""},
		patch{r.delOpen, r.delOpen + 1, ".pop("},
		patch{r.delClose, r.delClose + 1, ")"})
	return nil
}

func (r *pyRewriter) ident() error {
	start := r.pos
	for r.pos < len(r.src) && isIdentChar(r.src[r.pos]) {
		r.pos++
	}
	word := r.src[start:r.pos]
	// string prefixes: r, b, u, f and their combinations
	if r.pos < len(r.src) && (r.src[r.pos] == '"' || r.src[r.pos] == '\'') && len(word) <= 2 {
		lw := strings.ToLower(word)
		switch lw {
		case "r", "b", "u", "f", "rb", "br", "fr", "rf":
			return r.str(lw)
		}
	}
	if r.delStart >= 0 {
		r.delLast = "other"
	}
	switch word {
	case "is":
		// "is not" -> "!=", "is" -> "=="
		j := r.pos
		for j < len(r.src) && (r.src[j] == ' ' || r.src[j] == '\t') {
			j++
		}
		if strings.HasPrefix(r.src[j:], "not") && (j+3 == len(r.src) || !isIdentChar(r.src[j+3])) {
			r.out.WriteString("!=")
			r.out.WriteString(strings.Repeat(" ", j-r.pos))
			r.pos = j + 3
		} else {
			r.out.WriteString("==")
		}
		r.significant("op")
		return nil
	case "del":
		if r.atLineStart() {
			if r.delStart >= 0 {
				if err := r.endStatement(); err != nil {
					return err
				}
			}
			r.delStart = r.out.Len()
			j := r.pos
			for j < len(r.src) && (r.src[j] == ' ' || r.src[j] == '\t') {
				j++
			}
			r.out.WriteString(r.src[start:j])
			r.pos = j
			r.delEnd = r.out.Len()
			r.delDepth = r.depth
			r.delOpen, r.delClose = -1, -1
			r.delComma = false
			r.delLast = "del"
			r.delLine = r.line
			r.significant("name")
			return nil
		}
	}
	r.out.WriteString(word)
	r.significant("name")
	return nil
}

// starlarkEscapes are the characters after a backslash that Starlark accepts
// in a string literal; Python keeps the backslash of any other.
func starlarkEscape(c byte, bytesLit bool) bool {
	switch c {
	case '\n', '\\', '\'', '"', 'a', 'b', 'f', 'n', 'r', 't', 'v', '0', '1', '2', '3', '4', '5', '6', '7', 'x':
		return true
	case 'u', 'U':
		return !bytesLit
	}
	return false
}

// str copies one string literal whose prefix (lower case) was already read.
// It is long because it is one scanner over Python's quoting (single,
// triple, raw, bytes, escapes) that must stay in step with itself.
func (r *pyRewriter) str(prefix string) error {
	q := r.src[r.pos]
	triple := strings.HasPrefix(r.src[r.pos:], strings.Repeat(string(q), 3))
	delim := string(q)
	if triple {
		delim = strings.Repeat(string(q), 3)
	}
	raw := strings.Contains(prefix, "r")
	bytesLit := strings.Contains(prefix, "b")
	fstr := strings.Contains(prefix, "f")
	startLine := r.line
	bodyStart := r.pos + len(delim)
	i := bodyStart
	var body strings.Builder
	for {
		if i >= len(r.src) {
			r.line = startLine
			return r.errf("unterminated string literal")
		}
		c := r.src[i]
		if !triple && c == '\n' {
			r.line = startLine
			return r.errf("unterminated string literal")
		}
		if strings.HasPrefix(r.src[i:], delim) {
			break
		}
		if c == '\\' && i+1 < len(r.src) {
			n := r.src[i+1]
			if !raw && !starlarkEscape(n, bytesLit) && n != 'N' {
				body.WriteString(`\\`)
				i++
				continue
			}
			body.WriteByte(c)
			body.WriteByte(n)
			if n == '\n' {
				r.line++
			}
			i += 2
			continue
		}
		if c == '\n' {
			r.line++
		}
		body.WriteByte(c)
		i++
	}
	r.pos = i + len(delim)

	// adjacency: a literal right after another one joins its group
	if r.last == "str" && r.grpN > 0 {
		r.out.WriteString("+ ")
	} else {
		r.closeGroup()
		r.grpStart = r.out.Len()
		r.grpN = 0
	}
	if fstr {
		lit, err := fstringToFormat(body.String(), delim, raw, r.line)
		if err != nil {
			return err
		}
		r.out.WriteString(lit)
	} else {
		if raw {
			r.out.WriteByte('r')
		}
		if bytesLit {
			r.out.WriteByte('b')
		}
		r.out.WriteString(delim)
		r.out.WriteString(body.String())
		r.out.WriteString(delim)
	}
	r.grpEnd = r.out.Len()
	r.grpN++
	if r.delStart >= 0 {
		r.delLast = "other"
	}
	r.last = "str"
	return nil
}

// fstringToFormat turns the body of an f-string into a parenthesized
// "...".format(...) expression. Format specs after ':' are kept in the
// replacement field; Starlark supports the !r and !s conversions only.
func fstringToFormat(body, delim string, raw bool, line int) (string, error) {
	var lit strings.Builder
	var args []string
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '{' && i+1 < len(body) && body[i+1] == '{' {
			lit.WriteString("{{")
			i++
			continue
		}
		if c == '}' && i+1 < len(body) && body[i+1] == '}' {
			lit.WriteString("}}")
			i++
			continue
		}
		if c == '}' {
			return "", &pyError{line: line, msg: "f-string: single '}' is not allowed"}
		}
		if c != '{' {
			lit.WriteByte(c)
			continue
		}
		depth := 0
		j := i + 1
		var quote byte
		for ; j < len(body); j++ {
			d := body[j]
			if quote != 0 {
				if d == quote {
					quote = 0
				}
				continue
			}
			if d == '\'' || d == '"' {
				quote = d
				continue
			}
			if d == '(' || d == '[' || d == '{' {
				depth++
			} else if d == ')' || d == ']' || (d == '}' && depth > 0) {
				depth--
			} else if depth == 0 && (d == '}' || d == '!' || d == ':') {
				if d == '!' && j+1 < len(body) && body[j+1] == '=' {
					j++
					continue
				}
				break
			}
		}
		if j >= len(body) {
			return "", &pyError{line: line, msg: "f-string: expecting '}'"}
		}
		expr := strings.TrimSpace(body[i+1 : j])
		k := strings.IndexByte(body[j:], '}')
		if k < 0 {
			return "", &pyError{line: line, msg: "f-string: expecting '}'"}
		}
		spec := body[j : j+k]
		args = append(args, strings.ReplaceAll(expr, "\n", " "))
		lit.WriteString("{" + spec + "}")
		i = j + k
	}
	prefix := ""
	if raw {
		prefix = "r"
	}
	return "(" + prefix + delim + lit.String() + delim + ".format(" + strings.Join(args, ", ") + "))", nil
}
